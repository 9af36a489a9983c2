//go:build linux && cgo

package nsenter

/*
// Why C: setns(2) into a user, mount or time namespace is refused to a
// multi-threaded process, and the Go runtime has started threads before
// any Go code runs. A constructor runs before the runtime starts, while the
// process still has one thread. It is kept to what must happen there.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

// Namespace types in the order they are joined: user first, so that the
// others are joined with the capabilities it grants; mnt last, since it
// changes the root under which anything else would be resolved.
static const struct {
	const char *name;
	int flag;
} berth_ns[] = {
	{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
	{"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID}, {"cgroup", CLONE_NEWCGROUP},
	{"time", CLONE_NEWTIME}, {"mnt", CLONE_NEWNS},
};
#define BERTH_NNS (sizeof(berth_ns) / sizeof(berth_ns[0]))

// berth_fail reports one failure on _BERTH_NSENTER_ERRFD (else stderr) and
// exits without running anything else of the process.
static void berth_fail(const char *type, const char *path, int err) {
	char line[4608];
	int fd = 2;
	const char *s = getenv("_BERTH_NSENTER_ERRFD");
	if (s != NULL && *s != '\0') {
		char *end;
		long v = strtol(s, &end, 10);
		if (*end == '\0' && v >= 0 && v <= 0x7fffffff)
			fd = (int)v;
	}
	int n = snprintf(line, sizeof(line), "berth: join %s namespace %s: %s\n",
			 type, path, strerror(err));
	if (n > (int)sizeof(line))
		n = sizeof(line);
	if (n > 0 && write(fd, line, n) < 0) {
		// Nowhere left to report to.
	}
	_exit(1);
}

// berth_same_pidns reports whether fd is the pid namespace the process is
// in. Another one cannot be joined here: see the package documentation.
static int berth_same_pidns(int fd) {
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat("/proc/self/ns/pid", &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

__attribute__((constructor)) static void berth_nsenter(void) {
	const char *env = getenv("_BERTH_NSENTER");
	if (env == NULL)
		return;
	char *list = strdup(env);
	if (list == NULL)
		berth_fail("any", env, ENOMEM);
	int fds[BERTH_NNS];
	const char *paths[BERTH_NNS];
	for (size_t k = 0; k < BERTH_NNS; k++)
		fds[k] = -1;

	// Open every path before joining anything: /proc/<pid> paths stop
	// resolving once the mount namespace has changed.
	char *save = NULL;
	for (char *it = strtok_r(list, ",", &save); it != NULL; it = strtok_r(NULL, ",", &save)) {
		char *path = strchr(it, ':');
		if (path == NULL)
			berth_fail(it, "", EINVAL);
		*path++ = '\0';
		size_t k = 0;
		while (k < BERTH_NNS && strcmp(berth_ns[k].name, it) != 0)
			k++;
		if (k == BERTH_NNS || fds[k] >= 0)
			berth_fail(it, path, EINVAL);
		fds[k] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[k] < 0)
			berth_fail(it, path, errno);
		paths[k] = path;
	}

	for (size_t k = 0; k < BERTH_NNS; k++) {
		if (fds[k] < 0)
			continue;
		if (berth_ns[k].flag == CLONE_NEWPID) {
			if (!berth_same_pidns(fds[k]))
				berth_fail(berth_ns[k].name, paths[k], EINVAL);
		} else if (setns(fds[k], berth_ns[k].flag) < 0) {
			berth_fail(berth_ns[k].name, paths[k], errno);
		}
		close(fds[k]);
	}
	free(list);
	unsetenv("_BERTH_NSENTER");
}
*/
import "C"
