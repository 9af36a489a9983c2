//go:build linux && cgo

// Why C: the monitor must sit at the memory of a small C program, which a
// started Go runtime cannot; and the init must not start the runtime's
// threads inside every container. A constructor runs before the runtime
// starts, so both take over from here and never return to Go.

#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

// glibc passes argc, argv and envp to ELF constructors, static or dynamic.
__attribute__((constructor)) static void berth_monitor_entry(int argc, char **argv, char **envp) {
	(void)envp;
	if (argc > 0 && argv != NULL && argv[0] != NULL) {
		const char *base = strrchr(argv[0], '/');
		base = base != NULL ? base + 1 : argv[0];
		if (strcmp(base, "berth-init") == 0)
			berth_init_main(argc, argv);
	}
	const char *v = getenv("_BERTH_MONITOR");
	if (v != NULL && *v != '\0')
		berth_monitor_main();
}
