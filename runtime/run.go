package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/runtime/console"
)

// RunOptions are the flags of run.
type RunOptions struct {
	CreateOptions
	// Detach returns once the program runs, leaving the container.
	Detach bool
	// Keep leaves a stopped container's state for inspection.
	Keep bool
}

// Run creates and starts a container. In the foreground it forwards
// signals and the terminal, waits, deletes the container and returns the
// program's exit code (128+n for a signal n, as shells do).
func (r *Runtime) Run(ctx context.Context, o RunOptions) (int, error) {
	o.detached = o.Detach
	signals := newSignalForwarder()
	defer signals.stop()
	p, err := r.create(ctx, o.CreateOptions, false)
	if err != nil {
		return -1, err
	}
	c := p.c
	fail := func(err error) (int, error) {
		c.killAll()
		_ = c.destroy(ctx)
		c.release()
		return -1, err
	}
	var tty *ttyProxy
	if p.console != nil {
		if tty, err = newTTYProxy(p.console, o.Stdin, o.Stdout); err != nil {
			return fail(err)
		}
		defer tty.close()
	}
	signals.forward(c.rec.Pid, tty)
	if err := waitExec(p.sync); err != nil {
		return fail(err)
	}
	_ = c.runPoststart(ctx)
	// Other commands (kill, state) may now take the container's lock.
	c.release()
	if o.Detach {
		return 0, nil
	}
	code := waitExit(p.cmd)
	if tty != nil {
		tty.drain()
	}
	if o.Keep {
		return code, nil
	}
	if c2, err := r.open(o.ID, true); err == nil {
		c2.killAll()
		err = c2.destroy(ctx)
		c2.release()
		if err != nil {
			return code, err
		}
	}
	return code, nil
}

// waitExec waits until init has exec'd the program: the sync socket
// closes on exec, or carries the reason it could not.
func waitExec(sc *syncConn) error {
	defer sc.f.Close()
	m, fds, err := sc.recv()
	closeFds(fds)
	if errors.Is(err, errEOF) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Type == msgError {
		return errors.New(m.Error)
	}
	return fmt.Errorf("sync: unexpected %s message after start", m.Type)
}

// waitExit waits for cmd and turns its end into a shell-style exit code.
func waitExit(cmd *exec.Cmd) int {
	err := cmd.Wait()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 255
}

// forwardedSignals are passed on to the container: the ones users and
// supervisors send. Catching every signal would cost a system call per
// signal number on each start, for signals nobody sends to a runtime.
var forwardedSignals = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGPWR, unix.SIGWINCH,
}

// signalForwarder passes the signals we get on to the container's
// process, and window size changes to its terminal. Catching signals
// starts a thread of the Go runtime, which costs milliseconds on a
// start; so it is set up in the background as soon as a command begins,
// and is long ready by the time there is a process to forward to.
type signalForwarder struct {
	ch    chan os.Signal
	ready chan struct{}
	done  chan struct{}
}

func newSignalForwarder() *signalForwarder {
	f := &signalForwarder{ch: make(chan os.Signal, 16), ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		signal.Notify(f.ch, forwardedSignals...)
		close(f.ready)
	}()
	return f
}

// forward starts passing signals to pid (queued ones first).
func (f *signalForwarder) forward(pid int, tty *ttyProxy) {
	go func() {
		for {
			select {
			case <-f.done:
				return
			case s := <-f.ch:
				if s == unix.SIGWINCH {
					if tty != nil {
						tty.resize()
					}
					continue
				}
				signalProcess(pid, s)
			}
		}
	}()
}

// stop ends forwarding; signals get their default action again.
func (f *signalForwarder) stop() {
	<-f.ready
	signal.Stop(f.ch)
	close(f.done)
}

// ttyProxy copies between our stdio and a container's terminal.
type ttyProxy struct {
	master  *os.File
	restore func()
	out     chan struct{}
	in      *os.File
}

func newTTYProxy(sock *os.File, stdin, stdout *os.File) (*ttyProxy, error) {
	master, err := console.RecvFd(sock)
	sock.Close()
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	t := &ttyProxy{master: master, restore: func() {}, out: make(chan struct{}), in: stdin}
	if stdin != nil {
		if restore, err := console.MakeRaw(stdin); err == nil {
			t.restore = restore
		}
		t.resize()
		go func() { _, _ = io.Copy(master, stdin) }()
	}
	go func() {
		defer close(t.out)
		if stdout != nil {
			_, _ = io.Copy(stdout, master)
		}
	}()
	return t, nil
}

func (t *ttyProxy) resize() {
	if t.in == nil {
		return
	}
	if w, h, err := console.Size(t.in); err == nil {
		_ = console.SetSize(t.master, w, h)
	}
}

// drain waits for the program's last output once it has exited.
func (t *ttyProxy) drain() { <-t.out }

func (t *ttyProxy) close() {
	t.restore()
	t.master.Close()
}
