package runtime_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// CVE-2019-5736: a container process could reopen the runtime's binary
// through /proc/<pid>/exe and overwrite it on the host once the runtime
// exited. berth's init must run from a copy nobody can write.
func TestRuntimeBinaryCannotBeOverwritten(t *testing.T) {
	h := newHarness(t)
	// A private copy: no other process may be executing it when the write
	// is tried, or the kernel's "text file busy" would hide the result.
	private := filepath.Join(t.TempDir(), "berth")
	data, err := os.ReadFile(h.bin)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(private, data, 0o755))
	h.bin = private
	id := h.id()
	h.must("create", "--bundle", h.bundle("true", nil), id)
	pid := h.state(id).Pid
	// The init runs berth until start; grab its executable as an attacker
	// inside the container would.
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/exe", pid), unix.O_PATH|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	h.must("start", id)
	h.waitStatus(id, "stopped")
	h.must("delete", id)

	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_WRONLY, 0)
	if err == nil {
		f.Close()
		t.Fatal("the runtime's binary was opened for writing through the container's /proc/<pid>/exe")
	}
	assert.True(t, errors.Is(err, unix.EROFS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES),
		"want a read-only refusal, got %v", err)
}

// CVE-2024-21626: a host fd left open in init let process.cwd point at
// /proc/self/fd/N outside the container. No fd but stdio may reach the
// program, and cwd must resolve inside the root.
func TestNoHostFdLeaks(t *testing.T) {
	h := newHarness(t)
	out, stderr, code := h.runOut(h.bundle("ls /proc/self/fd | sort -n | tr '\\n' ' '", nil))
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "0 1 2 3 ", out, "only stdio, and the fd ls opens itself")

	for n := 3; n <= 8; n++ {
		b := h.bundle("pwd; ls ../../../ 2>/dev/null | head -3", func(s *specs.Spec) {
			s.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", n)
		})
		out, _, code := h.runOut(b)
		if code == 0 {
			assert.False(t, strings.HasPrefix(out, "(unreachable)"), "cwd /proc/self/fd/%d escaped: %s", n, out)
			assert.NotContains(t, out, "sys/fs/cgroup")
		}
	}
}

// A symlink in the image must not redirect a mount to the host.
func TestMountThroughSymlinkStaysInside(t *testing.T) {
	h := newHarness(t)
	hostDir := t.TempDir()
	b := h.bundle("ls -d /evil/x && echo inside", func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/evil/x", Type: "tmpfs", Source: "tmpfs"})
	})
	require.NoError(t, os.Symlink(hostDir, filepath.Join(rootfsOf(b), "evil")))
	before := readFile(t, "/proc/self/mountinfo")
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "inside")
	_, err := os.Stat(filepath.Join(hostDir, "x"))
	assert.True(t, os.IsNotExist(err), "mount point made on the host: %v", err)
	assert.Equal(t, before, readFile(t, "/proc/self/mountinfo"), "host mounts changed")
	_, err = os.Stat(filepath.Join(rootfsOf(b), hostDir, "x"))
	assert.NoError(t, err, "the mount point belongs inside the rootfs")
}
