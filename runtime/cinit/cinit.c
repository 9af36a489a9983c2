//go:build linux && cgo

// Why C: a container's init used to be berth re-executed up to its Go
// main, which costs the Go runtime's start-up (about 10 ms on a small VM)
// on the critical path of every container start. For the common
// configurations the parent compiles the spec into a plan of system calls
// (plan.go) and this constructor carries it out before the Go runtime
// starts, then executes the container's program: the runtime is never
// started. Any configuration the plan cannot express goes to the Go init,
// which does everything the spec allows; so does a plan-less bootstrap.
//
// The process is freshly executed and single-threaded here, so the C
// library is safe to use. Every path inside the root filesystem is
// resolved with openat2(RESOLVE_IN_ROOT), as the Go init does.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include "cinit.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef ST_NOSYMFOLLOW
#define ST_NOSYMFOLLOW 0x2000
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#define KEYCTL_JOIN_SESSION_KEYRING 1

#define ERR_MAX 4096
#define WARN_MAX 8192

// The state of one run of a plan.
struct cinit {
	int sync;          // the sync socket
	const char *p;     // the next byte of the plan
	const char *end;   // the end of the plan
	const char *ctx;   // what is being done, for errors
	int root;          // O_PATH handle of the root being built
	char rootpath[4096];
	int target;        // the handle the last BOP_TARGET resolved
	int source;        // the source of the next bind
	const char *source_path;
	mode_t saved_umask;
	char exec_path[4096];
	char warnings[WARN_MAX];
	size_t nwarnings;
};

// errno_text is strerror as Go spells it (lower case first letter), since
// the parent matches some messages ("no such file or directory").
static const char *errno_text(int err, char *buf, size_t n) {
	snprintf(buf, n, "%s", strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

// json_append writes s as the inside of a JSON string.
static size_t json_append(char *out, size_t at, size_t cap, const char *s) {
	for (; *s != '\0' && at + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[at++] = '\\';
			out[at++] = (char)c;
		} else if (c < 0x20) {
			at += (size_t)snprintf(out + at, cap - at, "\\u%04x", c);
		} else {
			out[at++] = (char)c;
		}
	}
	out[at] = '\0';
	return at;
}


// fail reports "<context>: <what>[: <errno>]" as an error message and
// ends the process.
static void fail(struct cinit *c, int err, const char *fmt, ...) {
	char what[ERR_MAX], full[ERR_MAX], eb[256], msg[2 * ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const char *sep = c->ctx != NULL && c->ctx[0] != '\0' ? ": " : "";
	if (err != 0)
		snprintf(full, sizeof(full), "%s%s%s: %s", c->ctx ? c->ctx : "", sep, what, errno_text(err, eb, sizeof(eb)));
	else
		snprintf(full, sizeof(full), "%s%s%s", c->ctx ? c->ctx : "", sep, what);
	size_t n = (size_t)snprintf(msg, sizeof(msg), "{\"type\":\"error\",\"error\":\"");
	n = json_append(msg, n, sizeof(msg) - 3, full);
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\"}");
	if (send(c->sync, msg, n, MSG_NOSIGNAL) < 0) {
		// After ready the parent may be gone (create returned): then the
		// program's stderr is the only place left, as for the Go init.
		n = (size_t)snprintf(msg, sizeof(msg), "berth init: %s\n", full);
		if (write(2, msg, n < sizeof(msg) ? n : sizeof(msg) - 1) < 0) {
		}
	}
	_exit(1);
}

static void warn(struct cinit *c, const char *fmt, ...) {
	char w[ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w, sizeof(w), fmt, ap);
	va_end(ap);
	size_t n = strlen(c->warnings);
	if (n + 8 >= sizeof(c->warnings))
		return;
	if (c->nwarnings > 0)
		c->warnings[n++] = ',';
	c->warnings[n++] = '"';
	n = json_append(c->warnings, n, sizeof(c->warnings) - 3, w);
	c->warnings[n++] = '"';
	c->warnings[n] = '\0';
	c->nwarnings++;
}

// Reading the plan.

static uint64_t get_u64(struct cinit *c) {
	uint64_t v;
	if (c->end - c->p < (long)sizeof(v))
		fail(c, 0, "init plan: truncated");
	memcpy(&v, c->p, sizeof(v));
	c->p += sizeof(v);
	return v;
}

static uint32_t get_u32(struct cinit *c) {
	uint32_t v;
	if (c->end - c->p < (long)sizeof(v))
		fail(c, 0, "init plan: truncated");
	memcpy(&v, c->p, sizeof(v));
	c->p += sizeof(v);
	return v;
}

// get_str returns a string of the plan in place; *len gets its length.
static const char *get_strn(struct cinit *c, size_t *len) {
	uint32_t n = get_u32(c);
	if ((uint64_t)(c->end - c->p) < (uint64_t)n + 1 || c->p[n] != '\0')
		fail(c, 0, "init plan: bad string");
	const char *s = c->p;
	c->p += n + 1;
	if (len != NULL)
		*len = n;
	return s;
}

static const char *get_str(struct cinit *c) { return get_strn(c, NULL); }

// Paths inside the root.

static char *fd_path(int fd, char *buf, size_t n) {
	snprintf(buf, n, "/proc/self/fd/%d", fd);
	return buf;
}

static int openat2_retry(int dir, const char *p, uint64_t flags, uint64_t resolve) {
	struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
	for (int i = 0; i < 64; i++) {
		int fd = (int)syscall(SYS_openat2, dir, p, &how, sizeof(how));
		if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
			return fd;
	}
	errno = EAGAIN;
	return -1;
}

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define NEW_DIR (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS)

static int open_in(struct cinit *c, const char *p) {
	while (*p == '/')
		p++;
	return openat2_retry(c->root, *p ? p : ".", O_PATH, IN_ROOT);
}

// mkdir_all_in makes p inside the root (the parent refused paths with
// ".." before) and returns a handle: the longest existing prefix is
// resolved in the root, and each new directory is reopened without
// following anything, so a swapped component is refused.
static int mkdir_all_in(struct cinit *c, const char *p, mode_t mode) {
	char buf[4096];
	while (*p == '/')
		p++;
	if (snprintf(buf, sizeof(buf), "%s", p) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	size_t len = strlen(buf);
	while (len > 0 && buf[len - 1] == '/')
		buf[--len] = '\0';
	// Find the longest prefix that exists.
	size_t have = len;
	int dir;
	for (;;) {
		char save = buf[have];
		buf[have] = '\0';
		dir = openat2_retry(c->root, have ? buf : ".", O_PATH | O_DIRECTORY, IN_ROOT);
		buf[have] = save;
		if (dir >= 0)
			break;
		if (errno != ENOENT || have == 0)
			return -1;
		while (have > 0 && buf[have - 1] != '/')
			have--;
		while (have > 0 && buf[have - 1] == '/')
			have--;
	}
	char *rest = buf + have;
	char *save = NULL;
	for (char *name = strtok_r(rest, "/", &save); name != NULL; name = strtok_r(NULL, "/", &save)) {
		if (mkdirat(dir, name, mode) < 0 && errno != EEXIST) {
			int e = errno;
			close(dir);
			errno = e;
			return -1;
		}
		int next = openat2_retry(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, NEW_DIR);
		int e = errno;
		close(dir);
		if (next < 0) {
			errno = e;
			return -1;
		}
		dir = next;
	}
	return dir;
}

static void split(const char *p, char *dir, size_t n, const char **base) {
	snprintf(dir, n, "%s", p);
	char *slash = strrchr(dir, '/');
	if (slash == NULL) {
		snprintf(dir, n, "/");
		*base = p;
		return;
	}
	*base = p + (slash - dir) + 1;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
}

static void set_target(struct cinit *c, int fd) {
	if (c->target >= 0)
		close(c->target);
	c->target = fd;
}

// check_proc refuses a target that really lies under /proc unless a proc
// filesystem is being mounted there: a symlink in the image must not aim a
// mount at /proc's security knobs.
static void check_proc(struct cinit *c, int fd, uint64_t proc, const char *fstype) {
	char link[64], real[4096];
	ssize_t n = readlink(fd_path(fd, link, sizeof(link)), real, sizeof(real) - 1);
	if (n < 0)
		fail(c, errno, "read handle path");
	real[n] = '\0';
	size_t rl = strlen(c->rootpath);
	const char *rel = real;
	if (strcmp(c->rootpath, "/") != 0) {
		if (strncmp(real, c->rootpath, rl) != 0 || (real[rl] != '\0' && real[rl] != '/'))
			fail(c, 0, "resolved %s lies outside the root", real);
		rel = real[rl] ? real + rl : "/";
	}
	if (strcmp(rel, "/proc") != 0 && strncmp(rel, "/proc/", 6) != 0)
		return;
	if (proc == PROC_ANY)
		return;
	fail(c, 0, "mount of type \"%s\" onto %s: only proc, or a bind onto a few /proc files, may be mounted under /proc", fstype, rel);
}

static void op_target(struct cinit *c) {
	const char *dest = get_str(c);
	uint64_t how = get_u64(c), proc = get_u64(c);
	const char *fstype = get_str(c);
	int fd;
	if (how == TARGET_DIR) {
		fd = mkdir_all_in(c, dest, 0755);
		if (fd < 0)
			fail(c, errno, "make mount point %s", dest);
	} else {
		fd = open_in(c, dest);
		if (fd < 0 && errno != ENOENT)
			fail(c, errno, "resolve %s in root", dest);
		if (fd < 0) {
			char dir[4096];
			const char *base;
			split(dest, dir, sizeof(dir), &base);
			int d = mkdir_all_in(c, dir, 0755);
			if (d < 0)
				fail(c, errno, "make parent of %s", dest);
			int f = openat(d, base, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (f < 0 && errno != EEXIST)
				fail(c, errno, "make mount point %s", dest);
			if (f >= 0)
				close(f);
			close(d);
			fd = open_in(c, dest);
			if (fd < 0)
				fail(c, errno, "resolve %s in root", dest);
		}
	}
	set_target(c, fd);
	check_proc(c, fd, proc, fstype);
}

// retarget resolves the last target again: a fresh resolution sees the
// mount just made on it, which the older handle is below.
static void retarget(struct cinit *c, const char *dest) {
	int fd = open_in(c, dest);
	if (fd < 0)
		fail(c, errno, "resolve %s in root", dest);
	set_target(c, fd);
}

static void op_mount(struct cinit *c) {
	const char *src = get_str(c), *fstype = get_str(c);
	uint64_t flags = get_u64(c);
	const char *data = get_str(c);
	char sb[64], tb[64];
	const char *s = src;
	if (src[0] == '\0') {
		if (c->source < 0)
			fail(c, 0, "init plan: bind without a source");
		s = fd_path(c->source, sb, sizeof(sb));
	}
	if (mount(s, fd_path(c->target, tb, sizeof(tb)), fstype[0] ? fstype : NULL, flags, data[0] ? data : NULL) < 0) {
		if (src[0] == '\0')
			fail(c, errno, "bind %s", c->source_path);
		fail(c, errno, "mount %s (%s)", src, fstype);
	}
	if (c->source >= 0) {
		close(c->source);
		c->source = -1;
	}
}

static const struct {
	unsigned long st, ms;
} statfs_flags[] = {
	{ST_RDONLY, MS_RDONLY}, {ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV},
	{ST_NOEXEC, MS_NOEXEC}, {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME},
	{ST_RELATIME, MS_RELATIME}, {ST_NOSYMFOLLOW, MS_NOSYMFOLLOW},
};
#define ATIME_FLAGS (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)

static unsigned long current_flags(struct cinit *c, const char *target) {
	struct statfs st;
	if (statfs(target, &st) < 0)
		fail(c, errno, "statfs");
	unsigned long out = 0;
	for (size_t i = 0; i < sizeof(statfs_flags) / sizeof(statfs_flags[0]); i++)
		if ((unsigned long)st.f_flags & statfs_flags[i].st)
			out |= statfs_flags[i].ms;
	return out;
}

// remount_bind sets per-mount flags; where the kernel locked some (EPERM),
// it keeps the ones the mount has, as the Go init's remountBind does.
static void remount_bind(struct cinit *c, const char *target, unsigned long flags, unsigned long all) {
	unsigned long base = MS_BIND | MS_REMOUNT;
	if (mount("", target, NULL, base | flags, NULL) == 0)
		return;
	if (errno != EPERM)
		fail(c, errno, "remount bind");
	unsigned long want = flags | (all & ATIME_FLAGS), cur = current_flags(c, target);
	if (want & ATIME_FLAGS)
		cur &= ~(unsigned long)(ATIME_FLAGS | MS_NODIRATIME);
	if (mount("", target, NULL, base | want | cur, NULL) < 0)
		fail(c, errno, "remount bind keeping locked flags");
}

static void remount_readonly(struct cinit *c, const char *target) {
	remount_bind(c, target, MS_RDONLY | current_flags(c, target), 0);
}

static void op_symlink(struct cinit *c) {
	const char *to = get_str(c), *dest = get_str(c);
	uint64_t flags = get_u64(c);
	char dir[4096];
	const char *base;
	split(dest, dir, sizeof(dir), &base);
	int d = open_in(c, dir);
	if (d < 0)
		fail(c, errno, "resolve %s in root", dir);
	if ((flags & LINK_REPLACE) && unlinkat(d, base, 0) < 0 && errno != ENOENT)
		fail(c, errno, "remove %s", dest);
	if (symlinkat(to, d, base) < 0 && !(errno == EEXIST && (flags & LINK_EXIST_OK)))
		fail(c, errno, "link %s", dest);
	close(d);
}

// op_device makes a device node, or binds the host's where mknod is
// refused.
static void op_device(struct cinit *c) {
	const char *path = get_str(c);
	mode_t mode = (mode_t)get_u64(c);
	dev_t dev = (dev_t)get_u64(c);
	uid_t uid = (uid_t)get_u64(c);
	gid_t gid = (gid_t)get_u64(c);
	char dir[4096], b1[64], b2[64];
	const char *base;
	split(path, dir, sizeof(dir), &base);
	int d = mkdir_all_in(c, dir, 0755);
	if (d < 0)
		fail(c, errno, "make parent");
	int r = mknodat(d, base, mode, dev);
	if (r < 0 && errno == EEXIST) {
		if (unlinkat(d, base, 0) < 0)
			fail(c, errno, "replace existing file");
		r = mknodat(d, base, mode, dev);
	}
	if (r < 0 && errno == EPERM) {
		if (mknodat(d, base, S_IFREG | 0600, 0) < 0 && errno != EEXIST)
			fail(c, errno, "make bind target");
		int src = open(path, O_PATH | O_CLOEXEC);
		if (src < 0)
			fail(c, errno, "open host device");
		int t = open_in(c, path);
		if (t < 0)
			fail(c, errno, "resolve %s in root", path);
		if (mount(fd_path(src, b1, sizeof(b1)), fd_path(t, b2, sizeof(b2)), NULL, MS_BIND, NULL) < 0)
			fail(c, errno, "bind host device");
		close(t);
		close(src);
		close(d);
		return;
	}
	if (r < 0)
		fail(c, errno, "mknod");
	if (fchownat(d, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		fail(c, errno, "chown");
	close(d);
}

static void op_bind_root(struct cinit *c) {
	const char *rootfs = get_str(c);
	int tree = (int)syscall(SYS_open_tree, AT_FDCWD, rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0 && errno == ENOSYS) {
		if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
			fail(c, errno, "bind rootfs onto itself");
		tree = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (tree < 0)
			fail(c, errno, "open rootfs");
	} else if (tree < 0) {
		fail(c, errno, "bind rootfs onto itself");
	} else if (syscall(SYS_move_mount, tree, "", AT_FDCWD, rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		fail(c, errno, "bind rootfs onto itself");
	}
	c->root = tree;
	char link[64];
	ssize_t n = readlink(fd_path(tree, link, sizeof(link)), c->rootpath, sizeof(c->rootpath) - 1);
	if (n < 0)
		fail(c, errno, "rootfs path");
	c->rootpath[n] = '\0';
}

// op_pivot makes the root the process's root with pivot_root(".", "."),
// then detaches the old root stacked below it.
static void op_pivot(struct cinit *c) {
	int old = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (old < 0)
		fail(c, errno, "open old root");
	if (fchdir(c->root) < 0)
		fail(c, errno, "enter new root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail(c, errno, "pivot_root");
	if (fchdir(old) < 0)
		fail(c, errno, "enter old root");
	if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		fail(c, errno, "make old root a slave");
	if (umount2(".", MNT_DETACH) < 0)
		fail(c, errno, "detach old root");
	if (chdir("/") < 0)
		fail(c, errno, "chdir to new root");
	close(old);
	close(c->root);
	c->root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->root < 0)
		fail(c, errno, "open root");
	snprintf(c->rootpath, sizeof(c->rootpath), "/");
}

// open_existing resolves p in the root; -1 with errno ENOENT when missing.
static int open_existing(struct cinit *c, const char *p) {
	int fd = open_in(c, p);
	if (fd < 0 && errno != ENOENT)
		fail(c, errno, "resolve in root");
	return fd;
}

static void op_readonly(struct cinit *c) {
	const char *p = get_str(c);
	char b[64];
	int fd = open_existing(c, p);
	if (fd < 0)
		return;
	if (mount(fd_path(fd, b, sizeof(b)), b, NULL, MS_BIND | MS_REC, NULL) < 0)
		fail(c, errno, "bind onto itself");
	close(fd);
	fd = open_in(c, p);
	if (fd < 0)
		fail(c, errno, "resolve %s in root", p);
	remount_readonly(c, fd_path(fd, b, sizeof(b)));
	close(fd);
}

static void op_mask(struct cinit *c) {
	const char *p = get_str(c);
	char b[64], nb[64];
	int fd = open_existing(c, p);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail(c, errno, "stat");
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", fd_path(fd, b, sizeof(b)), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			fail(c, errno, "mount empty tmpfs");
	} else {
		int null = open_in(c, "/dev/null");
		if (null < 0)
			fail(c, errno, "resolve /dev/null in root");
		if (mount(fd_path(null, nb, sizeof(nb)), fd_path(fd, b, sizeof(b)), NULL, MS_BIND, NULL) < 0)
			fail(c, errno, "bind /dev/null");
		close(null);
	}
	close(fd);
}

static void write_file(struct cinit *c, const char *path, const char *data, size_t n) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail(c, errno, "open %s", path);
	if (write(fd, data, n) != (ssize_t)n)
		fail(c, errno, "write %s", path);
	close(fd);
}

static void op_rlimit(struct cinit *c) {
	int res = (int)get_u64(c);
	struct rlimit want = {.rlim_cur = get_u64(c), .rlim_max = get_u64(c)};
	const char *name = get_str(c);
	if (setrlimit(res, &want) == 0)
		return;
	int e = errno;
	struct rlimit cur;
	if (e != EPERM || getrlimit(res, &cur) < 0 || want.rlim_max <= cur.rlim_max)
		fail(c, e, "set %s", name);
	struct rlimit got = {.rlim_cur = want.rlim_cur < cur.rlim_max ? want.rlim_cur : cur.rlim_max, .rlim_max = cur.rlim_max};
	if (setrlimit(res, &got) < 0)
		fail(c, errno, "set %s", name);
	warn(c, "%s hard limit %llu needs CAP_SYS_RESOURCE, which this host denies; set to soft %llu hard %llu",
	     name, (unsigned long long)want.rlim_max, (unsigned long long)got.rlim_cur, (unsigned long long)got.rlim_max);
}

static void op_oom(struct cinit *c) {
	long long v = (long long)get_u64(c);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%lld", v);
	int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail(c, errno, "set oomScoreAdj %lld", v);
	if (write(fd, buf, (size_t)n) == n) {
		close(fd);
		return;
	}
	if (errno != EACCES && errno != EPERM)
		fail(c, errno, "set oomScoreAdj %lld", v);
	char cur[32] = {0};
	if (pread(fd, cur, sizeof(cur) - 1, 0) <= 0)
		fail(c, EACCES, "set oomScoreAdj %lld", v);
	cur[strcspn(cur, "\n")] = '\0';
	close(fd);
	warn(c, "oomScoreAdj %lld needs CAP_SYS_RESOURCE, which this host denies; kept %s", v, cur);
}

// check_exec is the Go init's checkExecutable: 0, or an errno-like reason.
static const char *check_exec(const char *path, char *eb, size_t n) {
	struct stat st;
	if (stat(path, &st) < 0) {
		char e[256];
		snprintf(eb, n, "stat %s: %s", path, errno_text(errno, e, sizeof(e)));
		return eb;
	}
	if (S_ISDIR(st.st_mode))
		return "is a directory";
	if ((st.st_mode & 0111) == 0)
		return "permission denied";
	return NULL;
}

static void op_lookpath(struct cinit *c) {
	const char *name = get_str(c), *path = get_str(c);
	char eb[4200];
	if (strchr(name, '/') != NULL) {
		const char *why = check_exec(name, eb, sizeof(eb));
		if (why != NULL)
			fail(c, 0, "exec: \"%s\": %s", name, why);
		snprintf(c->exec_path, sizeof(c->exec_path), "%s", name);
		return;
	}
	const char *dir = path;
	for (;;) {
		const char *colon = strchr(dir, ':');
		size_t dl = colon ? (size_t)(colon - dir) : strlen(dir);
		char cand[4096];
		if (dl == 0)
			snprintf(cand, sizeof(cand), "./%s", name);
		else
			snprintf(cand, sizeof(cand), "%.*s/%s", (int)dl, dir, name);
		if (check_exec(cand, eb, sizeof(eb)) == NULL) {
			snprintf(c->exec_path, sizeof(c->exec_path), "%s", cand);
			return;
		}
		if (colon == NULL)
			break;
		dir = colon + 1;
	}
	fail(c, 0, "exec: \"%s\": executable file not found in $PATH", name);
}

static int mkdir_p(char *p, mode_t mode) {
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		int r = mkdir(p, mode);
		*s = '/';
		if (r < 0 && errno != EEXIST)
			return -1;
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static void op_cwd(struct cinit *c) {
	const char *cwd = get_str(c);
	// No handle of the build may be open when the cwd is resolved: a cwd
	// of /proc/self/fd/N would reach it (CVE-2024-21626).
	int *fds[] = {&c->target, &c->source, &c->root};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	if (chdir(cwd) < 0) {
		if (errno != ENOENT)
			fail(c, errno, "chdir to cwd \"%s\"", cwd);
		char buf[4096];
		snprintf(buf, sizeof(buf), "%s", cwd);
		if (mkdir_p(buf, 0755) < 0)
			fail(c, errno, "create cwd \"%s\"", cwd);
		if (chdir(cwd) < 0)
			fail(c, errno, "chdir to cwd \"%s\"", cwd);
	}
	char got[4096];
	if (getcwd(got, sizeof(got)) == NULL || got[0] != '/')
		fail(c, 0, "cwd \"%s\" lies outside the container's root", cwd);
}

static void op_seccomp(struct cinit *c) {
	uint64_t flags = get_u64(c);
	size_t n;
	const char *prog = get_strn(c, &n);
	if (n % sizeof(struct sock_filter) != 0 || n / sizeof(struct sock_filter) > 0xffff)
		fail(c, 0, "init plan: bad seccomp program");
	struct sock_fprog fp = {.len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = (struct sock_filter *)prog};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned long)flags, &fp) < 0)
		fail(c, errno, "load seccomp filter: seccomp(SECCOMP_SET_MODE_FILTER, flags %#llx)", (unsigned long long)flags);
}

static void op_capbound(struct cinit *c) {
	uint64_t keep = get_u64(c), last = get_u64(c);
	for (uint64_t cap = 0; cap <= last && cap < 64; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			fail(c, errno, "drop capability %llu from the bounding set", (unsigned long long)cap);
	}
}

static void op_user(struct cinit *c) {
	uid_t uid = (uid_t)get_u64(c);
	gid_t gid = (gid_t)get_u64(c);
	uint64_t n = get_u64(c);
	if (n > 65536)
		fail(c, 0, "init plan: too many groups");
	gid_t *groups = calloc(n ? n : 1, sizeof(gid_t));
	if (groups == NULL)
		fail(c, ENOMEM, "setgroups");
	for (uint64_t i = 0; i < n; i++)
		groups[i] = (gid_t)get_u64(c);
	// Raw system calls: one thread, no need for the C library's
	// broadcast to every thread.
	if (syscall(SYS_setgroups, (size_t)n, groups) < 0 && (n > 0 || errno != EPERM))
		fail(c, errno, "setgroups");
	free(groups);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail(c, errno, "keep capabilities");
	if (syscall(SYS_setresgid, gid, gid, gid) < 0)
		fail(c, errno, "setgid %u", gid);
	if (syscall(SYS_setresuid, uid, uid, uid) < 0)
		fail(c, errno, "setuid %u", uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail(c, errno, "clear keep-capabilities");
}

static void op_capset(struct cinit *c) {
	uint64_t eff = get_u64(c), perm = get_u64(c), inh = get_u64(c), amb = get_u64(c);
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2] = {
		{.effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh},
		{.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32), .inheritable = (uint32_t)(inh >> 32)},
	};
	if (syscall(SYS_capset, &h, d) < 0)
		fail(c, errno, "set capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		fail(c, errno, "set ambient capabilities");
	for (int cap = 0; cap < 64; cap++)
		if ((amb & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			fail(c, errno, "set ambient capabilities");
}

static void op_ready(struct cinit *c) {
	char msg[WARN_MAX + 64];
	int n;
	if (c->nwarnings > 0)
		n = snprintf(msg, sizeof(msg), "{\"type\":\"ready\",\"warnings\":[%s]}", c->warnings);
	else
		n = snprintf(msg, sizeof(msg), "{\"type\":\"ready\"}");
	if (send(c->sync, msg, (size_t)n, MSG_NOSIGNAL) < 0)
		fail(c, errno, "sync: send ready");
}

// op_fifo waits for `start`: it opens exec.fifo for writing, which blocks
// until start opens it to read, and keeps it open (close-on-exec) so that
// start sees the program executed before it runs poststart hooks.
static void op_fifo(struct cinit *c) {
	int fd = (int)get_u64(c);
	char path[64];
	close(c->sync);
	c->sync = 2;
	int f = open(fd_path(fd, path, sizeof(path)), O_WRONLY | O_CLOEXEC);
	if (f < 0)
		fail(c, errno, "open exec fifo");
	if (write(f, "0", 1) != 1)
		fail(c, errno, "write exec fifo");
	close(fd);
}

static void op_exec(struct cinit *c) {
	uint64_t argc = get_u64(c);
	if (argc == 0 || argc > 1 << 20)
		fail(c, 0, "init plan: bad argument count");
	char **argv = calloc(argc + 1, sizeof(char *));
	if (argv == NULL)
		fail(c, ENOMEM, "exec");
	for (uint64_t i = 0; i < argc; i++)
		argv[i] = (char *)get_str(c);
	uint64_t envc = get_u64(c);
	if (envc > 1 << 20)
		fail(c, 0, "init plan: bad environment count");
	char **envp = calloc(envc + 1, sizeof(char *));
	if (envp == NULL)
		fail(c, ENOMEM, "exec");
	for (uint64_t i = 0; i < envc; i++)
		envp[i] = (char *)get_str(c);
	execve(c->exec_path, argv, envp);
	c->ctx = "";
	fail(c, errno, "exec %s", argv[0]);
}

// send_master hands the pty master to the console socket, with the
// slave's name as the data, as runtime/console's receivers expect.
static void send_master(struct cinit *c, int sock, int master, const char *name) {
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	if (sendmsg(sock, &m, MSG_NOSIGNAL) < 0)
		fail(c, errno, "console: send console master");
}

// op_console gives the process a terminal, as the Go init's setupConsole
// does: a new pty from the container's devpts, its master to the console
// socket, its slave as the controlling terminal on fds 0-2 and bound onto
// /dev/console.
static void op_console(struct cinit *c) {
	int sock = (int)get_u64(c);
	uint64_t width = get_u64(c), height = get_u64(c);
	char name[64], b1[64], b2[64];
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		fail(c, errno, "console: open /dev/ptmx");
	unsigned int n;
	if (ioctl(master, TIOCGPTN, &n) < 0)
		fail(c, errno, "console: get pty number");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		fail(c, errno, "console: unlock pty");
	snprintf(name, sizeof(name), "/dev/pts/%u", n);
	send_master(c, sock, master, name);
	close(master);
	close(sock);
	if (setsid() < 0)
		fail(c, errno, "console: setsid");
	int slave = open(name, O_RDWR | O_CLOEXEC);
	if (slave < 0)
		fail(c, errno, "console: open %s", name);
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		fail(c, errno, "console: make %s the controlling terminal", name);
	if (width != 0 || height != 0) {
		struct winsize ws = {.ws_col = (unsigned short)width, .ws_row = (unsigned short)height};
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
			fail(c, errno, "console: set terminal size of %s", name);
	}
	for (int fd = 0; fd <= 2; fd++) {
		if (fd == slave) {
			if (fcntl(fd, F_SETFD, 0) < 0)
				fail(c, errno, "console: keep %s open across exec", name);
		} else if (dup3(slave, fd, 0) < 0) {
			fail(c, errno, "console: dup %s onto fd %d", name, fd);
		}
	}
	if (slave > 2)
		close(slave);
	// /dev/console: an empty file made in the root, the slave bound on it.
	int src = open_in(c, name);
	if (src < 0)
		fail(c, errno, "console: resolve %s in root", name);
	int dev = mkdir_all_in(c, "/dev", 0755);
	if (dev < 0)
		fail(c, errno, "console: make /dev");
	if (mknodat(dev, "console", S_IFREG | 0600, 0) < 0 && errno != EEXIST)
		fail(c, errno, "console: make /dev/console");
	close(dev);
	int dst = open_in(c, "/dev/console");
	if (dst < 0)
		fail(c, errno, "console: resolve /dev/console in root");
	if (mount(fd_path(src, b1, sizeof(b1)), fd_path(dst, b2, sizeof(b2)), NULL, MS_BIND, NULL) < 0)
		fail(c, errno, "console: bind %s onto /dev/console", name);
	close(src);
	close(dst);
}

// run carries out the plan, one operation after another.
static void run(struct cinit *c) {
	char b[64];
	for (;;) {
		uint32_t op = get_u32(c);
		switch (op) {
		case BOP_END:
			fail(c, 0, "init plan: ends without exec");
			break;
		case BOP_CONTEXT:
			c->ctx = get_str(c);
			break;
		case BOP_SETSID:
			if (setsid() < 0)
				fail(c, errno, "setsid");
			break;
		case BOP_UNSHARE: {
			uint64_t f = get_u64(c);
			if (unshare((int)f) < 0)
				fail(c, errno, "unshare");
			break;
		}
		case BOP_MOUNT_PATH: {
			const char *src = get_str(c), *target = get_str(c), *fstype = get_str(c);
			uint64_t flags = get_u64(c);
			const char *data = get_str(c);
			if (mount(src, target, fstype[0] ? fstype : NULL, flags, data[0] ? data : NULL) < 0)
				fail(c, errno, "mount %s", target);
			break;
		}
		case BOP_BIND_ROOT:
			op_bind_root(c);
			break;
		case BOP_TARGET:
			op_target(c);
			break;
		case BOP_SOURCE: {
			const char *p = get_str(c);
			if (c->source >= 0)
				close(c->source);
			c->source = open(p, O_PATH | O_CLOEXEC);
			c->source_path = p;
			if (c->source < 0)
				fail(c, errno, "open bind source");
			break;
		}
		case BOP_MOUNT:
			op_mount(c);
			break;
		case BOP_REMOUNT_BIND: {
			const char *dest = get_str(c);
			uint64_t flags = get_u64(c), all = get_u64(c);
			retarget(c, dest);
			remount_bind(c, fd_path(c->target, b, sizeof(b)), flags, all);
			break;
		}
		case BOP_SETATTR: {
			const char *dest = get_str(c);
			struct mount_attr attr = {.attr_set = get_u64(c)};
			attr.attr_clr = get_u64(c);
			retarget(c, dest);
			if (syscall(SYS_mount_setattr, -1, fd_path(c->target, b, sizeof(b)), AT_RECURSIVE, &attr, sizeof(attr)) < 0)
				fail(c, errno, "set recursive mount attributes");
			break;
		}
		case BOP_PROPAGATE: {
			const char *dest = get_str(c);
			uint64_t flags = get_u64(c);
			retarget(c, dest);
			if (mount("", fd_path(c->target, b, sizeof(b)), NULL, flags, NULL) < 0)
				fail(c, errno, "set propagation");
			break;
		}
		case BOP_SYMLINK:
			op_symlink(c);
			break;
		case BOP_DEVICE:
			op_device(c);
			break;
		case BOP_UMASK: {
			uint64_t m = get_u64(c);
			if (m == UINT64_MAX)
				umask(c->saved_umask);
			else
				c->saved_umask = umask((mode_t)m);
			break;
		}
		case BOP_PIVOT:
			op_pivot(c);
			break;
		case BOP_READONLY:
			op_readonly(c);
			break;
		case BOP_MASK:
			op_mask(c);
			break;
		case BOP_REMOUNT_RO:
			remount_readonly(c, get_str(c));
			break;
		case BOP_HOSTNAME: {
			size_t n;
			const char *s = get_strn(c, &n);
			if (sethostname(s, n) < 0)
				fail(c, errno, "set hostname");
			break;
		}
		case BOP_DOMAINNAME: {
			size_t n;
			const char *s = get_strn(c, &n);
			if (setdomainname(s, n) < 0)
				fail(c, errno, "set domainname");
			break;
		}
		case BOP_WRITE: {
			const char *path = get_str(c);
			size_t n;
			const char *data = get_strn(c, &n);
			write_file(c, path, data, n);
			break;
		}
		case BOP_KEYRING: {
			const char *name = get_str(c);
			if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0) < 0 && errno != ENOSYS)
				fail(c, errno, "join session keyring");
			break;
		}
		case BOP_RLIMIT:
			op_rlimit(c);
			break;
		case BOP_OOM:
			op_oom(c);
			break;
		case BOP_LOOKPATH:
			op_lookpath(c);
			break;
		case BOP_CWD:
			op_cwd(c);
			break;
		case BOP_CLOEXEC: {
			uint64_t from = get_u64(c);
			if (syscall(SYS_close_range, (unsigned)from, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
				fail(c, errno, "mark fds close-on-exec");
			break;
		}
		case BOP_SECCOMP:
			op_seccomp(c);
			break;
		case BOP_CAPBOUND:
			op_capbound(c);
			break;
		case BOP_USER:
			op_user(c);
			break;
		case BOP_CAPSET:
			op_capset(c);
			break;
		case BOP_NNP:
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
				fail(c, errno, "set no_new_privs");
			break;
		case BOP_WARN:
			warn(c, "%s", get_str(c));
			break;
		case BOP_READY:
			op_ready(c);
			break;
		case BOP_FIFO:
			op_fifo(c);
			break;
		case BOP_EXEC:
			op_exec(c);
			break;
		case BOP_CONSOLE:
			op_console(c);
			break;
		default:
			fail(c, 0, "init plan: unknown operation %u", op);
		}
	}
}

// berth_cinit runs when the parent chose a C init (_BERTH_CINIT names the
// sync socket). A first message that is not a plan hands over to the Go
// init, which reads it itself.
__attribute__((constructor)) static void berth_cinit(void) {
	const char *v = getenv("_BERTH_CINIT");
	if (v == NULL || *v == '\0')
		return;
	char *endp;
	long fd = strtol(v, &endp, 10);
	static struct cinit c;
	c.sync = 2;
	c.root = c.target = c.source = -1;
	if (*endp != '\0' || fd < 3 || fd > 1 << 20)
		fail(&c, 0, "berth init: bad sync fd");
	c.sync = (int)fd;
	// Closed stdio (a terminal's container gets none) is /dev/null, as
	// the Go runtime makes it: otherwise the plan's handles would take
	// fds 0-2, and the terminal's dup3 onto them would replace a handle.
	for (int i = 0; i <= 2; i++) {
		if (fcntl(i, F_GETFD) < 0 && errno == EBADF) {
			int null = open("/dev/null", O_RDWR);
			if (null != i)
				fail(&c, null < 0 ? errno : EBADF, "berth init: open /dev/null as fd %d", i);
		}
	}
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	char magic[sizeof(BERTH_PLAN_MAGIC) - 1];
	ssize_t n = recv(c.sync, magic, sizeof(magic), MSG_PEEK | MSG_TRUNC);
	if (n < 0)
		fail(&c, errno, "berth init: read sync socket");
	if (n == 0)
		_exit(1); // the parent is gone
	if ((size_t)n < sizeof(magic) || memcmp(magic, BERTH_PLAN_MAGIC, sizeof(magic)) != 0) {
		// A bootstrap for the Go init, which finds the socket through
		// the same variable (runtime.IsInit).
		return;
	}
	char *plan = malloc((size_t)n);
	if (plan == NULL)
		fail(&c, ENOMEM, "berth init: read plan");
	if (recv(c.sync, plan, (size_t)n, 0) != n)
		fail(&c, errno, "berth init: read plan");
	clearenv();
	c.p = plan + sizeof(magic);
	c.end = plan + n;
	run(&c);
}
