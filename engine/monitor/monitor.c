//go:build linux && cgo

// The monitor's steady state: one thread, one poll loop, no Go runtime.
//
//     container stdout/stderr (or pty master) --read--> log file (json-file)
//                                              \-----> every attach client
//     attach clients --frames--> stdin pipe / pty master, resize, detach
//     listener --accept--> new attach clients
//     signalfd: SIGCHLD --waitpid--> container exit, tick reaped
//                SIGPIPE/HUP/INT/TERM/QUIT: read and dropped
//
// Memory is what the process is for: buffers are allocated only when
// needed (a stream's line buffer at its first byte, a client's backlog when
// it falls behind, stdin's backlog when the container does not read).

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"

extern char **environ;

#define LINE_BYTES (16 * 1024)      // a log record is cut at this size
#define CLIENT_BACKLOG (256 * 1024) // output a client may fall behind by
#define STDIN_BACKLOG (256 * 1024)  // stdin the container may leave unread
#define MAX_CLIENTS 64
#define NS 1000000000LL
#define DRAIN_IDLE (1 * NS)  // after exit: stop when output is quiet this long
#define DRAIN_TOTAL (3 * NS) // after exit: stop draining output after this
#define FLUSH_TOTAL (1 * NS) // after exit: time clients get to take their backlog
#define CLAIM_WAIT (5 * NS)  // after exit: time the claiming client gets to answer

// Frame kinds, monitor -> client.
enum { OUT_STDOUT = 1, OUT_STDERR = 2, OUT_EXIT = 3 };
// Frame kinds, client -> monitor.
// After the exit frame, the claiming client (see claim_answer) sends
// IN_EXIT_RECORDED when it recorded the exit itself, IN_EXIT_YOURS when
// the exit phase must.
enum { IN_STDIN = 0, IN_CLOSE_STDIN = 1, IN_RESIZE = 2, IN_DETACH = 3, IN_EXIT_RECORDED = 4, IN_EXIT_YOURS = 5 };

struct stream {
	int fd;
	int kind;
	const char *name;
	char *buf; // LINE_BYTES, allocated at the first byte
	size_t len;
};

struct client {
	int fd;
	int rd_closed;
	unsigned char hdr[8];
	int hdr_got;
	uint32_t left; // payload bytes of the current frame still to come
	unsigned char arg[4];
	int arg_got;
	char *out; // CLIENT_BACKLOG, allocated when the client falls behind
	size_t out_off, out_len;
};

// Signals the loop takes through its signalfd instead of dying of them.
static const int quiet_sigs[] = {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGQUIT};
#define NQUIET (sizeof(quiet_sigs) / sizeof(quiet_sigs[0]))

static struct {
	pid_t pid;
	struct stream out[2];
	int nout;
	int tty;
	int stdin_fd;
	char *in; // STDIN_BACKLOG, allocated when the container falls behind
	size_t in_off, in_len;
	int stdin_close_pending;

	const char *log_path;
	int log_fd;
	long long log_max;
	int log_files;
	long long log_size;

	int listen_fd;
	struct client cl[MAX_CLIENTS];
	int ncl;

	const char *exit_path;
	char **next;
	int claim_fd; // the client that may record the exit, or -1
	char **tick;
	long long tick_ns;
	long long tick_at;
	pid_t tick_pid;

	int sfd;
	sigset_t oldmask;
	struct sigaction oldquiet[NQUIET];
	struct sigaction oldchld;

	int exited;
	int status;
	char err[512];
	// Raw values handed back unchanged when the loop never ran.
	char *raw_clients, *raw_listen;
} M;

// note records the first error for the exit file and writes every one to
// stderr, which the starting side points at a file of its own.
static void note(const char *fmt, ...) {
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (M.err[0] == '\0') {
		snprintf(M.err, sizeof(M.err), "%s", line);
		for (char *p = M.err; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	dprintf(2, "berth-monitor: %s\n", line);
}

static long long now_ns(clockid_t clock) {
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec * NS + ts.tv_nsec;
}

// ---- inputs ----

static char *take_env(const char *name) {
	const char *v = getenv(name);
	return v != NULL ? strdup(v) : NULL;
}

// drop_env removes every _BERTH_MON* variable, so that nothing the monitor
// starts inherits them.
static void drop_env(void) {
	for (int again = 1; again;) {
		again = 0;
		for (char **e = environ; e != NULL && *e != NULL; e++) {
			if (strncmp(*e, "_BERTH_MON", 10) != 0)
				continue;
			char name[128];
			size_t n = strcspn(*e, "=");
			if (n >= sizeof(name))
				n = sizeof(name) - 1;
			memcpy(name, *e, n);
			name[n] = '\0';
			unsetenv(name);
			again = 1;
			break;
		}
	}
}

static int parse_ll(const char *s, long long min, long long max, long long *out) {
	if (s == NULL || *s == '\0')
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

// parse_fd reads an fd variable: absent or -1 is -2 ("none"), an open fd
// is itself, anything else is -1.
static int parse_fd(const char *name, const char *s) {
	long long v;
	if (s == NULL || strcmp(s, "-1") == 0)
		return -2;
	if (parse_ll(s, 0, INT_MAX, &v) < 0 || fcntl((int)v, F_GETFD) < 0) {
		note("%s: %s is not an open fd", name, s);
		return -1;
	}
	return (int)v;
}

// split_args splits a \x1f-separated argv; NULL when empty.
static char **split_args(char *s) {
	if (s == NULL || *s == '\0')
		return NULL;
	size_t n = 1;
	for (char *p = s; *p; p++)
		n += *p == '\x1f';
	char **v = calloc(n + 1, sizeof(char *));
	if (v == NULL)
		return NULL;
	size_t k = 0;
	v[k++] = s;
	for (char *p = s; *p; p++)
		if (*p == '\x1f') {
			*p = '\0';
			v[k++] = p + 1;
		}
	return v;
}

static void set_flags(int fd) {
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// read_inputs fills M from the environment; 0 when the loop may run.
static int read_inputs(void) {
	char *pid = take_env("_BERTH_MON_PID"), *out = take_env("_BERTH_MON_STDOUT"),
	     *errs = take_env("_BERTH_MON_STDERR"), *tty = take_env("_BERTH_MON_TTY"),
	     *in = take_env("_BERTH_MON_STDIN"), *log = take_env("_BERTH_MON_LOG"),
	     *logmax = take_env("_BERTH_MON_LOG_MAX"), *logfiles = take_env("_BERTH_MON_LOG_FILES"),
	     *exitp = take_env("_BERTH_MON_EXIT"), *next = take_env("_BERTH_MON_NEXT"),
	     *tickms = take_env("_BERTH_MON_TICK_MS"), *tick = take_env("_BERTH_MON_TICK"),
	     *claim = take_env("_BERTH_MON_CLAIM");
	M.raw_listen = take_env("_BERTH_MON_LISTEN");
	M.raw_clients = take_env("_BERTH_MON_CLIENTS");
	drop_env();

	M.exit_path = exitp != NULL && *exitp != '\0' ? exitp : NULL;
	M.next = split_args(next);
	int bad = 0;
	if (M.exit_path == NULL)
		note("_BERTH_MON_EXIT: not set"), bad = 1;
	if (M.next == NULL)
		note("_BERTH_MON_NEXT: not set"), bad = 1;

	long long v;
	if (parse_ll(pid, 1, INT_MAX, &v) < 0) {
		note("_BERTH_MON_PID: bad pid %s", pid ? pid : "(unset)");
		bad = 1;
	} else {
		M.pid = (pid_t)v;
		siginfo_t si;
		if (waitid(P_PID, (id_t)M.pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			note("_BERTH_MON_PID: %d is not a child of the monitor: %s", M.pid, strerror(errno));
			bad = 1;
		}
	}

	int fo = parse_fd("_BERTH_MON_STDOUT", out), fe = parse_fd("_BERTH_MON_STDERR", errs),
	    ft = parse_fd("_BERTH_MON_TTY", tty), fi = parse_fd("_BERTH_MON_STDIN", in);
	if (fo == -1 || fe == -1 || ft == -1 || fi == -1)
		bad = 1;
	if (ft >= 0 && (fo >= 0 || fe >= 0 || fi >= 0)) {
		note("_BERTH_MON_TTY: given with stdin, stdout or stderr pipes");
		bad = 1;
	}
	M.stdin_fd = -1;
	if (ft >= 0) {
		M.tty = 1;
		M.out[M.nout++] = (struct stream){.fd = ft, .kind = OUT_STDOUT, .name = "stdout"};
		M.stdin_fd = ft;
	} else {
		if (fo >= 0)
			M.out[M.nout++] = (struct stream){.fd = fo, .kind = OUT_STDOUT, .name = "stdout"};
		if (fe >= 0)
			M.out[M.nout++] = (struct stream){.fd = fe, .kind = OUT_STDERR, .name = "stderr"};
		if (fi >= 0)
			M.stdin_fd = fi;
	}

	M.log_fd = -1;
	M.log_files = 1;
	if (log != NULL && *log != '\0') {
		M.log_path = log;
		if (logmax != NULL && parse_ll(logmax, 0, LLONG_MAX, &M.log_max) < 0)
			note("_BERTH_MON_LOG_MAX: bad size %s", logmax), bad = 1;
		if (logfiles != NULL) {
			if (parse_ll(logfiles, 1, 1000, &v) < 0)
				note("_BERTH_MON_LOG_FILES: bad count %s", logfiles), bad = 1;
			else
				M.log_files = (int)v;
		}
	}

	M.listen_fd = parse_fd("_BERTH_MON_LISTEN", M.raw_listen);
	if (M.listen_fd == -1)
		bad = 1;
	if (M.raw_clients != NULL && *M.raw_clients != '\0') {
		char *list = strdup(M.raw_clients), *save = NULL;
		for (char *it = list ? strtok_r(list, ",", &save) : NULL; it; it = strtok_r(NULL, ",", &save)) {
			int fd = parse_fd("_BERTH_MON_CLIENTS", it);
			if (fd < 0) {
				bad = 1;
				continue;
			}
			if (M.ncl == MAX_CLIENTS) {
				note("_BERTH_MON_CLIENTS: more than %d clients", MAX_CLIENTS);
				bad = 1;
				break;
			}
			M.cl[M.ncl++] = (struct client){.fd = fd};
		}
		free(list);
	}

	M.claim_fd = -1;
	if (claim != NULL) {
		int fd = parse_fd("_BERTH_MON_CLAIM", claim);
		for (int i = 0; i < M.ncl && fd >= 0; i++)
			if (M.cl[i].fd == fd)
				M.claim_fd = fd;
		if (M.claim_fd < 0)
			note("_BERTH_MON_CLAIM: %s is not one of the clients", claim), bad = 1;
	}

	if (tickms != NULL || tick != NULL) {
		M.tick = split_args(tick);
		if (parse_ll(tickms, 1, LLONG_MAX / 1000000, &v) < 0 || M.tick == NULL)
			note("_BERTH_MON_TICK_MS/_BERTH_MON_TICK: bad tick %s", tickms ? tickms : "(unset)"), bad = 1;
		else
			M.tick_ns = v * 1000000;
	}
	free(pid), free(out), free(errs), free(tty), free(in), free(logmax), free(logfiles), free(tickms), free(claim);
	return bad ? -1 : 0;
}

// ---- signals ----

static void signals_take(void) {
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t k = 0; k < NQUIET; k++) {
		sigaddset(&set, quiet_sigs[k]);
		sigaction(quiet_sigs[k], NULL, &M.oldquiet[k]);
	}
	sigprocmask(SIG_BLOCK, &set, &M.oldmask);
	// An ignored SIGCHLD would make the kernel reap the container itself.
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(SIGCHLD, &dfl, &M.oldchld);
	M.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (M.sfd < 0)
		note("signalfd: %s", strerror(errno));
}

// signals_give_back restores what the exec'ing Go side had: setting
// SIG_IGN first discards signals still pending, which would otherwise hit
// the next program before it installs its handlers.
static void signals_give_back(void) {
	struct sigaction ign = {.sa_handler = SIG_IGN};
	for (size_t k = 0; k < NQUIET; k++) {
		sigaction(quiet_sigs[k], &ign, NULL);
		sigaction(quiet_sigs[k], &M.oldquiet[k], NULL);
	}
	sigaction(SIGCHLD, &M.oldchld, NULL);
	sigprocmask(SIG_SETMASK, &M.oldmask, NULL);
}

static void reap(void) {
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p <= 0)
			return;
		if (p == M.pid && !M.exited) {
			M.exited = 1;
			M.status = st;
		} else if (p == M.tick_pid) {
			M.tick_pid = 0;
		}
	}
}

static void signals_read(void) {
	struct signalfd_siginfo si[8];
	while (read(M.sfd, si, sizeof(si)) > 0) {
	}
	reap();
}

// ---- log ----

// A sink counts what a record would take, or writes it through a buffer.
struct sink {
	int fd; // -1: count only
	char buf[8192];
	size_t n;
	long long total;
	int err;
};

static void sink_flush(struct sink *k) {
	size_t off = 0;
	while (off < k->n && k->fd >= 0) {
		ssize_t w = write(k->fd, k->buf + off, k->n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			k->err = errno;
			break;
		}
		off += (size_t)w;
	}
	k->n = 0;
}

static void sink_put(struct sink *k, const void *p, size_t n) {
	k->total += (long long)n;
	if (k->fd < 0)
		return;
	const char *s = p;
	while (n > 0) {
		if (k->n == sizeof(k->buf))
			sink_flush(k);
		size_t m = sizeof(k->buf) - k->n;
		if (m > n)
			m = n;
		memcpy(k->buf + k->n, s, m);
		k->n += m, s += m, n -= m;
	}
}

// utf8_seq is the length of the valid UTF-8 sequence at s, 0 if invalid
// (overlong forms, surrogates and code points past U+10FFFF included).
static size_t utf8_seq(const unsigned char *s, size_t n) {
	unsigned c = s[0], lo = 0x80, hi = 0xBF;
	size_t len;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	return len;
}

// json_string writes p as the inside of a JSON string: quote, backslash
// and control characters escaped, valid UTF-8 kept as is, every byte of
// invalid UTF-8 replaced by U+FFFD (as Docker's json-file does).
static void json_string(struct sink *k, const unsigned char *p, size_t n) {
	size_t run = 0; // start of the pending run of bytes kept as they are
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0x80) {
			size_t l = utf8_seq(p + i, n - i);
			if (l > 0) {
				i += l;
				continue;
			}
		}
		sink_put(k, p + run, i - run);
		char esc[8];
		const char *e = esc;
		size_t el = 2;
		switch (c) {
		case '"': e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		case '\b': e = "\\b"; break;
		case '\f': e = "\\f"; break;
		default:
			if (c < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				el = 6;
			} else {
				e = "\\ufffd";
				el = 6;
			}
		}
		sink_put(k, e, el);
		i++;
		run = i;
	}
	sink_put(k, p + run, n - run);
}

static void record(struct sink *k, const struct stream *s, const char *p, size_t n, const char *ts) {
	sink_put(k, "{\"log\":\"", 8);
	json_string(k, (const unsigned char *)p, n);
	sink_put(k, "\",\"stream\":\"", 12);
	sink_put(k, s->name, strlen(s->name));
	sink_put(k, "\",\"time\":\"", 10);
	sink_put(k, ts, strlen(ts));
	sink_put(k, "\"}\n", 3);
}

// timestamp formats the current time as RFC 3339 with nine fraction digits.
static void timestamp(char *ts, size_t size) {
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec);
}

static void log_open(void) {
	M.log_fd = open(M.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (M.log_fd < 0) {
		note("open log %s: %s", M.log_path, strerror(errno));
		return;
	}
	struct stat st;
	M.log_size = fstat(M.log_fd, &st) == 0 ? st.st_size : 0;
}

// log_rotate shifts log.(N-1) -> log.N ... log -> log.1 and starts a new
// log; with a single file it empties the log in place.
static void log_rotate(void) {
	if (M.log_files <= 1) {
		if (ftruncate(M.log_fd, 0) < 0)
			note("truncate log %s: %s", M.log_path, strerror(errno));
		M.log_size = 0;
		return;
	}
	close(M.log_fd);
	M.log_fd = -1;
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	for (int i = M.log_files - 1; i >= 1; i--) {
		if (i == 1)
			snprintf(from, sizeof(from), "%s", M.log_path);
		else
			snprintf(from, sizeof(from), "%s.%d", M.log_path, i - 1);
		snprintf(to, sizeof(to), "%s.%d", M.log_path, i);
		if (rename(from, to) < 0 && errno != ENOENT)
			note("rotate log %s: %s", from, strerror(errno));
	}
	log_open();
}

static void log_record(const struct stream *s, const char *p, size_t n, const char *ts) {
	if (M.log_fd < 0)
		return;
	struct sink count = {.fd = -1};
	record(&count, s, p, n, ts);
	// A record larger than the limit still goes whole into an empty file:
	// records are never split across files.
	if (M.log_max > 0 && M.log_size > 0 && M.log_size + count.total > M.log_max) {
		log_rotate();
		if (M.log_fd < 0)
			return;
	}
	struct sink w = {.fd = M.log_fd};
	record(&w, s, p, n, ts);
	sink_flush(&w);
	if (w.err != 0)
		note("write log %s: %s", M.log_path, strerror(w.err));
	M.log_size += w.total;
}

// ---- clients ----

static void client_drop(struct client *c) {
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	*c = (struct client){.fd = -1};
}

// client_queue keeps what a client could not take yet; a client that
// falls further behind than CLIENT_BACKLOG is dropped, never waited for.
static void client_queue(struct client *c, const char *p, size_t n) {
	if (n == 0)
		return;
	if (c->out == NULL && (c->out = malloc(CLIENT_BACKLOG)) == NULL) {
		client_drop(c);
		return;
	}
	if (c->out_off + c->out_len + n > CLIENT_BACKLOG) {
		memmove(c->out, c->out + c->out_off, c->out_len);
		c->out_off = 0;
	}
	if (c->out_len + n > CLIENT_BACKLOG) {
		client_drop(c);
		return;
	}
	memcpy(c->out + c->out_off + c->out_len, p, n);
	c->out_len += n;
}

static void client_send(struct client *c, int kind, const char *p, size_t n) {
	unsigned char h[8] = {(unsigned char)kind, 0, 0, 0, (unsigned char)(n >> 24),
			      (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
	size_t w = 0;
	if (c->out_len == 0) {
		struct iovec iov[2] = {{h, 8}, {(void *)p, n}};
		ssize_t r = writev(c->fd, iov, n > 0 ? 2 : 1);
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			client_drop(c);
			return;
		}
		w = r > 0 ? (size_t)r : 0;
	}
	if (w < 8) {
		client_queue(c, (const char *)h + w, 8 - w);
		w = 0;
	} else {
		w -= 8;
	}
	if (c->fd >= 0)
		client_queue(c, p + w, n - w);
}

static void broadcast(int kind, const char *p, size_t n) {
	for (int i = 0; i < M.ncl; i++)
		if (M.cl[i].fd >= 0)
			client_send(&M.cl[i], kind, p, n);
}

static void client_flush(struct client *c) {
	while (c->out_len > 0) {
		ssize_t w = write(c->fd, c->out + c->out_off, c->out_len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				client_drop(c);
			return;
		}
		c->out_off += (size_t)w;
		c->out_len -= (size_t)w;
	}
	c->out_off = 0;
}

static void compact_clients(void) {
	int j = 0;
	for (int i = 0; i < M.ncl; i++)
		if (M.cl[i].fd >= 0)
			M.cl[j++] = M.cl[i];
	for (int i = j; i < M.ncl; i++)
		M.cl[i] = (struct client){.fd = -1};
	M.ncl = j;
}

// ---- stdin ----

static void stdin_close(void) {
	if (M.stdin_fd >= 0 && !M.tty)
		close(M.stdin_fd);
	if (!M.tty)
		M.stdin_fd = -1;
	free(M.in);
	M.in = NULL;
	M.in_off = M.in_len = 0;
	M.stdin_close_pending = 0;
}

static void stdin_flush(void) {
	while (M.in_len > 0) {
		ssize_t w = write(M.stdin_fd, M.in + M.in_off, M.in_len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			// The container closed its stdin: what it did not read is lost.
			M.in_off = M.in_len = 0;
			if (!M.tty)
				stdin_close();
			return;
		}
		M.in_off += (size_t)w;
		M.in_len -= (size_t)w;
	}
	M.in_off = 0;
	if (M.stdin_close_pending)
		stdin_close();
}

static size_t stdin_room(void) {
	if (M.stdin_fd < 0 || M.stdin_close_pending)
		return (size_t)-1; // data is dropped: any amount fits
	return STDIN_BACKLOG - M.in_len;
}

static void stdin_push(const char *p, size_t n) {
	if (M.stdin_fd < 0 || M.stdin_close_pending || n == 0)
		return;
	if (M.in_len == 0) {
		ssize_t w;
		do
			w = write(M.stdin_fd, p, n);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN) {
			if (!M.tty)
				stdin_close();
			return;
		}
		if (w > 0)
			p += w, n -= (size_t)w;
		if (n == 0)
			return;
	}
	if (M.in == NULL && (M.in = malloc(STDIN_BACKLOG)) == NULL)
		return;
	if (M.in_off + M.in_len + n > STDIN_BACKLOG) {
		memmove(M.in, M.in + M.in_off, M.in_len);
		M.in_off = 0;
	}
	if (M.in_len + n > STDIN_BACKLOG)
		n = STDIN_BACKLOG - M.in_len; // cannot happen: reads are sized to the room
	memcpy(M.in + M.in_off + M.in_len, p, n);
	M.in_len += n;
}

// client_frame_done acts on a frame once its payload is complete; it
// returns -1 when the client left.
static int client_frame_done(struct client *c) {
	int kind = c->hdr[0];
	c->hdr_got = 0;
	c->arg_got = 0;
	switch (kind) {
	case IN_CLOSE_STDIN:
		if (!M.tty && M.stdin_fd >= 0) {
			if (M.in_len == 0)
				stdin_close();
			else
				M.stdin_close_pending = 1;
		}
		break;
	case IN_RESIZE:
		if (M.tty) {
			struct winsize ws = {.ws_row = (unsigned short)(c->arg[0] << 8 | c->arg[1]),
					     .ws_col = (unsigned short)(c->arg[2] << 8 | c->arg[3])};
			(void)ioctl(M.stdin_fd, TIOCSWINSZ, &ws);
		}
		break;
	case IN_DETACH:
		client_drop(c);
		return -1;
	}
	return 0;
}

static void client_read(struct client *c) {
	unsigned char buf[4096];
	size_t cap = sizeof(buf), room = stdin_room();
	if (room < cap)
		cap = room;
	if (cap == 0)
		return;
	ssize_t n = read(c->fd, buf, cap);
	if (n == 0) {
		c->rd_closed = 1; // it may still read: keep sending output
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_drop(c);
		return;
	}
	for (size_t i = 0; i < (size_t)n;) {
		if (c->hdr_got < 8) {
			c->hdr[c->hdr_got++] = buf[i++];
			if (c->hdr_got == 8) {
				c->left = (uint32_t)c->hdr[4] << 24 | (uint32_t)c->hdr[5] << 16 |
					  (uint32_t)c->hdr[6] << 8 | c->hdr[7];
				if (c->left == 0 && client_frame_done(c) < 0)
					return;
			}
			continue;
		}
		size_t m = (size_t)n - i;
		if (m > c->left)
			m = c->left;
		if (c->hdr[0] == IN_STDIN)
			stdin_push((const char *)buf + i, m);
		else if (c->hdr[0] == IN_RESIZE)
			for (size_t k = 0; k < m && c->arg_got < 4; k++)
				c->arg[c->arg_got++] = buf[i + k];
		i += m;
		c->left -= (uint32_t)m;
		if (c->left == 0 && client_frame_done(c) < 0)
			return;
	}
}

static void accept_clients(void) {
	for (;;) {
		int fd = accept4(M.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				note("accept: %s", strerror(errno));
			return;
		}
		if (M.ncl == MAX_CLIENTS) {
			close(fd);
			continue;
		}
		M.cl[M.ncl++] = (struct client){.fd = fd};
	}
}

// ---- output ----

// stream_read reads once; it returns 1 for data, 0 for nothing, -1 at
// the end of the stream (EIO from a pty master whose slave is gone
// included).
static int stream_read(struct stream *s) {
	if (s->buf == NULL && (s->buf = malloc(LINE_BYTES)) == NULL)
		return 0;
	ssize_t n = read(s->fd, s->buf + s->len, LINE_BYTES - s->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	char ts[48];
	timestamp(ts, sizeof(ts));
	if (n <= 0) {
		if (s->len > 0)
			log_record(s, s->buf, s->len, ts);
		close(s->fd);
		s->fd = -1;
		s->len = 0;
		return -1;
	}
	broadcast(s->kind, s->buf + s->len, (size_t)n);
	if (M.log_fd < 0)
		return 1;
	s->len += (size_t)n;
	size_t start = 0;
	for (;;) {
		char *nl = memchr(s->buf + start, '\n', s->len - start);
		if (nl == NULL)
			break;
		size_t end = (size_t)(nl - s->buf) + 1;
		log_record(s, s->buf + start, end - start, ts);
		start = end;
	}
	if (start == 0 && s->len == LINE_BYTES) {
		log_record(s, s->buf, s->len, ts);
		start = s->len;
	}
	memmove(s->buf, s->buf + start, s->len - start);
	s->len -= start;
	return 1;
}

static int streams_open(void) {
	int n = 0;
	for (int i = 0; i < M.nout; i++)
		n += M.out[i].fd >= 0;
	return n;
}

// ---- tick ----

static void tick_start(void) {
	pid_t p = fork();
	if (p < 0) {
		note("fork tick: %s", strerror(errno));
		return;
	}
	if (p == 0) {
		signals_give_back();
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0), dup2(null, 1), dup2(null, 2);
			if (null > 2)
				close(null);
		}
		execve("/proc/self/exe", M.tick, environ);
		_exit(127);
	}
	M.tick_pid = p;
}

// ---- loop ----

enum { RUN, DRAIN };

static int ms_until(long long deadline, long long now) {
	if (deadline <= now)
		return 0;
	long long ms = (deadline - now + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void loop(void) {
	int phase = RUN;
	long long drain_start = 0, last_data = 0;
	if (M.tick_ns > 0)
		M.tick_at = now_ns(CLOCK_MONOTONIC) + M.tick_ns;
	// The container may have exited before the loop took SIGCHLD over.
	reap();
	for (;;) {
		long long now = now_ns(CLOCK_MONOTONIC);
		if (phase == RUN && M.exited) {
			phase = DRAIN;
			drain_start = last_data = now;
		}
		if (phase == DRAIN && (streams_open() == 0 || now - last_data >= DRAIN_IDLE ||
				       now - drain_start >= DRAIN_TOTAL))
			return;
		if (phase == RUN && M.tick_ns > 0 && now >= M.tick_at) {
			if (M.tick_pid == 0) // never two at once
				tick_start();
			M.tick_at += M.tick_ns;
			if (M.tick_at <= now)
				M.tick_at = now + M.tick_ns;
		}

		struct pollfd p[4 + MAX_CLIENTS];
		p[0] = (struct pollfd){.fd = M.sfd, .events = POLLIN};
		p[1] = (struct pollfd){.fd = M.nout > 0 ? M.out[0].fd : -1, .events = POLLIN};
		p[2] = (struct pollfd){.fd = M.nout > 1 ? M.out[1].fd : -1, .events = POLLIN};
		p[3] = (struct pollfd){.fd = M.in_len > 0 ? M.stdin_fd : -1, .events = POLLOUT};
		p[4] = (struct pollfd){.fd = M.listen_fd, .events = POLLIN};
		size_t room = stdin_room();
		for (int i = 0; i < M.ncl; i++) {
			struct client *c = &M.cl[i];
			short ev = 0;
			if (!c->rd_closed && room > 0)
				ev |= POLLIN;
			if (c->out_len > 0)
				ev |= POLLOUT;
			p[5 + i] = (struct pollfd){.fd = c->fd, .events = ev};
		}
		int timeout = -1;
		if (phase == RUN && M.tick_ns > 0)
			timeout = ms_until(M.tick_at, now);
		if (phase == DRAIN) {
			long long d = last_data + DRAIN_IDLE;
			if (drain_start + DRAIN_TOTAL < d)
				d = drain_start + DRAIN_TOTAL;
			timeout = ms_until(d, now);
		}
		int ncl = M.ncl;
		if (poll(p, 5 + (nfds_t)ncl, timeout) < 0) {
			if (errno != EINTR) {
				note("poll: %s", strerror(errno));
				// Nothing sensible is left to wait with: wait blocking.
				if (!M.exited && waitpid(M.pid, &M.status, 0) == M.pid)
					M.exited = 1;
				return;
			}
			continue;
		}
		if (p[0].revents)
			signals_read();
		for (int i = 0; i < M.nout && i < 2; i++)
			if (p[1 + i].revents && M.out[i].fd >= 0 && stream_read(&M.out[i]) > 0)
				last_data = now_ns(CLOCK_MONOTONIC);
		if (p[3].revents && M.stdin_fd >= 0)
			stdin_flush();
		if (p[4].revents)
			accept_clients();
		for (int i = 0; i < ncl; i++) {
			struct client *c = &M.cl[i];
			short re = p[5 + i].revents;
			if (c->fd < 0 || re == 0)
				continue;
			if (re & POLLOUT)
				client_flush(c);
			if (c->fd >= 0 && (re & POLLIN))
				client_read(c);
			if (c->fd >= 0 && (re & (POLLERR | POLLNVAL | POLLHUP)) && !(re & POLLIN))
				client_drop(c);
		}
		compact_clients();
	}
}

// flush_clients gives clients a bounded time to take their backlog; those
// that do not are dropped rather than handed over with a cut frame.
static void flush_clients(void) {
	long long end = now_ns(CLOCK_MONOTONIC) + FLUSH_TOTAL;
	for (;;) {
		compact_clients();
		struct pollfd p[MAX_CLIENTS];
		int n = 0;
		for (int i = 0; i < M.ncl; i++)
			if (M.cl[i].out_len > 0)
				p[n++] = (struct pollfd){.fd = M.cl[i].fd, .events = POLLOUT};
		long long now = now_ns(CLOCK_MONOTONIC);
		if (n == 0)
			return;
		if (now >= end) {
			for (int i = 0; i < M.ncl; i++)
				if (M.cl[i].out_len > 0)
					client_drop(&M.cl[i]);
			compact_clients();
			return;
		}
		if (poll(p, (nfds_t)n, ms_until(end, now)) < 0 && errno != EINTR)
			end = now;
		for (int i = 0; i < M.ncl; i++)
			if (M.cl[i].out_len > 0)
				client_flush(&M.cl[i]);
	}
}

// ---- exit ----

// claim_answer waits, after the exit frame, for the claiming client's
// answer: a foreground `run` that has the store open records the exit
// itself rather than wait for the exit phase to start a Go process. It
// returns 1 only when the client says it recorded the exit; a client that
// says otherwise, leaves or stays silent for CLAIM_WAIT gets the exit
// phase, which records what is not recorded yet.
static int claim_answer(void) {
	struct client *c = NULL;
	for (int i = 0; i < M.ncl; i++)
		if (M.cl[i].fd >= 0 && M.cl[i].fd == M.claim_fd)
			c = &M.cl[i];
	if (c == NULL || !M.exited)
		return 0;
	long long end = now_ns(CLOCK_MONOTONIC) + CLAIM_WAIT;
	for (;;) {
		long long now = now_ns(CLOCK_MONOTONIC);
		if (now >= end)
			return 0;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r = poll(&p, 1, ms_until(end, now));
		if (r < 0 && errno != EINTR)
			return 0;
		if (r <= 0)
			continue;
		unsigned char buf[4096];
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 0;
		// Frames still on their way (stdin, resize) are skipped whole.
		for (ssize_t i = 0; i < n;) {
			if (c->hdr_got < 8) {
				c->hdr[c->hdr_got++] = buf[i++];
				if (c->hdr_got < 8)
					continue;
				c->left = (uint32_t)c->hdr[4] << 24 | (uint32_t)c->hdr[5] << 16 |
					  (uint32_t)c->hdr[6] << 8 | c->hdr[7];
			} else {
				size_t m = (size_t)(n - i) < c->left ? (size_t)(n - i) : c->left;
				i += (ssize_t)m;
				c->left -= (uint32_t)m;
			}
			if (c->left == 0) {
				c->hdr_got = 0;
				if (c->hdr[0] == IN_EXIT_RECORDED)
					return 1;
				if (c->hdr[0] == IN_EXIT_YOURS || c->hdr[0] == IN_DETACH)
					return 0;
			}
		}
	}
}

static int exit_code(int status) {
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 125;
}

// write_exit writes the exit file atomically (a reader sees all of it or
// none) for the exit phase that follows. status -1 means the container was not waited for.
static void write_exit(int waited) {
	if (M.exit_path == NULL)
		return;
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", M.exit_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		dprintf(2, "berth-monitor: write exit file %s: %s\n", tmp, strerror(errno));
		return;
	}
	int ok = dprintf(fd, "status=%d\ncode=%d\nfinished=%lld\n", waited ? M.status : -1,
			 waited ? exit_code(M.status) : 125, now_ns(CLOCK_REALTIME)) > 0;
	if (M.err[0] != '\0')
		ok = ok && dprintf(fd, "error=%s\n", M.err) > 0;
	// No fsync: the file only matters to the exit phase that runs next,
	// and after a machine crash the container is gone anyway (the next
	// berth command records it); a sync would cost every exit a journal
	// commit.
	if (close(fd) < 0 || !ok || rename(tmp, M.exit_path) < 0)
		dprintf(2, "berth-monitor: write exit file %s: %s\n", M.exit_path, strerror(errno));
}

// exec_next hands the process back to Go: attach clients and the listener
// stay open for it, everything else of the monitor's is closed.
static void exec_next(int loop_ran) {
	if (M.next == NULL) {
		dprintf(2, "berth-monitor: nothing to exec after the container\n");
		_exit(125);
	}
	if (loop_ran) {
		char list[MAX_CLIENTS * 12 + 1];
		size_t off = 0;
		list[0] = '\0';
		for (int i = 0; i < M.ncl; i++) {
			if (M.cl[i].fd < 0)
				continue;
			(void)fcntl(M.cl[i].fd, F_SETFD, 0);
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%d", off ? "," : "", M.cl[i].fd);
		}
		if (off > 0)
			setenv("_BERTH_MON_CLIENTS", list, 1);
		if (M.listen_fd >= 0) {
			char l[16];
			(void)fcntl(M.listen_fd, F_SETFD, 0);
			snprintf(l, sizeof(l), "%d", M.listen_fd);
			setenv("_BERTH_MON_LISTEN", l, 1);
		}
	} else {
		// The fds were never taken over: hand the clients and the listener
		// back as they came; the container's stdio is of no use any more.
		for (int i = 0; i < M.nout; i++)
			if (M.out[i].fd >= 0)
				close(M.out[i].fd);
		if (M.stdin_fd >= 0 && !M.tty)
			close(M.stdin_fd);
		if (M.raw_clients != NULL)
			setenv("_BERTH_MON_CLIENTS", M.raw_clients, 1);
		if (M.raw_listen != NULL)
			setenv("_BERTH_MON_LISTEN", M.raw_listen, 1);
	}
	if (M.sfd >= 0)
		close(M.sfd);
	signals_give_back();
	execve("/proc/self/exe", M.next, environ);
	note("exec %s: %s", M.next[0], strerror(errno));
	write_exit(loop_ran);
	_exit(125);
}

// ---- memory ----

// shed_image gives back the pages of berth's code and constants that
// starting the process brought in (the ELF loader, libc's start-up, the
// constructors of every cgo package): the kernel maps a file's pages
// around each fault, 64 KiB at a time, so they are many more than the loop
// uses, and how many depends on how the linker laid the binary out. What
// the loop uses comes back from the file. Only mappings of the executable
// that are not writable and hold no page of their own (smaps Anonymous
// 0) are dropped: a read-only mapping that was written before it was made
// read-only (relocations, RELRO) would lose what was written.
static void shed_image(void) {
	enum { SMAPS_MAX = 256 << 10 };
	// A mapping of its own, unmapped after: reading smaps must not leave
	// its buffer resident.
	char *buf = mmap(NULL, SMAPS_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return;
	int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	if (fd >= 0) {
		ssize_t n;
		while (len < SMAPS_MAX - 1 && (n = read(fd, buf + len, SMAPS_MAX - 1 - len)) > 0)
			len += (size_t)n;
		close(fd);
	}
	buf[len] = '\0';
	if (len == SMAPS_MAX - 1) // cut short: the last mapping's fields may be missing
		len = 0;
	// The first mapping of a static executable is the executable itself.
	char exe[PATH_MAX] = "";
	unsigned long start = 0, end = 0;
	int candidate = 0;
	for (char *line = len > 0 ? buf : NULL, *next; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		unsigned long s0, e0;
		char perms[5], path[PATH_MAX];
		path[0] = '\0';
		if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %4095s", &s0, &e0, perms, path) >= 3) {
			if (exe[0] == '\0')
				memcpy(exe, path, sizeof(path));
			start = s0;
			end = e0;
			candidate = path[0] == '/' && strcmp(path, exe) == 0 && perms[1] != 'w';
			continue;
		}
		unsigned long anon;
		if (candidate && sscanf(line, "Anonymous: %lu", &anon) == 1) {
			if (anon == 0)
				madvise((void *)start, end - start, MADV_DONTNEED);
			candidate = 0;
		}
	}
	munmap(buf, SMAPS_MAX);
}

void berth_monitor_main(void) {
	M.sfd = -1;
	M.stdin_fd = -1;
	M.listen_fd = -1;
	M.log_fd = -1;
	if (read_inputs() < 0) {
		// The container is still this process's child: the Go side gets it
		// back, with the error, and decides.
		write_exit(0);
		exec_next(0);
	}
	for (int i = 0; i < M.nout; i++)
		set_flags(M.out[i].fd);
	if (M.stdin_fd >= 0 && !M.tty)
		set_flags(M.stdin_fd);
	if (M.listen_fd >= 0)
		set_flags(M.listen_fd);
	for (int i = 0; i < M.ncl; i++)
		set_flags(M.cl[i].fd);
	signals_take();
	if (M.log_path != NULL)
		log_open();
	shed_image();

	loop();

	char ts[48];
	timestamp(ts, sizeof(ts));
	for (int i = 0; i < M.nout; i++) {
		struct stream *s = &M.out[i];
		if (s->len > 0)
			log_record(s, s->buf, s->len, ts);
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		free(s->buf);
		s->buf = NULL;
	}
	if (M.tty)
		M.stdin_fd = -1; // closed with the output above
	stdin_close();
	if (M.tick_pid > 0) {
		// The check is about a container that is gone.
		kill(M.tick_pid, SIGKILL);
		waitpid(M.tick_pid, NULL, 0);
		M.tick_pid = 0;
	}
	if (!M.exited) {
		// Only after a poll failure: keep owning the container.
		if (waitpid(M.pid, &M.status, 0) == M.pid)
			M.exited = 1;
	}
	if (M.log_fd >= 0)
		close(M.log_fd);
	M.log_fd = -1;
	write_exit(M.exited);
	char code[16];
	int n = snprintf(code, sizeof(code), "%d", M.exited ? exit_code(M.status) : 125);
	broadcast(OUT_EXIT, code, (size_t)n);
	flush_clients();
	if (claim_answer())
		_exit(0);
	exec_next(1);
}
