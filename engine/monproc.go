package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/monitor"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
	"github.com/berth-containers/berth/runtime"
)

// The monitor is berth re-executed as argv {monitorArg0, phase, id}. Its
// Go phases do what needs the engine (start the container, record its
// end, restart it); between them the C phase in package monitor holds the
// container's stdio at a fraction of a Go process's memory:
//
//	CLI ──spawn──> [start] ──exec──> [C: logs, attach, wait] ──exec──> [exit]
//	                  ^                                                   │
//	                  └──────────────── restart policy says again ────────┘
const (
	monitorArg0       = "berth-monitor"
	monitorPhaseStart = "start"
	monitorPhaseExit  = "exit"
	monitorPhaseTick  = "health"
	envMonitorRoot    = "_BERTH_ENGINE_ROOT"
)

// Fds the CLI hands the start phase.
const (
	fdReady  = 3 // readiness pipe: "ok\n" or "error CODE TEXT\n"
	fdID     = 4 // the container's id, a line, once it is ready to start
	fdAttach = 5 // optional attach connection of a foreground run
)

// monitorIDOnPipe stands for the id in a start phase's argv: it comes on
// fdID (see PrepareMonitor).
const monitorIDOnPipe = "-"

// IsMonitor says whether this process is a container's monitor.
func IsMonitor() bool { return filepath.Base(os.Args[0]) == monitorArg0 && len(os.Args) == 3 }

// envMonitorAttach tells the start phase that fdAttach is open.
const envMonitorAttach = "_BERTH_ENGINE_ATTACH"

// RunMonitor is the monitor's Go side; it returns the process's exit code
// when it has nothing left to do.
func RunMonitor() int {
	phase, id := os.Args[1], os.Args[2]
	m := &monitorProc{id: id}
	var idPipe *os.File // the start phase's id comes on it
	if phase == monitorPhaseStart {
		// Claim the inherited fds before anything opens a file.
		m.ready = inherited(fdReady, "ready")
		idPipe = inherited(fdID, "id")
		if os.Getenv(envMonitorAttach) != "" {
			// The CLI in the foreground records the exit itself when
			// it can (see Engine.RecordExit).
			m.claim = inherited(fdAttach, "attach")
			m.clients = append(m.clients, m.claim)
		}
		_ = os.Unsetenv(envMonitorAttach)
	}
	ctx := context.Background()
	e, err := Open(Options{Root: os.Getenv(envMonitorRoot)})
	if err == nil {
		_, err = e.db(ctx)
	}
	if err != nil {
		m.report(err)
		fmt.Fprintf(os.Stderr, "berth monitor %s: %v\n", id, err)
		return 1
	}
	m.e = e
	if idPipe != nil {
		if m.id, err = awaitID(idPipe, e); err != nil {
			m.report(err)
			return 0 // the caller went away before it had a container
		}
		id = m.id
	}
	switch phase {
	case monitorPhaseStart:
		err = m.launch(ctx)
		m.report(err)
	case monitorPhaseExit:
		err = m.exited(ctx)
	case monitorPhaseTick:
		err = e.runHealthcheck(ctx, id)
	default:
		err = fmt.Errorf("unknown monitor phase %q", phase)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s berth monitor %s %s: %v\n", time.Now().UTC().Format(time.RFC3339Nano), phase, id, err)
		return 1
	}
	return 0
}

// awaitID reads the container's id from the spawner, then points stdout
// and stderr at the container's monitor log.
func awaitID(r *os.File, e *Engine) (string, error) {
	defer r.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	id := strings.TrimSuffix(line, "\n")
	if err != nil {
		return "", fmt.Errorf("no container to start: %w", err)
	}
	if id == "" || strings.ContainsAny(id, "/.") {
		return "", fmt.Errorf("no container to start: bad id %q", id)
	}
	logf, err := os.OpenFile(e.containerPath(id, monitorLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", fmt.Errorf("monitor log: %w", err)
	}
	defer logf.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(logf.Fd()), fd, 0); err != nil {
			return "", fmt.Errorf("monitor log: %w", err)
		}
	}
	return id, nil
}

// inherited adopts an fd the spawner passed, closing it on exec.
func inherited(fd int, name string) *os.File {
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name)
}

// report answers the CLI waiting on the readiness pipe, once.
func (m *monitorProc) report(err error) {
	f := m.ready
	if f == nil {
		return
	}
	m.ready = nil
	defer f.Close()
	if err == nil {
		_, _ = f.WriteString("ok\n")
		return
	}
	code := 125
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	_, _ = fmt.Fprintf(f, "error %d %s\n", code, msg)
}

type monitorProc struct {
	e        *Engine
	id       string
	ready    *os.File // the spawning CLI's readiness pipe, until answered
	listener *os.File
	clients  []*os.File
	claim    *os.File // the client that may record the exit, if any
}

// launch starts the container's program and hands over to the C phase;
// it returns only when it could not.
func (m *monitorProc) launch(ctx context.Context) error {
	e := m.e
	c, err := e.Container(ctx, m.id)
	if err != nil {
		return err
	}
	io, err := newStdio(c.Config)
	if err != nil {
		return m.failStart(ctx, err)
	}
	if m.listener == nil {
		sock := e.containerPath(m.id, attachSock)
		_ = os.Remove(sock)
		if m.listener, err = monitor.ListenUnix(sock); err != nil {
			io.closeAll()
			return m.failStart(ctx, err)
		}
	}
	l, err := e.runtime().Launch(ctx, runtime.CreateOptions{
		ID: m.id, Bundle: e.containerDir(m.id),
		Stdin: io.childIn, Stdout: io.childOut, Stderr: io.childErr,
	})
	io.closeChild()
	if err != nil {
		io.closeAll()
		return m.failStart(ctx, startError(err))
	}
	c, err = e.markRunning(ctx, m.id, l.Pid)
	if err != nil {
		_ = e.runtime().Kill(m.id, 9, true)
		return err
	}
	m.report(nil)
	return m.handOver(c, l, io)
}

// handOver execs the C phase.
func (m *monitorProc) handOver(c *state.Container, l *runtime.Launched, io *stdio) error {
	size, files, _ := logLimits(c.HostConfig.LogConfig.Config)
	cfg := monitor.Config{
		Pid: l.Pid, Stdout: io.out, Stderr: io.err, TTY: l.Console, Stdin: io.in,
		LogPath: c.LogPath, LogMaxSize: size, LogMaxFiles: files,
		Listener: m.listener, Clients: m.clients, Claim: m.claim,
		ExitPath: m.e.containerPath(m.id, exitFile),
		Next:     []string{monitorArg0, monitorPhaseExit, m.id},
		Argv:     []string{monitorArg0, "running", m.id},
	}
	if hc := healthConfig(c); hc != nil {
		cfg.TickInterval = healthTick(hc)
		cfg.Tick = []string{monitorArg0, monitorPhaseTick, m.id}
	}
	_ = os.Remove(cfg.ExitPath)
	return monitor.Exec(cfg)
}

// failStart records why the program did not start, as Docker does: the
// container stays created, with the error and exit code.
func (m *monitorProc) failStart(ctx context.Context, err error) error {
	code := 125
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	db, dbErr := m.e.db(ctx)
	if dbErr != nil {
		return errors.Join(err, dbErr)
	}
	_, _ = db.UpdateContainer(ctx, m.id, func(c *state.Container) error {
		c.State.Error = err.Error()
		c.State.ExitCode = code
		if c.State.Status != StatusCreated {
			c.State.Status = StatusExited
			c.State.FinishedAt = time.Now().UTC()
		}
		c.State.Pid, c.State.MonitorPid = 0, 0
		return nil
	})
	_ = m.e.runtime().Delete(ctx, m.id, true)
	_ = m.e.teardownNetwork(ctx, m.id)
	_ = m.e.unmountRootfs(m.id)
	return err
}

// startError gives a launch failure Docker's exit code: 127 when the
// program does not exist, 126 when it cannot be executed.
func startError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return &ExitError{Code: 127, Err: err}
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "exec format error"), strings.Contains(msg, "is a directory"):
		return &ExitError{Code: 126, Err: err}
	}
	return &ExitError{Code: 125, Err: err}
}

// markRunning records a started program.
func (e *Engine) markRunning(ctx context.Context, id string, pid int) (*state.Container, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	c, err := db.UpdateContainer(ctx, id, func(c *state.Container) error {
		c.State.Status = StatusRunning
		c.State.Pid, c.State.MonitorPid = pid, os.Getpid()
		c.State.MonitorStart, _ = procStart(os.Getpid())
		c.State.StartedAt = time.Now().UTC()
		c.State.ExitCode, c.State.Error, c.State.OOMKilled = 0, "", false
		c.State.ManualStop, c.State.KeepOnExit = false, false
		c.State.Health = nil
		if healthConfig(c) != nil {
			c.State.Health = &container.Health{Status: container.Starting}
		}
		return nil
	})
	if err == nil {
		e.volumeEvents(ctx, c, "mount")
		e.event(ctx, c, "start", nil)
	}
	return c, err
}

// stdio is the container's side and the monitor's side of its streams.
type stdio struct {
	childIn, childOut, childErr *os.File
	in, out, err                *os.File
}

// newStdio makes pipes for a program without a terminal; with one, the
// runtime hands back the terminal's master instead.
func newStdio(cfg *container.Config) (*stdio, error) {
	s := &stdio{}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	s.childIn = devNull
	if cfg.Tty {
		return s, nil
	}
	if cfg.OpenStdin {
		devNull.Close()
		if s.childIn, s.in, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("stdin pipe: %w", err)
		}
	}
	if s.out, s.childOut, err = os.Pipe(); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	if s.err, s.childErr, err = os.Pipe(); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	return s, nil
}

func (s *stdio) closeChild() {
	for _, f := range []*os.File{s.childIn, s.childOut, s.childErr} {
		if f != nil {
			f.Close()
		}
	}
	s.childIn, s.childOut, s.childErr = nil, nil, nil
}

func (s *stdio) closeAll() {
	s.closeChild()
	for _, f := range []*os.File{s.in, s.out, s.err} {
		if f != nil {
			f.Close()
		}
	}
}

// exited records the program's end, then restarts it or removes the
// container as its policy says.
func (m *monitorProc) exited(ctx context.Context) error {
	m.clients, m.listener = monitor.Handoff()
	defer m.closeClients()
	e := m.e
	ex, exitErr := monitor.ReadExit(e.containerPath(m.id, exitFile))
	if exitErr != nil {
		ex = monitor.Exit{Status: -1, Code: 255, Finished: time.Now().UTC(), Error: exitErr.Error()}
	}
	if ex.Status == -1 {
		// The C phase refused its input and never waited: the program
		// may still run, unowned. Stop it so it is not lost.
		_ = e.runtime().Kill(m.id, unix.SIGKILL, true)
	}
	c, restart, err := e.finishExit(ctx, m.id, ex)
	m.closeClients()
	if err != nil || !restart {
		return err
	}
	return m.restart(ctx, c)
}

// finishExit records an exit, then unmounts or removes the container
// unless its restart policy wants it run again. The monitor's exit phase
// and a foreground CLI (RecordExit) may both get here for one exit: the
// one that comes second finds it recorded and does nothing.
func (e *Engine) finishExit(ctx context.Context, id string, ex monitor.Exit) (*state.Container, bool, error) {
	oom := e.oomKilled(id)
	if err := e.runtime().Delete(ctx, id, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		fmt.Fprintf(os.Stderr, "delete runtime state: %v\n", err)
	}
	// Held until the root filesystem is unmounted (or the container
	// removed): a start that follows a stop must not see it mounted and
	// then lose it.
	lock, err := flock.Exclusive(ctx, e.containerPath(id, lockName))
	if err != nil {
		return nil, false, fmt.Errorf("lock container: %w", err)
	}
	defer func() { _ = lock.Unlock() }()
	c, restart, err := e.recordExit(ctx, id, ex, oom)
	if errors.Is(err, errExitRecorded) || errors.Is(err, errdefs.ErrNotFound) {
		return nil, false, nil // recorded by the other, or removed since
	}
	if err == nil && !restart {
		err = e.afterExit(ctx, c)
	}
	return c, restart, err
}

// RecordExit is for the foreground CLI that received the exit frame on a
// claiming connection (monitor.Conn.Claim): it records the exit as the
// monitor's exit phase would, and the monitor then ends without starting
// that phase. It returns false, having done nothing, when the exit is the
// monitor's to handle: a restart policy wants the container run again, or
// the monitor could not wait for the program.
func (e *Engine) RecordExit(ctx context.Context, id string) (bool, error) {
	ex, err := monitor.ReadExit(e.containerPath(id, exitFile))
	if err != nil || ex.Status == -1 {
		return false, nil //nolint:nilerr // the exit phase reports it
	}
	c, err := e.Container(ctx, id)
	if err != nil {
		return false, err
	}
	if wantsRestart(c, ex.Code) {
		return false, nil
	}
	if _, _, err := e.finishExit(ctx, id, ex); err != nil {
		return false, err
	}
	return true, nil
}

func (m *monitorProc) closeClients() {
	for _, f := range m.clients {
		f.Close()
	}
	m.clients, m.claim = nil, nil
}
