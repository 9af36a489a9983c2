package runtime

import (
	"context"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime/spec"
)

// ExecOptions are the flags of exec.
type ExecOptions struct {
	ID            string
	Process       *specs.Process
	ConsoleSocket string
	PidFile       string
	Detach        bool
	PreserveFds   int
	Stdin         *os.File
	Stdout        *os.File
	Stderr        *os.File
}

// BaseProcess returns the container's own process definition, the base
// that exec's flags change (as runc does: same env, user, capabilities
// and limits unless told otherwise).
func (r *Runtime) BaseProcess(id string) (*specs.Process, error) {
	s, err := r.specOf(id)
	if err != nil {
		return nil, err
	}
	p := *s.Process
	p.Terminal = false
	p.ConsoleSize = nil
	return &p, nil
}

// Exec runs another process in a running container. In the foreground it
// waits and returns the process's exit code.
func (r *Runtime) Exec(ctx context.Context, o ExecOptions) (int, error) {
	if err := spec.ValidateProcess(o.Process); err != nil {
		return -1, err
	}
	if o.Process.Terminal && o.ConsoleSocket == "" && o.Detach {
		return -1, errdefs.Invalid("a detached process with a terminal needs --console-socket")
	}
	signals := newSignalForwarder()
	defer signals.stop()
	c, err := r.open(o.ID, true)
	if err != nil {
		return -1, err
	}
	defer c.release()
	switch st := c.Status(); st {
	case StatusRunning, StatusCreated:
	default:
		return -1, errdefs.Precondition("cannot exec in container %s: it is %s", o.ID, st)
	}
	s, err := c.Spec()
	if err != nil {
		return -1, err
	}
	cfg := &initConfig{ID: o.ID, Process: o.Process, Exec: true, InitPid: c.rec.Pid}
	l := &launcher{cfg: cfg, stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr}
	if err := l.preserve(o.PreserveFds); err != nil {
		return -1, err
	}
	var consoleEnd *os.File
	if o.Process.Terminal {
		f, ours, err := consoleChannel(o.ConsoleSocket)
		if err != nil {
			return -1, err
		}
		defer f.Close()
		consoleEnd = ours
		cfg.ConsoleFd = l.addFile(f)
	}
	l.joinContainer(c.rec.Pid, s)
	cmd, sc, err := l.start()
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) {
		killWait(cmd)
		sc.f.Close()
		return -1, err
	}
	if cfg.SeccompFilter, err = r.compileSeccomp(s); err != nil {
		return fail(err)
	}
	if m, err := c.cgroup(); err == nil {
		if err := m.Join(cmd.Process.Pid); err != nil {
			return fail(fmt.Errorf("join container cgroup: %w", err))
		}
	}
	if err := c.handshake(ctx, sc, cfg, s, false); err != nil {
		return fail(err)
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	var tty *ttyProxy
	if consoleEnd != nil {
		if tty, err = newTTYProxy(consoleEnd, o.Stdin, o.Stdout); err != nil {
			return fail(err)
		}
		defer tty.close()
	}
	c.release()
	signals.forward(cmd.Process.Pid, tty)
	if err := waitExec(sc); err != nil {
		return fail(err)
	}
	if o.Detach {
		return 0, nil
	}
	code := waitExit(cmd)
	if tty != nil {
		tty.drain()
	}
	return code, nil
}

// joinContainer makes the launched process join every namespace of the
// container's init.
func (l *launcher) joinContainer(pid int, s *specs.Spec) {
	l.joinThread = map[specs.LinuxNamespaceType]string{}
	l.joinEarly = map[specs.LinuxNamespaceType]string{}
	if s.Linux == nil {
		return
	}
	for _, ns := range s.Linux.Namespaces {
		path := fmt.Sprintf("/proc/%d/ns/%s", pid, nsProcName(ns.Type))
		if threadJoinable[ns.Type] {
			l.joinThread[ns.Type] = path
		} else {
			l.joinEarly[ns.Type] = path
		}
	}
}

func initExec(sc *syncConn, cfg *initConfig) error {
	if cfg.ConsoleFd > 0 {
		if err := setupConsole(cfg, false); err != nil {
			return err
		}
	}
	if err := checkLSM(cfg.Process); err != nil {
		return err
	}
	return finishProcess(sc, cfg)
}
