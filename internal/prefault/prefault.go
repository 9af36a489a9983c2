//go:build linux && cgo

// Package prefault spares a berth process most of the page faults of its
// start-up.
//
// Every berth process — the CLI, each container's monitor phases and each
// container's init — starts the Go runtime of a large binary, whose
// package initialisers touch code spread across it and whose allocator
// touches one fresh heap page after another: hundreds of page faults, each
// a trap into the kernel that virtual machines make dear (on the
// development VM a fault costs tens of microseconds, and faults were a
// third of a cached `berth build`). Three things avoid them:
//
//   - madvise(MADV_POPULATE_READ) maps the binary's code and read-only
//     data in one call;
//   - madvise(MADV_POPULATE_WRITE) gives the initialised data its private
//     copies in one call, instead of a copy-on-write fault per page;
//   - the Go heap is asked for transparent huge pages (MADV_HUGEPAGE), so
//     its first 4 MiB cost two faults rather than a thousand. The runtime
//     maps heap memory through the C library's mmap in a cgo binary; the
//     link wraps that mmap (-Wl,--wrap=mmap) and marks the heap arena
//     mappings as they are made. Go stopped doing this itself in 1.21.1;
//     GODEBUG=disablethp=1 still turns it off, since the runtime then
//     marks the same mappings MADV_NOHUGEPAGE right after.
//
// None of it runs where it would cost memory rather than time: the
// monitor's C steady state and the container's --init never start Go and
// are meant to stay small. On kernels without these advice values the
// calls fail and nothing changes.
package prefault

/*
#cgo LDFLAGS: -Wl,--wrap=mmap
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE_MASK ((uintptr_t)4095)
#define HUGE_PAGE ((size_t)2 << 20)

// Bounds the linker defines: the start of the image, of its writable
// data, and the end of its initialised data.
extern char __executable_start[], __data_start[], edata[];

static void populate(char *from, char *to, int advice) {
	uintptr_t a = (uintptr_t)from & ~PAGE_MASK;
	uintptr_t b = ((uintptr_t)to + PAGE_MASK) & ~PAGE_MASK;
	if (b > a)
		madvise((void *)a, b - a, advice);
}

// Runs before the other constructors (nsenter, the monitor).
__attribute__((constructor(101))) static void berth_prefault(int argc, char **argv) {
	// The monitor's C phase (engine/monitor: _BERTH_MONITOR), the C
	// container init (runtime/cinit: _BERTH_CINIT) and berth-init stay
	// in C and small.
	if (getenv("_BERTH_MONITOR") != NULL || getenv("_BERTH_CINIT") != NULL)
		return;
	if (argc > 0 && argv != NULL && argv[0] != NULL) {
		const char *base = strrchr(argv[0], '/');
		base = base != NULL ? base + 1 : argv[0];
		if (strcmp(base, "berth-init") == 0)
			return;
	}
	populate(__executable_start, __data_start, MADV_POPULATE_READ);
	populate(__data_start, edata, MADV_POPULATE_WRITE);
}

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);

// The Go runtime maps its heap arenas as fixed, anonymous, writable
// mappings of 4 MiB or more; nothing else berth maps in C looks like that.
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
	void *p = __real_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && fd == -1 && (flags & MAP_ANONYMOUS) && (flags & MAP_FIXED) &&
	    (prot & PROT_WRITE) && len >= HUGE_PAGE)
		madvise(p, len, MADV_HUGEPAGE);
	return p;
}
*/
import "C"
