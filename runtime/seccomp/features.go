package seccomp

import (
	"errors"
	"sort"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Features reports what this build supports, for `berth runtime features`.
// Archs lists the architectures the linked libseccomp knows; SupportedFlags
// the flags the running kernel accepts (TSYNC always: it needs nothing,
// see flags).
func Features() *features.Seccomp {
	enabled := true // compiled in, which is what the field means
	return &features.Seccomp{
		Enabled:        &enabled,
		Actions:        sortedKeys(actions),
		Operators:      sortedKeys(operators),
		Archs:          supportedArches(),
		KnownFlags:     sortedKeys(flags),
		SupportedFlags: supportedFlags(),
	}
}

// Enabled reports whether the kernel supports seccomp filters.
func Enabled() bool {
	return probeFilter(0)
}

// probeFilter asks the kernel whether it would take a filter with these
// flags, without installing one: seccomp(2) checks the flags (EINVAL) and
// then reads the program, and a nil program fails that read with EFAULT.
// The permission check comes later still, so the probe needs no privilege.
func probeFilter(flags uint) bool {
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), 0)
	return errors.Is(errno, unix.EFAULT)
}

func supportedFlags() []string {
	var out []string
	for _, name := range sortedKeys(flags) {
		bit := flags[specs.LinuxSeccompFlag(name)]
		if name == string(specs.LinuxSeccompFlagWaitKillableRecv) {
			// The kernel takes this flag only with a listener.
			bit = unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		}
		if probeFilter(bit) {
			out = append(out, name)
		}
	}
	return out
}

// supportedArches is computed once: it asks libseccomp about each
// architecture by adding it to a scratch filter.
var supportedArches = sync.OnceValue(func() []string {
	ctx, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return nil
	}
	defer ctx.Release()
	var out []string
	for _, name := range sortedKeys(arches) {
		if addArch(ctx, arches[specs.Arch(name)]) == nil {
			out = append(out, name)
		}
	}
	return out
})

// sortedKeys returns the keys of m as strings, sorted, for Features.
func sortedKeys[K ~string, V any](m map[K]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}
