package runtime

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime/cgroups"
	"github.com/berth-containers/berth/runtime/spec"
)

func TestParseSignal(t *testing.T) {
	good := map[string]unix.Signal{
		"KILL":       unix.SIGKILL,
		"SIGKILL":    unix.SIGKILL,
		"sigkill":    unix.SIGKILL,
		"kill":       unix.SIGKILL,
		"SigTerm":    unix.SIGTERM,
		"9":          unix.SIGKILL,
		"15":         unix.SIGTERM,
		"1":          unix.SIGHUP,
		"64":         unix.Signal(64),
		"USR1":       unix.SIGUSR1,
		"SIGWINCH":   unix.SIGWINCH,
		"SIGSYS":     unix.SIGSYS,
		"RTMIN":      unix.Signal(34),
		"SIGRTMIN":   unix.Signal(34),
		"rtmin":      unix.Signal(34),
		"RTMIN+0":    unix.Signal(34),
		"RTMIN+1":    unix.Signal(35),
		"sigrtmin+3": unix.Signal(37),
		"RTMIN+30":   unix.Signal(64),
		"RTMAX":      unix.Signal(64),
		"SIGRTMAX":   unix.Signal(64),
		"RTMAX-1":    unix.Signal(63),
		"rtmax-30":   unix.Signal(34),
	}
	for in, want := range good {
		got, err := ParseSignal(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	bad := []string{
		"", "0", "-1", "65", "100", "NOSUCHSIG", "SIG", "SIGKILLX", "9x", "KILL 9",
		"RTMIN+31", "RTMAX-31", "RTMIN+x", "RTMAX-", "RTMIN+",
		// The offset's sign must match the base: below RTMIN and above
		// RTMAX there are no real-time signals.
		"RTMIN-1", "RTMAX+1", "SIGRTMIN-2",
		// No sign at all is not an offset either.
		"RTMIN1", "RTMAX1",
	}
	for _, in := range bad {
		got, err := ParseSignal(in)
		if assert.Error(t, err, "%q parsed as %d", in, got) {
			assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument), "%q: %v", in, err)
		}
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "abc", "my-container_1.2+x", "A.B", "0", strings.Repeat("x", 200), "..."} {
		assert.NoError(t, checkID(id), id)
	}
	for _, id := range []string{"", ".", "..", "a/b", "/abs", "../up", "a b", "tab\tid", "nl\n", "nul\x00", "é", "a:b", "a*", "a;rm"} {
		err := checkID(id)
		if assert.Error(t, err, "%q", id) {
			assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument), "%q: %v", id, err)
		}
	}
	err := checkID("a/b")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid container id")
	assert.Contains(t, checkID("").Error(), "required")
}

// specWith returns a spec with exactly the given namespaces.
func specWith(types ...specs.LinuxNamespaceType) *specs.Spec {
	s := spec.Default()
	s.Linux.Namespaces = nil
	for _, t := range types {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t})
	}
	return s
}

func TestCheckSysctl(t *testing.T) {
	all := specWith(specs.MountNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.PIDNamespace)
	none := specWith(specs.MountNamespace, specs.PIDNamespace)

	namespaced := map[string]string{
		"net.ipv4.ip_forward":               "network",
		"net.core.somaxconn":                "network",
		"net.ipv4.conf.eth0/100.forwarding": "network",
		"fs.mqueue.msg_max":                 "ipc",
		"kernel.shmmax":                     "ipc",
		"kernel.shm_rmid_forced":            "ipc",
		"kernel.msgmax":                     "ipc",
		"kernel.msgmnb":                     "ipc",
		"kernel.sem":                        "ipc",
		"kernel.hostname":                   "uts",
		"kernel.domainname":                 "uts",
	}
	for key, ns := range namespaced {
		assert.NoError(t, checkSysctl(all, key), key)
		err := checkSysctl(none, key)
		if assert.Error(t, err, key) {
			assert.Contains(t, err.Error(), ns, key)
			assert.Contains(t, err.Error(), key)
		}
	}
	// The namespace that matters is the one the key belongs to.
	onlyNet := specWith(specs.MountNamespace, specs.NetworkNamespace)
	assert.NoError(t, checkSysctl(onlyNet, "net.ipv4.ip_forward"))
	assert.Error(t, checkSysctl(onlyNet, "kernel.shmmax"))
	assert.Error(t, checkSysctl(onlyNet, "kernel.hostname"))

	for _, key := range []string{"kernel/../../etc", "a/b", "fs..mqueue", "../x"} {
		assert.Error(t, checkSysctl(all, key), key)
	}
	// Sysctls that no namespace isolates would change the host for every
	// process on it: a container may not set them, whatever namespaces it
	// has (runc refuses them as "not in a separate kernel namespace").
	for _, key := range []string{"kernel.core_pattern", "vm.swappiness", "kernel.randomize_va_space", "fs.file-max", "kernel.modprobe"} {
		assert.Error(t, checkSysctl(all, key), "host-global sysctl %s must be refused", key)
	}
}

func TestProcStartTime(t *testing.T) {
	st, state, err := procStartTime(os.Getpid())
	require.NoError(t, err)
	assert.NotZero(t, st)
	assert.Contains(t, []string{"R", "S"}, state, "a running test is running or sleeping")
	again, _, err := procStartTime(os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, st, again, "the start time of a process never changes")

	// Field 22 read the plain way agrees (our comm has no spaces).
	data, err := os.ReadFile("/proc/self/stat")
	require.NoError(t, err)
	f := strings.Fields(string(data))
	require.Greater(t, len(f), 21)
	assert.Equal(t, f[21], strconv.FormatUint(st, 10))

	// A command name with spaces and parentheses must not shift the fields:
	// run sleep through a link named like a fake stat prefix.
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	link := filepath.Join(t.TempDir(), "x) R 1 (y")
	require.NoError(t, os.Symlink(sleep, link))
	cmd := exec.Command(link, "30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	var childState string
	var childStart uint64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		childStart, childState, err = procStartTime(cmd.Process.Pid)
		require.NoError(t, err)
		if childState == "S" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
	require.NoError(t, err)
	require.Equal(t, "x) R 1 (y\n", string(comm), "the kernel kept the odd name")
	assert.Equal(t, "S", childState, "sleep sleeps; a parser fooled by the name would say R")
	assert.GreaterOrEqual(t, childStart, st, "the child started after this test")

	_, _, err = procStartTime(1 << 30)
	assert.True(t, errors.Is(err, os.ErrNotExist), "no such pid: %v", err)
}

// syncPair returns both ends of a sync socketpair, closed at the end.
func syncPair(t *testing.T) (*syncConn, *syncConn) {
	t.Helper()
	p, c, err := newSyncPair()
	require.NoError(t, err)
	t.Cleanup(func() { p.Close(); c.Close() })
	for _, f := range []*os.File{p, c} {
		typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
		require.NoError(t, err)
		assert.Equal(t, unix.SOCK_SEQPACKET, typ, "one message per packet")
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		require.NoError(t, err)
		assert.NotZero(t, flags&unix.FD_CLOEXEC, "no leak into other children")
	}
	return &syncConn{f: p}, &syncConn{f: c}
}

func TestSyncMessages(t *testing.T) {
	parent, child := syncPair(t)
	types := []msgType{msgBootstrap, msgHooks, msgHooksDone, msgSeccompFd, msgSeccompDone, msgReady, msgError}
	for _, typ := range types {
		require.NoError(t, parent.send(message{Type: typ}))
		m, fds, err := child.recv()
		require.NoError(t, err, typ)
		assert.Empty(t, fds)
		assert.Equal(t, typ, m.Type)
		// And the other way.
		require.NoError(t, child.send(message{Type: typ}))
		m, _, err = parent.recv()
		require.NoError(t, err, typ)
		assert.Equal(t, typ, m.Type)
	}

	// The bootstrap carries init's whole configuration.
	s := spec.Default()
	cfg := &initConfig{
		ID: "c1", Spec: s, Process: s.Process, Bundle: "/b", Rootfs: "/b/rootfs",
		UseFifo: true, FifoFd: 5, CgroupPaths: map[string]string{"": "/sys/fs/cgroup/c1"}, InitPid: 42,
	}
	require.NoError(t, parent.send(message{Type: msgBootstrap, Init: cfg}))
	m, err := child.expect(msgBootstrap)
	require.NoError(t, err)
	require.NotNil(t, m.Init)
	assert.Equal(t, *cfg.Spec, *m.Init.Spec)
	assert.Equal(t, "c1", m.Init.ID)
	assert.Equal(t, 5, m.Init.FifoFd)
	assert.Equal(t, 42, m.Init.InitPid)
	assert.Equal(t, cfg.CgroupPaths, m.Init.CgroupPaths)

	// ready carries warnings.
	require.NoError(t, child.send(message{Type: msgReady, Warnings: []string{"w1", "w2"}}))
	m, err = parent.expect(msgReady)
	require.NoError(t, err)
	assert.Equal(t, []string{"w1", "w2"}, m.Warnings)

	// expect turns an error message into an error, and a wrong type too.
	require.NoError(t, child.send(message{Type: msgError, Error: "mount /proc: permission denied"}))
	_, err = parent.expect(msgReady)
	require.Error(t, err)
	assert.Equal(t, "mount /proc: permission denied", err.Error())
	require.NoError(t, child.send(message{Type: msgHooks}))
	_, err = parent.expect(msgReady)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expected ready, got hooks")
}

func TestSyncPassesFd(t *testing.T) {
	parent, child := syncPair(t)
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, []byte("passed"), 0o600))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()

	require.NoError(t, child.send(message{Type: msgSeccompFd}, int(f.Fd())))
	m, fds, err := parent.recv()
	require.NoError(t, err)
	assert.Equal(t, msgSeccompFd, m.Type)
	require.Len(t, fds, 1)
	got := os.NewFile(uintptr(fds[0]), "got")
	defer got.Close()
	assert.NotEqual(t, int(f.Fd()), fds[0], "a new descriptor of the same file")
	flags, err := unix.FcntlInt(got.Fd(), unix.F_GETFD, 0)
	require.NoError(t, err)
	assert.NotZero(t, flags&unix.FD_CLOEXEC, "received fds are close-on-exec")
	var a, b unix.Stat_t
	require.NoError(t, unix.Fstat(int(f.Fd()), &a))
	require.NoError(t, unix.Fstat(fds[0], &b))
	assert.Equal(t, a.Ino, b.Ino)
	assert.Equal(t, a.Dev, b.Dev)
	data := make([]byte, 16)
	n, err := unix.Pread(fds[0], data, 0)
	require.NoError(t, err)
	assert.Equal(t, "passed", string(data[:n]))

	// Two at once arrive in order.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.NoError(t, child.send(message{Type: msgSeccompFd}, int(r.Fd()), int(w.Fd())))
	_, fds, err = parent.recv()
	require.NoError(t, err)
	require.Len(t, fds, 2)
	defer closeFds(fds)
	_, err = unix.Write(fds[1], []byte("x"))
	require.NoError(t, err)
	buf := make([]byte, 1)
	_, err = r.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "x", string(buf))

	// expect closes fds that come with a message it consumes.
	require.NoError(t, child.send(message{Type: msgReady}, int(f.Fd())))
	_, err = parent.expect(msgReady)
	require.NoError(t, err)
}

func TestSyncPlainTextAndEOF(t *testing.T) {
	parent, child := syncPair(t)
	// What the namespace-joining constructor writes before Go runs.
	_, err := unix.Write(int(child.f.Fd()), []byte("setns(/proc/1/ns/mnt): operation not permitted\n"))
	require.NoError(t, err)
	m, fds, err := parent.recv()
	require.NoError(t, err)
	assert.Empty(t, fds)
	assert.Equal(t, msgError, m.Type)
	assert.Equal(t, "setns(/proc/1/ns/mnt): operation not permitted", m.Error)

	_, err = unix.Write(int(child.f.Fd()), []byte("bad\r\n"))
	require.NoError(t, err)
	_, err = parent.expect(msgReady)
	require.Error(t, err)
	assert.Equal(t, "bad", err.Error())

	// Messages already sent are still read after the other end closes.
	require.NoError(t, child.send(message{Type: msgReady}))
	require.NoError(t, child.f.Close())
	m, _, err = parent.recv()
	require.NoError(t, err)
	assert.Equal(t, msgReady, m.Type)
	_, _, err = parent.recv()
	assert.ErrorIs(t, err, errEOF)
	_, err = parent.expect(msgReady)
	assert.ErrorIs(t, err, errEOF)

	// Sending to a closed peer fails with an error naming the message.
	err = parent.send(message{Type: msgHooksDone})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hooksDone")
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	require.NoError(t, writeFileAtomic(path, []byte(`{"a":1}`)))
	assert.Equal(t, `{"a":1}`, readString(t, path))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "state may hold secrets from the spec")

	// Replacing keeps no temporary file and never shows a partial file:
	// the inode changes, so a reader holding the old one sees old data.
	old, err := os.Open(path)
	require.NoError(t, err)
	defer old.Close()
	require.NoError(t, writeFileAtomic(path, []byte(`{"a":2,"b":"longer"}`)))
	assert.Equal(t, `{"a":2,"b":"longer"}`, readString(t, path))
	data := make([]byte, 64)
	n, err := old.Read(data)
	require.NoError(t, err)
	assert.Equal(t, `{"a":1}`, string(data[:n]))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "state.json", entries[0].Name())

	require.NoError(t, writeFileAtomic(path, nil))
	assert.Equal(t, "", readString(t, path))

	err = writeFileAtomic(filepath.Join(dir, "missing", "x"), []byte("x"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func readString(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

func TestFeatures(t *testing.T) {
	data, err := json.Marshal(Features())
	require.NoError(t, err)
	var f map[string]any
	require.NoError(t, json.Unmarshal(data, &f), "valid JSON")
	assert.Equal(t, "1.0.0", f["ociVersionMin"])
	assert.Equal(t, specs.Version, f["ociVersionMax"])
	assert.ElementsMatch(t, []any{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}, f["hooks"])

	opts, ok := f["mountOptions"].([]any)
	require.True(t, ok, "mountOptions is a list")
	seen := map[string]bool{}
	for _, o := range opts {
		s := o.(string)
		assert.False(t, seen[s], "duplicate mount option %s", s)
		seen[s] = true
	}
	for _, o := range []string{"bind", "rbind", "ro", "rro", "nosuid", "nodev", "noexec", "rprivate", "tmpcopyup", "idmap"} {
		assert.True(t, seen[o], "mount option %s", o)
	}

	linux, ok := f["linux"].(map[string]any)
	require.True(t, ok, "linux section")
	assert.ElementsMatch(t, []any{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}, linux["namespaces"])
	capsList, ok := linux["capabilities"].([]any)
	require.True(t, ok)
	assert.Contains(t, capsList, "CAP_SYS_ADMIN")
	assert.Contains(t, capsList, "CAP_CHOWN")

	cg, ok := linux["cgroup"].(map[string]any)
	require.True(t, ok, "cgroup section")
	for _, k := range []string{"v1", "v2", "systemd", "systemdUser", "rdma"} {
		assert.IsType(t, true, cg[k], "cgroup.%s is a boolean", k)
	}
	mode := cgroups.Mode()
	assert.Equal(t, mode != cgroups.ModeV2, cg["v1"], "v1 on a %s host", mode)
	assert.Equal(t, mode != cgroups.ModeV1, cg["v2"], "v2 on a %s host", mode)

	sc, ok := linux["seccomp"].(map[string]any)
	require.True(t, ok, "seccomp section")
	assert.Contains(t, sc, "enabled")
	for _, k := range []string{"apparmor", "selinux", "intelRdt", "mountExtensions"} {
		assert.Contains(t, linux, k)
	}
	idmap := linux["mountExtensions"].(map[string]any)["idmap"].(map[string]any)
	assert.Equal(t, true, idmap["enabled"])
	ann, ok := f["annotations"].(map[string]any)
	require.True(t, ok)
	assert.Equal(t, "false", ann["org.opencontainers.runc.checkpoint.enabled"])
}

func TestSyncLargeMessage(t *testing.T) {
	parent, child := syncPair(t)
	// Real configurations can be large: long environments, big seccomp
	// profiles. Each packet is read whole, whatever its size, up to the
	// protocol's bound.
	for _, size := range []int{100 << 10, 1 << 20} {
		s := spec.Default()
		s.Process.Env = append(s.Process.Env, "BIG="+strings.Repeat("x", size))
		err := parent.send(message{Type: msgBootstrap, Init: &initConfig{ID: "big", Process: s.Process}})
		require.NoError(t, err, "send %d bytes", size)
		m, err := child.expect(msgBootstrap)
		require.NoError(t, err)
		require.NotNil(t, m.Init)
		assert.Equal(t, s.Process.Env, m.Init.Process.Env)
	}
}
