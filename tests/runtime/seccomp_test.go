package runtime_test

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeccomp(t *testing.T) {
	h := newHarness(t)
	eperm, enospc := uint(1), uint(28)
	b := h.bundle("mkdir /tmp/d 2>&1; chmod 600 /etc/passwd 2>&1; echo done", func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eperm},
				{Names: []string{"chmod", "fchmodat", "fchmodat2"}, Action: specs.ActErrno, ErrnoRet: &enospc},
				{Names: []string{"a_syscall_that_does_not_exist"}, Action: specs.ActErrno},
			},
		}
	})
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "Operation not permitted")
	assert.Contains(t, out, "No space left on device")
	assert.Contains(t, out, "done")

	b = h.bundle("true", func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}
	})
	_, stderr, code = h.runOut(b)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "SCMP_ACT_BOGUS")
}
