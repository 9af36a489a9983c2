package runtime_test

import (
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

func TestProcessSettings(t *testing.T) {
	h := newHarness(t)
	umask := uint32(0o027)
	b := h.bundle(`echo "$FOO"; pwd; id -u; id -g; id -G; umask; hostname; cat /proc/self/status | grep NoNewPrivs`, func(s *specs.Spec) {
		s.Process.Env = append(s.Process.Env, "FOO=bar baz")
		s.Process.Cwd = "/tmp/work"
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000, 2001}, Umask: &umask}
		s.Hostname = "box"
		s.Process.NoNewPrivileges = true
	})
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 8, out)
	assert.Equal(t, "bar baz", lines[0])
	assert.Equal(t, "/tmp/work", lines[1])
	assert.Equal(t, "1000", lines[2])
	assert.Equal(t, "1001", lines[3])
	assert.ElementsMatch(t, []string{"1001", "2000", "2001"}, strings.Fields(lines[4]))
	assert.Equal(t, "0027", lines[5])
	assert.Equal(t, "box", lines[6])
	assert.Contains(t, lines[7], "1")
}

func TestCapabilities(t *testing.T) {
	h := newHarness(t)
	b := h.bundle("grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status", func(s *specs.Spec) {
		c := []string{"CAP_NET_RAW", "CAP_CHOWN"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Ambient: c, Inheritable: c}
	})
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	// CAP_CHOWN is bit 0, CAP_NET_RAW bit 13: 0x2001.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.True(t, strings.HasSuffix(line, "0000000000002001"), line)
	}

	// As the runtime spec asks: a capability that cannot be granted is
	// left out with a warning, not a failure.
	b = h.bundle("grep CapBnd /proc/self/status", func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_NOT_A_CAP", "CAP_CHOWN"}}
	})
	out, stderr, code = h.runOut(b)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "warning: unknown capabilities left out: CAP_NOT_A_CAP")
	assert.Contains(t, out, "0000000000000001")
}

func TestRlimits(t *testing.T) {
	h := newHarness(t)
	b := h.bundle("ulimit -n; ulimit -Hn", func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456}}
	})
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "123\n456\n", out)

	// Raising a hard limit above ours needs CAP_SYS_RESOURCE: where the
	// host grants it the limit is set, elsewhere it is clamped to ours with
	// a warning naming the reason.
	var ours unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &ours))
	want := ours.Max + 1
	b = h.bundle("ulimit -Hn", func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: want}}
	})
	out, stderr, code = h.runOut(b)
	require.Equal(t, 0, code, stderr)
	if strings.Contains(stderr, "warning") {
		assert.Contains(t, stderr, "CAP_SYS_RESOURCE")
		assert.Equal(t, fmt.Sprintln(ours.Max), out)
	} else {
		assert.Equal(t, fmt.Sprintln(want), out)
	}

	b = h.bundle("true", func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1}}
	})
	_, stderr, code = h.runOut(b)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "RLIMIT_BOGUS")
}

func TestEnvironmentIsExactlyTheSpecs(t *testing.T) {
	h := newHarness(t)
	t.Setenv("BERTH_LEAK_CHECK", "host-secret")
	out, stderr, code := h.runOut(h.bundle("env", func(s *specs.Spec) { s.Process.Env = []string{"A=1", "PATH=/bin"} }))
	require.Equal(t, 0, code, stderr)
	assert.NotContains(t, out, "host-secret")
	assert.Contains(t, out, "A=1")
}

func TestPreserveFds(t *testing.T) {
	h := newHarness(t)
	f, err := os.CreateTemp(t.TempDir(), "fd")
	require.NoError(t, err)
	defer f.Close()
	b := h.bundle("echo through-fd3 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '", nil)
	cmd := h.cmd("run", "--preserve-fds", "1", "--bundle", b, h.id())
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	require.NoError(t, err)
	data, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	assert.Equal(t, "through-fd3\n", string(data))
	// 0-2, fd 3, and the fd ls itself opens on /proc/self/fd.
	assert.Equal(t, "0 1 2 3 4 ", string(out))
}

func TestSysctlAndNames(t *testing.T) {
	h := newHarness(t)
	// The container gets the opposite of the host's value (dockerd, for
	// one, turns forwarding on), so a leak to the host would show.
	host := strings.TrimSpace(readFile(t, "/proc/sys/net/ipv4/ip_forward"))
	want := map[string]string{"0": "1", "1": "0"}[host]
	require.NotEmpty(t, want, "unexpected host ip_forward %q", host)
	b := h.bundle("cat /proc/sys/net/ipv4/ip_forward; hostname; cat /proc/sys/kernel/domainname", func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": want}
		s.Hostname, s.Domainname = "h1", "example.test"
	})
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, want+"\nh1\nexample.test\n", out)
	assert.Equal(t, host, strings.TrimSpace(readFile(t, "/proc/sys/net/ipv4/ip_forward")), "host unchanged")

	b = h.bundle("true", func(s *specs.Spec) {
		s.Linux.Namespaces = removeNS(s.Linux.Namespaces, specs.NetworkNamespace)
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	})
	_, stderr, code = h.runOut(b)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "network namespace")
}

func removeNS(in []specs.LinuxNamespace, t specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range in {
		if ns.Type != t {
			out = append(out, ns)
		}
	}
	return out
}

func TestHooks(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(dir, name)}}
	}
	// The poststart hook also records the container process's name: the
	// spec runs poststart after the user's program is exec'd, so it must
	// be sleep, not berth's init still running the startContainer hook.
	comm := filepath.Join(dir, "comm")
	poststartComm := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
		`pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p'); cat /proc/$pid/comm > ` + comm}}
	b := h.bundle("exec sleep 1", func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{hook("prestart")}, //nolint:staticcheck // still used by tools
			CreateRuntime:   []specs.Hook{hook("createRuntime")},
			CreateContainer: []specs.Hook{hook("createContainer")},
			// Runs inside the container, after pivot_root: its path and
			// output are the container's. It lingers, so that a
			// poststart hook run beside it rather than after the exec
			// would see berth's init, not sleep.
			StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /started; echo $$ >> /started; sleep 0.3"}}},
			Poststart:      []specs.Hook{hook("poststart"), poststartComm},
			Poststop:       []specs.Hook{hook("poststop")},
		}
	})
	id := h.id()
	h.must("create", "--bundle", b, id)
	for _, name := range []string{"prestart", "createRuntime", "createContainer"} {
		assert.Contains(t, readFile(t, filepath.Join(dir, name)), `"status":"created"`, name)
	}
	assert.NoFileExists(t, filepath.Join(rootfsOf(b), "started"), "startContainer runs at start, not create")
	h.must("start", id)
	assert.Contains(t, readFile(t, filepath.Join(dir, "poststart")), `"id":"`+id+`"`)
	assert.Contains(t, readFile(t, filepath.Join(dir, "poststart")), `"status":"running"`)
	assert.Contains(t, readFile(t, filepath.Join(rootfsOf(b), "started")), `"id":"`+id+`"`)
	assert.Equal(t, "sleep\n", readFile(t, comm), "poststart ran after the exec")
	h.waitStatus(id, "stopped")
	h.must("delete", id)
	assert.Contains(t, readFile(t, filepath.Join(dir, "poststop")), `"status":"stopped"`)

	b = h.bundle("true", func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
	})
	_, stderr, code := h.exec("create", "--bundle", b, h.id())
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "createRuntime")
}
