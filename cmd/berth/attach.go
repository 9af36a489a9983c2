package main

import (
	"io"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth-containers/berth/engine/monitor"
)

// session joins the caller's terminal or stdio to a container's, through
// its monitor: output out, stdin in (with -i), the window size (with -t),
// the detach keys, and signals passed on (sig-proxy, without -t).
type session struct {
	conn       *monitor.Conn
	tty        bool
	stdin      bool
	detachKeys []byte
	// signal passes a signal on to the container; nil: none passed.
	signal func(unix.Signal)
	// recordExit, on a claiming connection, records the exit in place of
	// the monitor and says whether it did (see engine.RecordExit).
	recordExit func() bool
}

// run copies until the container's output ends. It returns the
// container's exit code, or detached when the user pressed the detach
// keys.
func (s *session) run() (code int, detached bool, err error) {
	restore := func() {}
	if s.tty && s.stdin && term.IsTerminal(int(os.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			restore = func() { _ = term.Restore(int(os.Stdin.Fd()), st) }
		}
	}
	defer restore()
	stopSignals := s.forwardSignals()
	defer stopSignals()
	detachCh := make(chan struct{})
	if s.stdin {
		go s.copyStdin(detachCh)
	}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, exited, err := s.conn.Copy(os.Stdout, os.Stderr)
		if exited && err == nil {
			s.finish()
		}
		done <- result{code, err}
	}()
	select {
	case r := <-done:
		return r.code, false, r.err
	case <-detachCh:
		_ = s.conn.Detach()
		return 0, true, nil
	}
}

// finish makes sure the exit is recorded (and, with --rm, the container
// removed) before the command returns, so that the next command sees it:
// a claiming client records it itself, which spares the monitor starting
// its exit phase; otherwise the monitor closes the connection once its
// exit phase is done.
func (s *session) finish() {
	if s.conn.Claim && s.recordExit != nil {
		if s.recordExit() {
			_ = s.conn.ExitRecorded()
			return
		}
		if s.conn.ExitYours() != nil {
			return
		}
	}
	_, _, _ = s.conn.Copy(io.Discard, io.Discard)
}

// forwardSignals passes window changes (with -t) or the usual signals
// (without) to the container until the returned stop is called.
func (s *session) forwardSignals() func() {
	ch := make(chan os.Signal, 8)
	if s.tty {
		s.resize()
		signal.Notify(ch, unix.SIGWINCH)
	} else if s.signal != nil {
		signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	}
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-quit:
				return
			case sig := <-ch:
				if sig == unix.SIGWINCH {
					s.resize()
				} else if s.signal != nil {
					s.signal(sig.(unix.Signal))
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}

func (s *session) resize() {
	ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	_ = s.conn.Resize(ws.Row, ws.Col)
}

// copyStdin sends stdin to the container, watching for the detach keys;
// at EOF the container's stdin is closed.
func (s *session) copyStdin(detached chan<- struct{}) {
	buf := make([]byte, 32<<10)
	matched := 0
	for {
		n, err := os.Stdin.Read(buf)
		if n > 0 {
			data := buf[:n]
			if len(s.detachKeys) > 0 {
				var hit bool
				data, matched, hit = scanDetach(data, s.detachKeys, matched)
				if hit {
					close(detached)
					return
				}
			}
			if len(data) > 0 && s.conn.WriteStdin(data) != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF || !s.tty {
				_ = s.conn.CloseStdin()
			}
			return
		}
	}
}

// scanDetach looks for the detach sequence in data, given how much of it
// the previous reads ended with. It returns the bytes to pass on (a
// partial sequence is held back until it is known not to be one), the
// new match length, and whether the sequence is complete.
func scanDetach(data, keys []byte, matched int) ([]byte, int, bool) {
	var out []byte
	for _, b := range data {
		if b == keys[matched] {
			matched++
			if matched == len(keys) {
				return out, 0, true
			}
			continue
		}
		if matched > 0 {
			out = append(out, keys[:matched]...)
			matched = 0
		}
		if b == keys[0] {
			matched = 1
			continue
		}
		out = append(out, b)
	}
	return out, matched, false
}

// parseDetachKeysFlag turns "ctrl-p,ctrl-q" into bytes; "" gives the
// default. A bad sequence is a usage error.
func parseDetachKeysFlag(spec string) ([]byte, error) {
	keys, err := parseDetachKeys(spec)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return keys, nil
}
