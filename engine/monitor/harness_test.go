//go:build linux && cgo

package monitor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary plays every part of a monitor's life. argv[1] picks one:
// setup is the Go phase that starts a container (a shell) and calls Exec;
// next is the program the C phase executes after the container exited (it
// reports, and may start the next round); tick is the periodic command.
const (
	modeSetup = "berth-monitor-test-setup"
	modeNext  = "berth-monitor-test-next"
	modeTick  = "berth-monitor-test-tick"
)

// scenario is what a setup process does, written as JSON into its
// directory.
type scenario struct {
	Dir        string
	Scripts    []string // one container per round, run by /bin/sh -c in Dir
	TTY        bool
	Stdin      bool
	Log        bool
	LogMax     int64
	LogFiles   int
	Listen     bool // socket at Dir/attach.sock
	PreClients int  // fds 3, 4, ... of the setup process
	Claim      bool // the first pre-connected client may record the exit
	TickMs     int
	BadEnv     []string // NAME=value overriding the monitor's environment
	// FdHidden says that BadEnv hides an fd from the monitor, which then
	// cannot close it.
	FdHidden bool
}

// report is what the next phase found, one per round.
type report struct {
	Round    int
	Exit     Exit
	ExitErr  string
	Clients  int
	Listener bool
	Leftover []string // _BERTH_MON* variables still set
	Fds      []string // targets of the fds open in the next phase
}

func TestMain(m *testing.M) {
	if len(os.Args) > 2 {
		switch os.Args[1] {
		case modeSetup:
			sc := loadScenario(os.Args[2])
			var clients []*os.File
			for i := 0; i < sc.PreClients; i++ {
				unix.CloseOnExec(3 + i)
				clients = append(clients, os.NewFile(uintptr(3+i), "client"))
			}
			var listener *os.File
			if sc.Listen {
				var err error
				if listener, err = ListenUnix(filepath.Join(sc.Dir, "attach.sock")); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(99)
				}
			}
			os.Exit(startRound(sc, os.Args[2], 0, clients, listener))
		case modeNext:
			os.Exit(nextMain(os.Args[2], os.Args[3]))
		case modeTick:
			os.Exit(tickMain(os.Args[2]))
		}
	}
	inherited = fdTargets()
	os.Exit(m.Run())
}

// inherited are the fds the test process itself was given, which every
// process it starts inherits too.
var inherited map[string]bool

func fdTargets() map[string]bool {
	m := map[string]bool{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			m[l] = true
		}
	}
	return m
}

func loadScenario(path string) scenario {
	var sc scenario
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &sc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(98)
	}
	return sc
}

// startRound starts round's container and hands the process to the
// monitor; it returns only on failure.
func startRound(sc scenario, spec string, round int, clients []*os.File, listener *os.File) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "round %d: %v\n", round, err)
		return 99
	}
	cmd := exec.Command("/bin/sh", "-c", sc.Scripts[round])
	cmd.Dir = sc.Dir
	cfg := Config{
		ExitPath: filepath.Join(sc.Dir, "exit."+strconv.Itoa(round)),
		Next:     []string{os.Args[0], modeNext, spec, strconv.Itoa(round)},
		Clients:  clients,
		Listener: listener,
	}
	if sc.Claim && round == 0 && len(clients) > 0 {
		cfg.Claim = clients[0]
	}
	var theirs []*os.File
	if sc.TTY {
		master, slave, err := openPty()
		if err != nil {
			return fail(err)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		cfg.TTY = master
		theirs = append(theirs, slave)
	} else {
		or, ow, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		er, ew, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		cmd.Stdout, cmd.Stderr = ow, ew
		cfg.Stdout, cfg.Stderr = or, er
		theirs = append(theirs, ow, ew)
		if sc.Stdin {
			ir, iw, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			cmd.Stdin = ir
			cfg.Stdin = iw
			theirs = append(theirs, ir)
		}
	}
	if sc.Log {
		cfg.LogPath = filepath.Join(sc.Dir, "log")
		cfg.LogMaxSize, cfg.LogMaxFiles = sc.LogMax, sc.LogFiles
	}
	if sc.TickMs > 0 {
		cfg.TickInterval = time.Duration(sc.TickMs) * time.Millisecond
		cfg.Tick = []string{os.Args[0], modeTick, sc.Dir}
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	for _, f := range theirs {
		f.Close()
	}
	if err := os.WriteFile(filepath.Join(sc.Dir, "pid."+strconv.Itoa(round)), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return fail(err)
	}
	cfg.Pid = cmd.Process.Pid
	if len(sc.BadEnv) == 0 {
		return fail(Exec(cfg))
	}
	vars, fds, err := plan(cfg)
	if err != nil {
		return fail(err)
	}
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fail(err)
		}
	}
	env := append(withoutMonitorVars(os.Environ()), vars...)
	env = overrideEnv(env, sc.BadEnv)
	return fail(syscall.Exec("/proc/self/exe", []string{"berth-monitor"}, env))
}

// overrideEnv replaces (or adds) each NAME=value of over in env.
func overrideEnv(env, over []string) []string {
	out := env[:0:0]
	drop := map[string]bool{}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	return append(out, over...)
}

func openPty() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	master = os.NewFile(uintptr(fd), "ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		return nil, nil, err
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	return master, slave, err
}

// nextMain is the program after the C phase: it reports what it was handed
// and starts the next round, if any.
func nextMain(spec, roundArg string) int {
	sc := loadScenario(spec)
	round, _ := strconv.Atoi(roundArg)
	clients, listener := Handoff()
	r := report{Round: round, Clients: len(clients), Listener: listener != nil}
	var err error
	if r.Exit, err = ReadExit(filepath.Join(sc.Dir, "exit."+roundArg)); err != nil {
		r.ExitErr = err.Error()
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "_BERTH_MON") {
			r.Leftover = append(r.Leftover, kv)
		}
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			r.Fds = append(r.Fds, e.Name()+"="+l)
		}
	}
	if r.Exit.Status == -1 {
		// The monitor gave the container back without waiting for it.
		if data, err := os.ReadFile(filepath.Join(sc.Dir, "pid."+roundArg)); err == nil {
			if pid, err := strconv.Atoi(string(data)); err == nil {
				_ = unix.Kill(pid, unix.SIGKILL)
				var ws unix.WaitStatus
				_, _ = unix.Wait4(pid, &ws, 0, nil)
			}
		}
	}
	line, _ := json.Marshal(r)
	f, err := os.OpenFile(filepath.Join(sc.Dir, "report.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 97
	}
	_, _ = f.Write(append(line, '\n'))
	f.Close()
	if round+1 < len(sc.Scripts) {
		return startRound(sc, spec, round+1, clients, listener)
	}
	for _, c := range clients {
		c.Close()
	}
	return 0
}

// tickMain records one run of the periodic command: start and end times,
// leaked monitor variables, and where its stdout goes.
func tickMain(dir string) int {
	start := time.Now()
	time.Sleep(250 * time.Millisecond)
	leak := 0
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "_BERTH_MON") {
			leak++
		}
	}
	out, _ := os.Readlink("/proc/self/fd/1")
	f, err := os.OpenFile(filepath.Join(dir, "ticks"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 1
	}
	defer f.Close()
	fmt.Fprintf(f, "%d %d %d %s\n", start.UnixNano(), time.Now().UnixNano(), leak, out)
	return 0
}

// monitorRun is a setup process started by a test.
type monitorRun struct {
	sc   scenario
	cmd  *exec.Cmd
	done chan error
}

// startMonitor starts a setup process for sc (Dir filled in) with extra
// fds; everything it starts is killed at cleanup.
func startMonitor(t *testing.T, sc scenario, extra ...*os.File) *monitorRun {
	t.Helper()
	if sc.Dir == "" {
		sc.Dir = t.TempDir()
	}
	spec := filepath.Join(sc.Dir, "spec.json")
	data, _ := json.Marshal(sc)
	if err := os.WriteFile(spec, data, 0o644); err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(sc.Dir, "monitor.err"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd := exec.Command(os.Args[0], modeSetup, spec)
	cmd.Stdout, cmd.Stderr = errf, errf
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &monitorRun{sc: sc, cmd: cmd, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		for i := range sc.Scripts {
			// A tty container has a session, and a process group, of its own.
			if data, err := os.ReadFile(filepath.Join(sc.Dir, "pid."+strconv.Itoa(i))); err == nil && sc.TTY {
				if pid, err := strconv.Atoi(string(data)); err == nil && pid > 1 {
					_ = unix.Kill(-pid, unix.SIGKILL)
				}
			}
		}
		select {
		case err := <-r.done:
			_ = err // killed: its status says nothing
		case <-time.After(10 * time.Second):
			t.Errorf("setup process %d not gone after SIGKILL", cmd.Process.Pid)
		}
	})
	return r
}

// wait waits for the whole life (every round) to end, and returns the
// reports.
func (r *monitorRun) wait(t *testing.T, limit time.Duration) []report {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Fatalf("setup process: %v; its stderr: %s", err, r.file("monitor.err"))
		}
	case <-time.After(limit):
		t.Fatalf("monitor still running after %v; its stderr: %s", limit, r.file("monitor.err"))
	}
	f, err := os.Open(filepath.Join(r.sc.Dir, "report.jsonl"))
	if err != nil {
		t.Fatalf("no report: %v; stderr: %s", err, r.file("monitor.err"))
	}
	defer f.Close()
	var reps []report
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rep report
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.ExitErr != "" {
			t.Errorf("round %d: %s", rep.Round, rep.ExitErr)
		}
		if len(rep.Leftover) > 0 {
			t.Errorf("round %d: monitor variables left in the next phase: %v", rep.Round, rep.Leftover)
		}
		for _, fd := range rep.Fds {
			_, target, _ := strings.Cut(fd, "=")
			if inherited[target] || r.sc.FdHidden {
				continue
			}
			if strings.Contains(fd, "pipe:") || strings.Contains(fd, "ptmx") || strings.HasSuffix(fd, "/log") {
				t.Errorf("round %d: fd of the monitor left open in the next phase: %s", rep.Round, fd)
			}
		}
		reps = append(reps, rep)
	}
	if len(reps) != len(r.sc.Scripts) {
		t.Fatalf("%d reports for %d rounds; stderr: %s", len(reps), len(r.sc.Scripts), r.file("monitor.err"))
	}
	return reps
}

func (r *monitorRun) file(name string) string {
	data, _ := os.ReadFile(filepath.Join(r.sc.Dir, name))
	return string(data)
}

// dial connects to the scenario's attach socket once it exists.
func (r *monitorRun) dial(t *testing.T) *Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := Dial(filepath.Join(r.sc.Dir, "attach.sock"))
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial: %v; stderr: %s", err, r.file("monitor.err"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// socketpair returns our end as a Conn and the monitor's end as a file.
func socketpair(t *testing.T) (*Conn, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	return NewConn(ours), theirs
}

// copyResult is what Conn.Copy gave.
type copyResult struct {
	stdout, stderr strings.Builder
	code           int
	exited         bool
	err            error
}

// copyAsync runs c.Copy in the background; the result comes within limit.
func copyAsync(c *Conn) chan *copyResult {
	ch := make(chan *copyResult, 1)
	go func() {
		r := &copyResult{}
		r.code, r.exited, r.err = c.Copy(&r.stdout, &r.stderr)
		ch <- r
	}()
	return ch
}

func awaitCopy(t *testing.T, ch chan *copyResult, limit time.Duration) *copyResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(limit):
		t.Fatalf("attach copy not done after %v", limit)
		return nil
	}
}
