package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/runtime/console"
)

// LINUX32 makes the kernel report the 32-bit machine of this architecture.
func TestPersonalityLinux32(t *testing.T) {
	want := map[string][]string{"amd64": {"i686", "i386"}, "arm64": {"armv8l", "armv7l"}}[goruntime.GOARCH]
	if want == nil {
		t.Skipf("no 32-bit personality expectation for %s", goruntime.GOARCH)
	}
	h := newHarness(t)
	b := h.bundle("uname -m", func(s *specs.Spec) {
		s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	})
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, want, strings.TrimSpace(out))

	out, stderr, code = h.runOut(h.bundle("uname -m", nil))
	require.Equal(t, 0, code, stderr)
	assert.NotContains(t, want, strings.TrimSpace(out), "without a personality the native machine shows")
}

// statFields returns the fields of /proc/<pid>/stat after the command
// name, so field n of proc(5) is at index n-3.
func statFields(t *testing.T, stat string) []string {
	t.Helper()
	i := strings.LastIndexByte(stat, ')')
	require.Positive(t, i, stat)
	return strings.Fields(stat[i+1:])
}

const (
	statNice   = 19 - 3
	statPolicy = 41 - 3
)

func ioprioGet(t *testing.T, pid int) int {
	t.Helper()
	const whoProcess = 1
	r, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, whoProcess, uintptr(pid), 0)
	require.Zero(t, e, "ioprio_get(%d)", pid)
	return int(r)
}

// process.scheduler and process.ioPriority are what the kernel reports for
// the container's process, read from the host and from inside.
func TestSchedulerAndIOPriority(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name      string
		sched     specs.Scheduler
		io        specs.LinuxIOPriority
		policy    string
		nice      string
		ioClass   int
		ioPrioNum int
	}{
		{"batch-be", specs.Scheduler{Policy: specs.SchedBatch, Nice: 7}, specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}, "3", "7", 2, 6},
		// The kernel keeps no nice value for SCHED_IDLE, so none is asked.
		{"idle-idle", specs.Scheduler{Policy: specs.SchedIdle}, specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}, "5", "0", 3, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sched, io := c.sched, c.io
			id := h.id()
			h.must("run", "-d", "--bundle", h.bundle("sleep 30", func(s *specs.Spec) {
				s.Process.Scheduler = &sched
				s.Process.IOPriority = &io
			}), id)
			pid := h.state(id).Pid
			f := statFields(t, readFile(t, fmt.Sprintf("/proc/%d/stat", pid)))
			require.Greater(t, len(f), statPolicy)
			assert.Equal(t, c.policy, f[statPolicy], "scheduling policy seen from the host")
			assert.Equal(t, c.nice, f[statNice], "nice seen from the host")
			prio := ioprioGet(t, pid)
			assert.Equal(t, c.ioClass, prio>>13, "I/O priority class")
			assert.Equal(t, c.ioPrioNum, prio&0xff, "I/O priority level")

			out := h.must("exec", id, "sh", "-c", "cat /proc/1/stat")
			f = statFields(t, out)
			require.Greater(t, len(f), statPolicy)
			assert.Equal(t, c.policy, f[statPolicy], "scheduling policy seen from inside")
		})
	}

	b := h.bundle("true", func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_BOGUS"} })
	_, stderr, code := h.runOut(b)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "SCHED_BOGUS")
}

// A positive oomScoreAdj is set. A negative one needs CAP_SYS_RESOURCE:
// where the host denies it the container still runs and berth warns,
// naming the capability; where the host allows it, the value is set.
func TestOOMScoreAdj(t *testing.T) {
	h := newHarness(t)
	pos := 500
	id := h.id()
	h.must("run", "-d", "--bundle", h.bundle("sleep 30", func(s *specs.Spec) { s.Process.OOMScoreAdj = &pos }), id)
	assert.Equal(t, "500", strings.TrimSpace(readFile(t, fmt.Sprintf("/proc/%d/oom_score_adj", h.state(id).Pid))))
	out, stderr, code := h.runOut(h.bundle("cat /proc/self/oom_score_adj", func(s *specs.Spec) { s.Process.OOMScoreAdj = &pos }))
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "500\n", out)

	neg := -500
	ours := strings.TrimSpace(readFile(t, "/proc/self/oom_score_adj"))
	out, stderr, code = h.runOut(h.bundle("cat /proc/self/oom_score_adj", func(s *specs.Spec) { s.Process.OOMScoreAdj = &neg }))
	require.Equal(t, 0, code, "a denied negative oomScoreAdj must not fail the container: %s", stderr)
	if strings.Contains(stderr, "warning") {
		assert.Contains(t, stderr, "CAP_SYS_RESOURCE")
		assert.Contains(t, stderr, "oomScoreAdj")
		assert.Equal(t, ours+"\n", out, "the inherited value is kept")
	} else {
		assert.Equal(t, "-500\n", out)
	}
}

// exec -t sends the master of a new terminal to --console-socket; the
// process has that terminal's slave, in the container's devpts, as stdio.
func TestExecTerminal(t *testing.T) {
	h := newHarness(t)
	id := h.id()
	h.must("run", "-d", "--bundle", h.bundle("sleep 30", nil), id)
	sock := shortSocketPath(t, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	got, got2 := make(chan *os.File, 1), make(chan *os.File, 1)
	go func() {
		defer close(got)
		_ = l.SetDeadline(time.Now().Add(20 * time.Second))
		if f, err := console.RecvMaster(l); err == nil {
			got <- f
		}
	}()
	h.must("exec", "-d", "-t", "--console-socket", sock, id, "sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty; echo end-of-output")
	var master *os.File
	select {
	case master = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no terminal master received")
	}
	require.NotNil(t, master, "terminal master received")
	t.Cleanup(func() { master.Close() })
	out := readUntil(master, "end-of-output", 10*time.Second)
	assert.Regexp(t, regexp.MustCompile(`/dev/pts/\d+`), out)
	assert.Contains(t, out, "stdio-is-tty")

	// In the foreground exec waits for the process and returns its code.
	go func() {
		defer close(got2)
		_ = l.SetDeadline(time.Now().Add(20 * time.Second))
		if f, err := console.RecvMaster(l); err == nil {
			got2 <- f
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fg := boundedCmd(ctx, h, "exec", "-t", "--console-socket", sock, id, "sh", "-c", "tty; echo end-of-output; exit 3")
	fgErr := make(chan error, 1)
	require.NoError(t, fg.Start())
	go func() { fgErr <- fg.Wait() }()
	var fgMaster *os.File
	select {
	case fgMaster = <-got2:
	case <-time.After(20 * time.Second):
		t.Fatal("no terminal master received for a foreground exec")
	}
	require.NotNil(t, fgMaster, "terminal master received")
	t.Cleanup(func() { fgMaster.Close() })
	out = readUntil(fgMaster, "end-of-output", 10*time.Second)
	assert.Regexp(t, regexp.MustCompile(`/dev/pts/\d+`), out)
	assert.Equal(t, 3, exitCode(<-fgErr), "exec returns the process's exit code")

	_, stderr, code := h.exec("exec", "-d", "-t", id, "true")
	assert.NotEqual(t, 0, code, "a detached terminal needs a console socket")
	assert.Contains(t, stderr, "console-socket")
}

// exitCode is the exit status Wait's error stands for.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// readUntil reads f until it has seen marker, EOF/EIO, or the time is up.
func readUntil(f *os.File, marker string, limit time.Duration) string {
	_ = f.SetReadDeadline(time.Now().Add(limit))
	var out strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), marker) {
		n, err := f.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return out.String()
}

// shortSocketPath returns a path for a unix socket short enough for
// sun_path, removed with its directory when the test ends.
func shortSocketPath(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-sock-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}

// capEff returns the CapEff mask from /proc/<pid>/status text.
func capEff(t *testing.T, status string) uint64 {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no CapEff in %q", status)
	return 0
}

func TestExecCapNoNewPrivsPreserveFds(t *testing.T) {
	h := newHarness(t)
	id := h.id()
	h.must("run", "-d", "--bundle", h.bundle("sleep 30", func(s *specs.Spec) { s.Process.NoNewPrivileges = false }), id)

	const sysAdmin = uint64(1) << unix.CAP_SYS_ADMIN
	base := capEff(t, h.must("exec", id, "cat", "/proc/self/status"))
	assert.Zero(t, base&sysAdmin, "the container's process lacks CAP_SYS_ADMIN")
	added := capEff(t, h.must("exec", "--cap", "CAP_SYS_ADMIN", id, "cat", "/proc/self/status"))
	assert.Equal(t, base|sysAdmin, added, "--cap adds exactly that capability")
	// The kernel agrees: a mount needs CAP_SYS_ADMIN.
	_, _, code := h.exec("exec", id, "mount", "-t", "tmpfs", "tmpfs", "/mnt")
	assert.NotEqual(t, 0, code, "mount without CAP_SYS_ADMIN")
	h.must("exec", "--cap", "CAP_SYS_ADMIN", id, "sh", "-c", "mkdir -p /mnt && mount -t tmpfs tmpfs /mnt && umount /mnt")

	assert.Regexp(t, `NoNewPrivs:\s+0`, h.must("exec", id, "grep", "NoNewPrivs", "/proc/self/status"))
	assert.Regexp(t, `NoNewPrivs:\s+1`, h.must("exec", "--no-new-privs", id, "grep", "NoNewPrivs", "/proc/self/status"))

	f, err := os.CreateTemp(t.TempDir(), "fd")
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := boundedCmd(ctx, h, "exec", "--preserve-fds", "1", id, "sh", "-c", "echo through-exec-fd3 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "through-exec-fd3\n", readFile(t, f.Name()))
	assert.Equal(t, "0 1 2 3 4 ", string(out), "stdio, the preserved fd, and the one ls opens")

	out2 := h.must("exec", id, "sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '")
	assert.Equal(t, "0 1 2 3 ", out2, "without --preserve-fds nothing beyond stdio")
}

// seccompNotif is struct seccomp_notif of <linux/seccomp.h>.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

// seccompNotifResp is struct seccomp_notif_resp.
type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// recvListener accepts one connection on l and returns the fd and the
// state it carries.
func recvListener(l *net.UnixListener) (int, specs.ContainerProcessState, error) {
	var st specs.ContainerProcessState
	_ = l.SetDeadline(time.Now().Add(30 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		return -1, st, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
	var data []byte
	fd := -1
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		data = append(data, buf[:n]...)
		if oobn > 0 && fd < 0 {
			msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			if perr != nil {
				return -1, st, perr
			}
			for _, m := range msgs {
				fds, rerr := unix.ParseUnixRights(&m)
				if rerr == nil && len(fds) > 0 {
					fd = fds[0]
					for _, extra := range fds[1:] {
						unix.Close(extra)
					}
				}
			}
		}
		if err != nil || n == 0 {
			break
		}
	}
	if fd < 0 {
		return -1, st, fmt.Errorf("no fd in the message (%d bytes of data)", len(data))
	}
	if err := json.Unmarshal(data, &st); err != nil {
		unix.Close(fd)
		return -1, st, fmt.Errorf("parse state %q: %w", data, err)
	}
	return fd, st, nil
}

// answerNotifications answers every notification on fd with errno until
// stop closes or a bounded time passes, and returns the syscall numbers
// it saw.
func answerNotifications(fd int, errno unix.Errno, stop <-chan struct{}) ([]int32, error) {
	var seen []int32
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-stop:
			return seen, nil
		default:
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			return seen, fmt.Errorf("poll listener: %w", err)
		}
		if pfd[0].Revents&unix.POLLHUP != 0 && pfd[0].Revents&unix.POLLIN == 0 {
			return seen, nil // every filtered process is gone
		}
		var req seccompNotif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req))); e != 0 {
			if e == unix.ENOENT || e == unix.EINTR {
				continue // the caller went away before we read it
			}
			return seen, fmt.Errorf("notif recv: %w", e)
		}
		seen = append(seen, req.Nr)
		resp := seccompNotifResp{ID: req.ID, Error: -int32(errno)}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 && e != unix.ENOENT {
			return seen, fmt.Errorf("notif send: %w", e)
		}
	}
	return seen, fmt.Errorf("agent gave up after its time limit")
}

// SCMP_ACT_NOTIFY: berth sends the listener fd with the container's state
// to listenerPath; an agent answering each call decides the errno the
// container sees.
func TestSeccompNotify(t *testing.T) {
	h := newHarness(t)
	sock := shortSocketPath(t, "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })

	type received struct {
		st   specs.ContainerProcessState
		seen []int32
		err  error
	}
	stop := make(chan struct{})
	result := make(chan received, 1)
	go func() {
		fd, st, err := recvListener(l)
		if err != nil {
			result <- received{err: err}
			return
		}
		defer unix.Close(fd)
		seen, err := answerNotifications(fd, unix.EDQUOT, stop)
		result <- received{st: st, seen: seen, err: err}
	}()

	b := h.bundle("mkdir /tmp/notified 2>&1; echo rc=$?; test -d /tmp/notified && echo made || echo not-made; touch /tmp/file && echo touch-ok", func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM},
			ListenerPath:  sock, ListenerMetadata: "agent-metadata",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
		}
	})
	id := h.id()
	out, stderr, code := h.exec("run", "--bundle", b, id)
	close(stop)
	var r received
	select {
	case r = <-result:
	case <-time.After(30 * time.Second):
		t.Fatal("seccomp agent did not finish")
	}
	require.NoError(t, r.err)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "Disk quota exceeded", "the agent's errno reaches the container")
	assert.Contains(t, out, "rc=1")
	assert.Contains(t, out, "not-made")
	assert.Contains(t, out, "touch-ok", "other syscalls are not sent to the agent")

	assert.Equal(t, []string{specs.SeccompFdName}, r.st.Fds)
	assert.Equal(t, "agent-metadata", r.st.Metadata)
	assert.Equal(t, id, r.st.State.ID)
	assert.Equal(t, b, r.st.State.Bundle)
	assert.Positive(t, r.st.Pid)
	assert.Equal(t, r.st.Pid, r.st.State.Pid)
	mkdirs := map[int32]bool{unix.SYS_MKDIRAT: true}
	if goruntime.GOARCH == "amd64" {
		mkdirs[83] = true // mkdir
	}
	require.NotEmpty(t, r.seen, "the agent received the mkdir")
	for _, nr := range r.seen {
		assert.True(t, mkdirs[nr], "only mkdir/mkdirat reach the agent, got syscall %d", nr)
	}

	// With no agent listening the container is not created, and says why.
	missing := filepath.Join(filepath.Dir(sock), "nobody.sock")
	b = h.bundle("true", func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow, ListenerPath: missing,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
		}
	})
	id = h.id()
	_, stderr, code = h.exec("create", "--bundle", b, id)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "seccomp")
	assert.Contains(t, stderr, missing)
	assert.NoDirExists(t, filepath.Join(h.root, id), "no state left")
}

// Many commands at once on one container are serialised by its lock:
// every one succeeds and the container ends running and not frozen.
func TestConcurrentCommandsOnOneContainer(t *testing.T) {
	h := newHarness(t)
	id := h.id()
	h.must("run", "-d", "--bundle", h.bundle("sleep 60", nil), id)
	initPid := h.state(id).Pid

	const workers, rounds = 20, 3
	// Pause/resume pairs are taken in turn: two pauses at once would
	// rightly fail the second. state and ps run against them freely.
	var pauseMu sync.Mutex
	var mu sync.Mutex
	var failures []string
	fail := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, a...))
	}
	run := func(args ...string) (string, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := boundedCmd(ctx, h, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			fail("%v: %v: %s", args, err, stderr.String())
			return "", false
		}
		return string(out), true
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if out, ok := run("state", id); ok {
					var st specs.State
					if err := json.Unmarshal([]byte(out), &st); err != nil {
						fail("state JSON %q: %v", out, err)
					} else if st.Status != "running" && st.Status != "paused" {
						fail("state during concurrent commands: %s", st.Status)
					}
				}
				if out, ok := run("ps", "--format", "json", id); ok {
					var pids []int
					if err := json.Unmarshal([]byte(out), &pids); err != nil || !containsInt(pids, initPid) {
						fail("ps json %q lacks init %d (%v)", out, initPid, err)
					}
				}
				if w%4 == 0 {
					pauseMu.Lock()
					_, ok := run("pause", id)
					if ok {
						run("resume", id)
					}
					pauseMu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	assert.Empty(t, failures)
	assert.Equal(t, specs.ContainerState("running"), h.state(id).Status)
	assert.Equal(t, initPid, h.state(id).Pid)
	assert.Equal(t, "alive\n", h.must("exec", id, "echo", "alive"), "the container is not left frozen")
}

// boundedCmd is h.cmd killed when ctx ends, for commands run off the
// test's goroutine, where the harness may not call Fatal.
func boundedCmd(ctx context.Context, h *harness, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, h.bin, append([]string{"runtime", "--root", h.root}, args...)...)
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Explicit masked and read-only paths, each a file and a directory: masked
// ones read empty, read-only ones refuse writes; paths the container lacks
// are ignored.
func TestExplicitMaskedAndReadonlyPaths(t *testing.T) {
	h := newHarness(t)
	b := h.bundle(`cat /secret.txt; echo "masked-file:$(stat -c '%t:%T' /secret.txt)";
echo "masked-dir:$(ls -A /secretdir | wc -l)"; touch /secretdir/x 2>/dev/null && echo masked-dir-writable || echo masked-dir-ro;
cat /ro.txt; echo more >> /ro.txt 2>/dev/null && echo ro-file-writable || echo ro-file-ro;
cat /rodir/inner; touch /rodir/new 2>/dev/null && echo ro-dir-writable || echo ro-dir-ro;
touch /elsewhere && echo rest-writable`, func(s *specs.Spec) {
		s.Linux.MaskedPaths = []string{"/secret.txt", "/secretdir", "/no/such/masked"}
		s.Linux.ReadonlyPaths = []string{"/ro.txt", "/rodir", "/no/such/readonly"}
	})
	rootfs := rootfsOf(b)
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "secret.txt"), []byte("top-secret\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "secretdir"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "secretdir", "key"), []byte("k"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "ro.txt"), []byte("ro-content\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "rodir"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "rodir", "inner"), []byte("inner-content\n"), 0o644))

	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "masked-file:1:3\nmasked-dir:0\nmasked-dir-ro\nro-content\nro-file-ro\ninner-content\nro-dir-ro\nrest-writable\n", out)
	assert.NotContains(t, out, "top-secret")
	assert.Equal(t, "ro-content\n", readFile(t, filepath.Join(rootfs, "ro.txt")), "the file is unchanged")
	assert.NoFileExists(t, filepath.Join(rootfs, "rodir", "new"))
	assert.NoDirExists(t, filepath.Join(rootfs, "no"), "a missing path is not created")
	assert.FileExists(t, filepath.Join(rootfs, "secretdir", "key"), "masking hides, it does not remove")
}
