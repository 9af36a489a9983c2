package runtime_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runAs runs a bundle with the init kind forced: "go" for the Go init,
// "" for the default (the C init where the spec allows it).
func (h *harness) runAs(kind, bundle string) (string, string, int) {
	h.t.Helper()
	cmd := exec.Command(h.bin, "runtime", "--root", h.root, "run", "--bundle", bundle, h.id())
	cmd.Env = append(os.Environ(), "BERTH_INIT="+kind)
	return runBounded(h.t, cmd, nil)
}

// initThreads creates a container with the init kind forced and returns
// how many threads its init has while it waits for start: the C init has
// one, a Go init several.
func (h *harness) initThreads(kind, bundle string) int {
	h.t.Helper()
	id := h.id()
	cmd := exec.Command(h.bin, "runtime", "--root", h.root, "create", "--bundle", bundle, id)
	cmd.Env = append(os.Environ(), "BERTH_INIT="+kind)
	_, stderr, code := runBounded(h.t, cmd, nil)
	require.Equal(h.t, 0, code, stderr)
	defer h.must("delete", "--force", id)
	return h.threads(id)
}

// threads returns how many threads the init of container id has.
func (h *harness) threads(id string) int {
	h.t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.state(id).Pid))
	require.NoError(h.t, err)
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			var n int
			_, err := fmt.Sscan(v, &n)
			require.NoError(h.t, err)
			return n
		}
	}
	h.t.Fatal("no Threads line in the init's status")
	return 0
}

// A container the C init builds must be the one the Go init builds:
// mounts, devices, identity, capabilities, limits, seccomp, names and
// sysctls, for a spec that uses each of them.
func TestCInitMatchesGoInit(t *testing.T) {
	h := newHarness(t)
	script := strings.Join([]string{
		"id", "hostname", "cat /proc/sys/kernel/domainname",
		"grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status",
		"umask", "pwd", "ulimit -n", "ulimit -Hn",
		"cat /proc/sys/net/ipv4/ip_forward", "cat /proc/self/oom_score_adj", "ulimit -q",
		"cat /proc/self/mounts",
		"ls -ln /dev | awk '{print $1, $3, $4, $5, $6, $NF}'",
		"ls /proc/self/fd",
		"cat /proc/kcore 2>&1 | head -c 20; echo",
		"mkdir /tmp/x 2>&1; echo mkdir $?",
		"touch /ro 2>&1; echo touch $?",
		"cat /etc/bound", "ls /mnt/dir",
	}, "; echo ---; ")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bound"), []byte("bound file\n"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dir"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dir", "inside"), nil, 0o644))
	umask := uint32(0o027)
	bundle := h.bundle(script, func(s *specs.Spec) {
		s.Hostname, s.Domainname = "cinit", "example.test"
		s.Process.Cwd = "/tmp/here"
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{20, 30}, Umask: &umask}
		s.Process.NoNewPrivileges = true
		// The message queue limit and a negative OOM score need
		// CAP_SYS_RESOURCE, which some hosts deny: then both inits warn.
		s.Process.Rlimits = []specs.POSIXRlimit{
			{Type: "RLIMIT_NOFILE", Soft: 321, Hard: 654}, {Type: "RLIMIT_MSGQUEUE", Soft: 1 << 30, Hard: 1 << 30},
		}
		oom := -500
		s.Process.OOMScoreAdj = &oom
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding: []string{"CAP_CHOWN", "CAP_KILL"}, Effective: []string{"CAP_KILL"},
			Permitted: []string{"CAP_KILL"}, Inheritable: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"},
		}
		s.Root.Readonly = true
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=1777", "size=1m"}},
			specs.Mount{Destination: "/etc/bound", Type: "bind", Source: filepath.Join(dir, "bound"), Options: []string{"bind", "ro"}},
			specs.Mount{Destination: "/mnt/dir", Type: "bind", Source: filepath.Join(dir, "dir"), Options: []string{"rbind", "nosuid", "rprivate"}},
		)
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{
				Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: ptrUint(1),
			}},
		}
	})
	cOut, cErr, cCode := h.runAs("", bundle)
	goOut, goErr, goCode := h.runAs("go", bundle)
	require.Equal(t, 0, goCode, goErr)
	require.Equal(t, 0, cCode, cErr)
	assert.Equal(t, goErr, cErr)
	assert.Equal(t, goOut, cOut)
	// The checks above must have seen something.
	for _, want := range []string{"uid=1000 gid=1000 groups=20,30", "cinit", "example.test", "NoNewPrivs:\t1", "Seccomp:\t2",
		"0027", "/tmp/here", "321", "654", "tmpfs /tmp tmpfs", "mkdir 1", "touch 1", "bound file", "inside"} {
		assert.Contains(t, cOut, want)
	}

	// The C init really ran: one thread where a Go init has several.
	plain := h.bundle("true", nil)
	assert.Equal(t, 1, h.initThreads("", plain))
	assert.Greater(t, h.initThreads("go", plain), 1)
}

// Failures read the same from either init, and the exit code a caller
// derives from them (not found, not executable) stays the same.
func TestCInitErrorsMatchGoInit(t *testing.T) {
	h := newHarness(t)
	cases := map[string]func(*specs.Spec){
		"not found":    func(s *specs.Spec) { s.Process.Args = []string{"nosuchprogram"} },
		"no such file": func(s *specs.Spec) { s.Process.Args = []string{"/bin/nosuchprogram"} },
		"a directory":  func(s *specs.Spec) { s.Process.Args = []string{"/bin"} },
		"bad sysctl":   func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.nosuch.key": "1"} },
		"bind source": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nonexistent", Options: []string{"bind"}})
		},
		"mount on /proc": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/sys", Type: "tmpfs", Source: "tmpfs"})
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			bundle := h.bundle("true", edit)
			_, cErr, cCode := h.runAs("", bundle)
			_, goErr, goCode := h.runAs("go", bundle)
			assert.NotEqual(t, 0, goCode)
			assert.Equal(t, goCode, cCode)
			assert.Equal(t, goErr, cErr)
		})
	}
}

func ptrUint(v uint) *uint { return &v }

// A spec the plan cannot express, found only after the init started as
// the C init (here a mount point reached through a symlink in the image,
// whose target the Go init makes), gets the Go bootstrap: the waiting C
// init hands over to the Go init, which builds the container.
func TestCInitHandsOverToGoInit(t *testing.T) {
	h := newHarness(t)
	bundle := h.bundle("ls -d /made/here && grep -c ' /made/here ' /proc/self/mounts", func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/link/here", Type: "tmpfs", Source: "tmpfs"})
	})
	require.NoError(t, os.Symlink("/made", filepath.Join(bundle, "rootfs", "link")))
	out, stderr, code := h.runAs("", bundle)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "/made/here\n1\n", out)
	// The Go init did it: several threads while it waits for start.
	assert.Greater(t, h.initThreads("", bundle), 1)
}
