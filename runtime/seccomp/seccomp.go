// Package seccomp turns the seccomp section of an OCI spec into a kernel
// seccomp filter and installs it on the calling thread.
//
// Compile does all the work that can fail on a bad config: it checks the
// config, builds the filter with libseccomp and has libseccomp generate the
// BPF program. Load then installs that program with one seccomp(2) call.
// Calling seccomp(2) directly rather than through libseccomp's loader puts
// every filter flag under berth's control, whatever the version of the
// library linked in: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, for one, has
// no libseccomp attribute before 2.6.
package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Filter is a compiled filter, ready to load on the calling thread.
type Filter struct {
	prog []unix.SockFilter
	// flags are the seccomp(2) flags to load with, listener flags
	// included.
	flags uint
	// notify says a rule uses SCMP_ACT_NOTIFY: the kernel hands back a
	// listener fd on load.
	notify bool
}

// Compile checks cfg and builds the filter without loading it. Unknown
// syscall names are skipped, as runc does, since profiles list syscalls
// that only newer kernels have; unknown actions, architectures, flags and
// operators are errors that name the bad value.
func Compile(cfg *specs.LinuxSeccomp) (*Filter, error) {
	p, err := makePlan(cfg)
	if err != nil {
		return nil, err
	}
	return build(p)
}

// build creates the libseccomp context for p, adds its architectures and
// rules, and keeps only the generated program: the context is freed
// before build returns.
func build(p *plan) (*Filter, error) {
	ctx, err := libseccomp.NewFilter(p.defaultAction)
	if err != nil {
		return nil, fmt.Errorf("create filter: %w", err)
	}
	defer ctx.Release()
	for _, name := range p.arches {
		if err := addArch(ctx, arches[name]); err != nil {
			return nil, fmt.Errorf("add architecture %s: %w", name, err)
		}
	}
	f := &Filter{flags: p.flags}
	for _, r := range p.rules {
		nr, err := libseccomp.GetSyscallFromName(r.name)
		if err != nil {
			continue // a syscall this libseccomp does not know
		}
		if err := ctx.AddRuleConditional(nr, r.action, r.conds); err != nil {
			return nil, fmt.Errorf("add rule for %s: %w", r.name, err)
		}
		if r.action == libseccomp.ActNotify {
			f.notify = true
		}
	}
	if f.notify {
		f.flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if p.waitKillable {
			f.flags |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		}
	}
	if f.prog, err = export(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// addArch adds a to ctx unless it is there already (the native one always
// is, and libseccomp refuses to add it twice).
func addArch(ctx *libseccomp.ScmpFilter, a libseccomp.ScmpArch) error {
	present, err := ctx.IsArchPresent(a)
	if err != nil {
		return err
	}
	if present {
		return nil
	}
	return ctx.AddArch(a)
}

// export has libseccomp write the filter's BPF program and decodes it.
// libseccomp writes only to a file descriptor (its in-memory export needs
// 2.6), so the program goes through a memfd, which needs no file system:
// Compile may run after the container's root is in place.
func export(ctx *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create memfd for the filter: %w", err)
	}
	file := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer file.Close()
	if err := ctx.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("generate filter program: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read filter program: %w", err)
	}
	raw, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("read filter program: %w", err)
	}
	return decodeProgram(raw)
}

// decodeProgram splits raw into struct sock_filter instructions, which the
// kernel reads in the machine's byte order: u16 code, u8 jt, u8 jf, u32 k.
func decodeProgram(raw []byte) ([]unix.SockFilter, error) {
	const size = int(unsafe.Sizeof(unix.SockFilter{}))
	if len(raw) == 0 || len(raw)%size != 0 {
		return nil, fmt.Errorf("filter program of %d bytes is not a whole number of instructions", len(raw))
	}
	prog := make([]unix.SockFilter, len(raw)/size)
	for i := range prog {
		b := raw[i*size:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	return prog, nil
}

// Load installs the filter on the calling OS thread (the caller has locked
// it, and holds no_new_privs or CAP_SYS_ADMIN) and returns the notification
// listener fd, or -1 when no rule uses SCMP_ACT_NOTIFY. The listener fd is
// close-on-exec; the caller owns it.
func (f *Filter) Load() (int, error) {
	if f == nil || f.prog == nil {
		return -1, errors.New("load a released filter")
	}
	if len(f.prog) > 0xffff {
		return -1, fmt.Errorf("filter program of %d instructions is too long", len(f.prog))
	}
	prog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f.prog)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, flags %#x): %w", f.flags, errno)
	}
	if !f.notify {
		return -1, nil
	}
	return int(r), nil
}

// Release frees what the filter holds; Load fails after it. The libseccomp
// context itself is freed by Compile once the program is generated, so
// Release is cheap and safe to call more than once.
func (f *Filter) Release() {
	if f != nil {
		f.prog = nil
	}
}

// Instructions returns the number of BPF instructions of the filter, for
// diagnostics (the kernel takes at most 4096 per filter).
func (f *Filter) Instructions() int {
	if f == nil {
		return 0
	}
	return len(f.prog)
}
