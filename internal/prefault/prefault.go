//go:build linux && cgo

// Package prefault maps berth's code into memory in one system call when
// a berth process starts, instead of page fault by page fault.
//
// Every berth process — the CLI, each container's monitor phases and each
// container's init — starts the Go runtime of a large binary, whose
// package initialisers touch code spread across it: hundreds of page
// faults, each a trap into the kernel that virtual machines make dear.
// madvise(MADV_POPULATE_READ) over the read-only part of the binary does
// the same work in one call, a few milliseconds less per process. It is
// skipped where it would cost memory rather than save time: the monitor's
// C steady state and the container's --init, which never start Go and are
// meant to stay small. On kernels without MADV_POPULATE_READ (before 5.14)
// the call fails and nothing changes.
package prefault

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

// Bounds the linker defines: the start of the image and the end of its
// initialised data.
extern char __executable_start[], edata[];

// Runs before the other constructors (nsenter, the monitor).
__attribute__((constructor(101))) static void berth_prefault(int argc, char **argv) {
	// The monitor's C phase (engine/monitor: _BERTH_MONITOR) and
	// berth-init stay in C and small.
	if (getenv("_BERTH_MONITOR") != NULL)
		return;
	if (argc > 0 && argv != NULL && argv[0] != NULL) {
		const char *base = strrchr(argv[0], '/');
		base = base != NULL ? base + 1 : argv[0];
		if (strcmp(base, "berth-init") == 0)
			return;
	}
	uintptr_t a = (uintptr_t)__executable_start & ~(uintptr_t)4095;
	uintptr_t b = ((uintptr_t)edata + 4095) & ~(uintptr_t)4095;
	madvise((void *)a, b - a, MADV_POPULATE_READ);
}
*/
import "C"
