//go:build linux && cgo

// berth-init: the container's minimal init (`--init`). It starts the
// command as its only direct child, forwards the signals it receives to it,
// reaps every zombie that is re-parented to it, and exits with the
// command's status once the command has exited.

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor.h"

// init_sigset is every signal the init takes through sigwaitinfo: all but
// those the kernel raises for a fault of the process itself, which must
// stay deliverable.
static void init_sigset(sigset_t *set) {
	sigfillset(set);
	static const int sync_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT};
	for (size_t k = 0; k < sizeof(sync_sigs) / sizeof(sync_sigs[0]); k++)
		sigdelset(set, sync_sigs[k]);
}

// init_child runs in the forked child: default dispositions, an empty
// mask, then the command. Exit codes follow the shell's: 127 when the
// command is not found, 126 when it cannot be executed.
static void init_child(char **cmd) {
	for (int s = 1; s < NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		// Reserved real-time signals answer EINVAL: nothing to reset.
		(void)signal(s, SIG_DFL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvp(cmd[0], cmd);
	int err = errno;
	dprintf(2, "berth-init: exec %s: %s\n", cmd[0], strerror(err));
	_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

// init_code is the shell-style exit code of a wait status.
static int init_code(int status) {
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

void berth_init_main(int argc, char **argv) {
	int first = 1;
	if (first < argc && strcmp(argv[first], "--") == 0)
		first++;
	if (first >= argc) {
		dprintf(2, "berth-init: no command given (usage: berth-init [--] command [args...])\n");
		_exit(2);
	}

	// Blocked signals are never dropped by the kernel, even for the pid 1
	// of a namespace with default dispositions: they wait for sigwaitinfo.
	sigset_t set;
	init_sigset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	// Outside a pid namespace of its own the init still collects the
	// orphans of its command, as pid 1 would.
	if (getpid() != 1)
		(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	pid_t child = fork();
	if (child < 0) {
		dprintf(2, "berth-init: fork: %s\n", strerror(errno));
		_exit(1);
	}
	if (child == 0)
		init_child(argv + first);

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue; // EINTR: a stop/continue; nothing to do.
		if (sig != SIGCHLD) {
			(void)kill(child, sig);
			continue;
		}
		int code = -1;
		for (;;) {
			int status;
			pid_t p = waitpid(-1, &status, WNOHANG);
			if (p <= 0)
				break;
			if (p == child)
				code = init_code(status);
		}
		if (code >= 0)
			_exit(code);
	}
}
