package seccomp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The load tests run the filter in a child: a loaded filter cannot be
// taken off a thread, so the test binary re-executes itself with these
// variables set, and the child loads the filter, makes the syscalls and
// prints what they returned. Loading needs no root: the child sets
// no_new_privs first.
const (
	childEnv    = "BERTH_SECCOMP_TEST_CHILD"
	configEnv   = "BERTH_SECCOMP_TEST_CONFIG"
	opsEnv      = "BERTH_SECCOMP_TEST_OPS"
	listenerEnv = "BERTH_SECCOMP_TEST_LISTENER"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child loads the filter from configEnv on its locked thread and runs the
// operations of opsEnv (";"-separated) on it, printing "load none" or
// "load listener" and then "<op> <errno>" per operation.
func child() int {
	runtime.LockOSThread()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	var cfg specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(os.Getenv(configEnv)), &cfg); err != nil {
		return fail(err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail(err)
	}
	f, err := Compile(&cfg)
	if err != nil {
		return fail(err)
	}
	fd, err := f.Load()
	f.Release()
	if err != nil {
		return fail(err)
	}
	if fd < 0 {
		fmt.Println("load none")
	} else {
		fmt.Println("load listener")
		st := &specs.ContainerProcessState{
			Version:  specs.Version,
			Pid:      os.Getpid(),
			Metadata: cfg.ListenerMetadata,
			State:    specs.State{Version: specs.Version, ID: "ctr", Status: specs.StateCreating, Pid: os.Getpid(), Bundle: "/bundle"},
		}
		if err := SendListener(os.Getenv(listenerEnv), st, fd); err != nil {
			return fail(err)
		}
		_ = unix.Close(fd)
	}
	for _, op := range strings.Split(os.Getenv(opsEnv), ";") {
		fmt.Printf("%s %d\n", op, errnoOf(runOp(op)))
	}
	return 0
}

// runOp makes one syscall: "getcwd", or "mkdirat:<octal mode>:<path>".
func runOp(op string) error {
	parts := strings.SplitN(op, ":", 3)
	switch parts[0] {
	case "getcwd":
		buf := make([]byte, unix.PathMax)
		_, err := unix.Getcwd(buf)
		return err
	case "mkdirat":
		mode, err := strconv.ParseUint(parts[1], 8, 32)
		if err != nil {
			return err
		}
		return unix.Mkdirat(unix.AT_FDCWD, parts[2], uint32(mode))
	}
	return fmt.Errorf("unknown op %q", op)
}

func errnoOf(err error) int {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return int(errno)
	}
	if err != nil {
		return -1
	}
	return 0
}

// startChild starts the test binary as a child that loads cfg and runs
// ops. The child is killed when the test ends if still running.
func startChild(t *testing.T, cfg *specs.LinuxSeccomp, listener string, ops ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", configEnv+"="+string(data),
		opsEnv+"="+strings.Join(ops, ";"), listenerEnv+"="+listener)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	return cmd, &out
}

// runChild runs the child to its end and returns its output lines as
// "<op>" -> "<result>".
func runChild(t *testing.T, cfg *specs.LinuxSeccomp, ops ...string) map[string]string {
	t.Helper()
	cmd, out := startChild(t, cfg, "", ops...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return parseResults(t, out.String())
}

func parseResults(t *testing.T, out string) map[string]string {
	t.Helper()
	res := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("child printed %q", out)
		}
		res[line[:i]] = line[i+1:]
	}
	return res
}

// expect checks the child's results for each op (and "load").
func expect(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for op, w := range want {
		if got[op] != w {
			t.Errorf("%s: got %q, want %q (all: %v)", op, got[op], w, got)
		}
	}
}

func errno(e unix.Errno) string { return strconv.Itoa(int(e)) }

func mkdirOp(mode os.FileMode, path string) string {
	return fmt.Sprintf("mkdirat:%o:%s", mode, path)
}

func TestLoadErrno(t *testing.T) {
	dir := t.TempDir()
	blocked, allowed := filepath.Join(dir, "blocked"), filepath.Join(dir, "sub")
	cfg := allowWith(
		specs.LinuxSyscall{Names: []string{"getcwd"}, Action: specs.ActErrno},
		specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV)),
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0, Op: specs.OpNotEqual}}},
	)
	// mkdirat's path argument is never 0, so the rule always applies.
	got := runChild(t, cfg, "getcwd", mkdirOp(0o755, blocked))
	expect(t, got, map[string]string{"load": "none", "getcwd": errno(unix.EPERM), mkdirOp(0o755, blocked): errno(unix.EXDEV)})
	if _, err := os.Stat(blocked); !os.IsNotExist(err) {
		t.Errorf("blocked mkdirat made the directory: %v", err)
	}

	// Without the filter the same child succeeds: the results come from
	// the filter, not from the operations.
	got = runChild(t, allowWith(), "getcwd", mkdirOp(0o755, allowed))
	expect(t, got, map[string]string{"load": "none", "getcwd": "0", mkdirOp(0o755, allowed): "0"})
}

func TestLoadArgumentFilters(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name string
		args []specs.LinuxSeccompArg
		want map[string]string // op -> errno
	}{
		{"equal", []specs.LinuxSeccompArg{{Index: 2, Value: 0o700, Op: specs.OpEqualTo}},
			map[string]string{mkdirOp(0o700, p("eq1")): errno(unix.EACCES), mkdirOp(0o755, p("eq2")): "0"}},
		{"masked equal", []specs.LinuxSeccompArg{{Index: 2, Value: 0o002, ValueTwo: 0o002, Op: specs.OpMaskedEqual}},
			map[string]string{mkdirOp(0o777, p("m1")): errno(unix.EACCES), mkdirOp(0o757, p("m2")): errno(unix.EACCES), mkdirOp(0o755, p("m3")): "0"}},
		{"greater than", []specs.LinuxSeccompArg{{Index: 2, Value: 0o750, Op: specs.OpGreaterThan}},
			map[string]string{mkdirOp(0o755, p("g1")): errno(unix.EACCES), mkdirOp(0o750, p("g2")): "0"}},
		{"two arguments all hold", []specs.LinuxSeccompArg{
			{Index: 2, Value: 0o700, Op: specs.OpEqualTo},
			{Index: 0, Value: atFdcwd, Op: specs.OpEqualTo},
		}, map[string]string{mkdirOp(0o700, p("a1")): errno(unix.EACCES), mkdirOp(0o711, p("a2")): "0"}},
		// Two conditions on one argument each make a rule of their own:
		// either one blocks.
		{"same argument", []specs.LinuxSeccompArg{
			{Index: 2, Value: 0o700, Op: specs.OpEqualTo},
			{Index: 2, Value: 0o711, Op: specs.OpEqualTo},
		}, map[string]string{mkdirOp(0o700, p("s1")): errno(unix.EACCES), mkdirOp(0o711, p("s2")): errno(unix.EACCES), mkdirOp(0o755, p("s3")): "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := allowWith(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno,
				ErrnoRet: uintp(uint(unix.EACCES)), Args: tt.args})
			var ops []string
			for op := range tt.want {
				ops = append(ops, op)
			}
			got := runChild(t, cfg, ops...)
			expect(t, got, tt.want)
		})
	}
}

func TestLoadActions(t *testing.T) {
	tests := []struct {
		act  specs.LinuxSeccompAction
		want string
	}{
		{specs.ActLog, "0"},
		{specs.ActTrace, errno(unix.ENOSYS)}, // no tracer: the kernel fails the call with ENOSYS
		{specs.ActErrno, errno(unix.EPERM)},
	}
	for _, tt := range tests {
		t.Run(string(tt.act), func(t *testing.T) {
			got := runChild(t, allowWith(specs.LinuxSyscall{Names: []string{"getcwd"}, Action: tt.act}), "getcwd")
			expect(t, got, map[string]string{"load": "none", "getcwd": tt.want})
		})
	}
}

func TestLoadKillProcess(t *testing.T) {
	cmd, out := startChild(t, allowWith(specs.LinuxSyscall{Names: []string{"getcwd"}, Action: specs.ActKillProcess}), "", "getcwd")
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child ended with %v, want SIGSYS\n%s", err, out)
	}
	ws := exit.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Errorf("child ended with %v, want killed by SIGSYS\n%s", ws, out)
	}
	if out.String() != "load none\n" {
		t.Errorf("child printed %q, want the load and no getcwd result", out)
	}
}

func TestLoadTrap(t *testing.T) {
	// SECCOMP_RET_TRAP sends SIGSYS to the thread, which the Go runtime
	// reports as a fatal signal.
	cmd, out := startChild(t, allowWith(specs.LinuxSyscall{Names: []string{"getcwd"}, Action: specs.ActTrap}), "", "getcwd")
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out.String(), "SIGSYS") || strings.Contains(out.String(), "getcwd ") {
		t.Errorf("child ended with %v and printed %q, want a SIGSYS crash in getcwd", err, out)
	}
}

func TestLoadArchesAndFlags(t *testing.T) {
	cfg := allowWith(specs.LinuxSyscall{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOTDIR))})
	// The native architecture is not listed: it is always in the filter,
	// else the filter would kill the child on its first syscall.
	cfg.Architectures = []specs.Arch{specs.ArchX86, specs.ArchX32}
	cfg.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, "SECCOMP_FILTER_FLAG_TSYNC"}
	got := runChild(t, cfg, "getcwd")
	expect(t, got, map[string]string{"load": "none", "getcwd": errno(unix.ENOTDIR)})
}

func TestLoadNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	ln := listenUnix(t, sock)
	target := filepath.Join(dir, "intercepted")
	cfg := allowWith(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActNotify})
	cfg.ListenerPath = sock
	cfg.ListenerMetadata = "agent-metadata"
	if kernelAtLeast(t, 5, 19) {
		cfg.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}
	}
	cmd, out := startChild(t, cfg, sock, "getcwd", mkdirOp(0o755, target))

	st, fd := receiveListener(t, ln)
	defer unix.Close(fd)
	if len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName {
		t.Errorf("fds %v, want [%s]", st.Fds, specs.SeccompFdName)
	}
	if st.Pid != cmd.Process.Pid || st.State.Pid != cmd.Process.Pid || st.Metadata != "agent-metadata" ||
		st.Version != specs.Version || st.State.ID != "ctr" || st.State.Status != specs.StateCreating {
		t.Errorf("state %+v, want pid %d, metadata and the container state", st, cmd.Process.Pid)
	}

	// Answer the child's mkdirat, as an agent does, with an error of our
	// choosing that the child must see.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 20_000); err != nil || n != 1 {
		t.Fatalf("no notification within 20s (poll %d, %v)\n%s", n, err, out)
	}
	req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	name, err := req.Data.Syscall.GetName()
	if err != nil || name != "mkdirat" {
		t.Errorf("notified syscall %q (%v), want mkdirat", name, err)
	}
	if req.Pid != uint32(cmd.Process.Pid) {
		t.Errorf("notification from pid %d, want %d", req.Pid, cmd.Process.Pid)
	}
	if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.ELOOP)}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	expect(t, parseResults(t, out.String()), map[string]string{
		"load": "listener", "getcwd": "0", mkdirOp(0o755, target): errno(unix.ELOOP),
	})
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("intercepted mkdirat made the directory: %v", err)
	}
}

// atFdcwd is AT_FDCWD as mkdirat's first argument reaches the filter: the
// register holds the int sign-extended to 64 bits.
var atFdcwd = func() uint64 { v := int64(unix.AT_FDCWD); return uint64(v) }()
