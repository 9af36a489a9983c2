package runtime

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-containers/berth/runtime/console"
)

// Launched is a container that Launch started.
type Launched struct {
	// Pid is the container's first process, a child of the caller.
	Pid int
	// Console is the terminal's master side when the process has a
	// terminal and no console socket was given; the caller owns it.
	Console *os.File
}

// Launch creates a container and starts its program at once, for a
// supervisor that stays its parent (berth's per-container monitor): it
// returns once the program runs, leaving the process unwaited so the
// caller can wait for it. Without a console socket, a terminal's master
// comes back in Launched.Console.
func (r *Runtime) Launch(ctx context.Context, o CreateOptions) (*Launched, error) {
	p, err := r.create(ctx, o, false)
	if err != nil {
		return nil, err
	}
	c := p.c
	fail := func(err error) (*Launched, error) {
		c.killAll()
		_ = c.destroy(ctx)
		c.release()
		return nil, err
	}
	out := &Launched{Pid: c.rec.Pid}
	if p.console != nil {
		master, err := console.RecvFd(p.console)
		p.console.Close()
		if err != nil {
			return fail(fmt.Errorf("receive terminal: %w", err))
		}
		out.Console = master
	}
	if err := waitExec(p.sync); err != nil {
		if out.Console != nil {
			out.Console.Close()
		}
		return fail(err)
	}
	_ = c.runPoststart(ctx)
	c.release()
	return out, nil
}
