package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
	"github.com/berth-containers/berth/runtime"
)

// Default grace period of stop, as Docker's.
const defaultStopTimeout = 10

// recordTimeout bounds the wait for a monitor to record an exit after
// the program is gone.
const recordTimeout = 15 * time.Second

// active says whether a status has a monitor behind it.
func active(status string) bool {
	return status == StatusRunning || status == StatusPaused || status == StatusRestarting
}

// Stop signals the program with its stop signal, waits up to timeout
// seconds (nil: the container's own or 10), then kills it; it returns
// once the exit is recorded. The restart policy does not restart it.
func (e *Engine) Stop(ctx context.Context, ref string, timeout *int) error {
	c, err := e.markStopped(ctx, ref)
	if err != nil || !active(c.State.Status) {
		return err
	}
	grace := defaultStopTimeout
	if c.Config.StopTimeout != nil {
		grace = *c.Config.StopTimeout
	}
	if timeout != nil {
		grace = *timeout
	}
	sig := unix.SIGTERM
	if c.Config.StopSignal != "" {
		if sig, err = runtime.ParseSignal(c.Config.StopSignal); err != nil {
			return err
		}
	}
	if c.State.Status == StatusRunning || c.State.Status == StatusPaused {
		if err := e.signal(c, sig); err != nil {
			return err
		}
		if grace < 0 || !waitPidExit(ctx, c.State.Pid, time.Duration(grace)*time.Second) {
			if err := e.signal(c, unix.SIGKILL); err != nil {
				return err
			}
		}
	}
	e.event(ctx, c, "stop", nil)
	return e.waitRecorded(ctx, c.ID)
}

// markStopped notes that the user stopped the container, so its restart
// policy leaves it stopped.
func (e *Engine) markStopped(ctx context.Context, ref string) (*state.Container, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !active(c.State.Status) {
		return c, nil
	}
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	return db.UpdateContainer(ctx, c.ID, func(c *state.Container) error {
		c.State.ManualStop = true
		return nil
	})
}

// signal sends sig to the container's program; a paused container is
// thawed after, so the signal can act.
func (e *Engine) signal(c *state.Container, sig unix.Signal) error {
	err := e.runtime().Kill(c.ID, sig, false)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) && !strings.Contains(err.Error(), "not running") {
		return err
	}
	if c.State.Status == StatusPaused {
		if err := e.runtime().Resume(c.ID); err == nil {
			db, _ := e.db(context.Background())
			_, _ = db.UpdateContainer(context.Background(), c.ID, func(c *state.Container) error {
				if c.State.Status == StatusPaused {
					c.State.Status = StatusRunning
				}
				return nil
			})
		}
	}
	return nil
}

// Kill sends a signal (default SIGKILL) to a running container.
func (e *Engine) Kill(ctx context.Context, ref, signal string) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	sig := unix.SIGKILL
	if signal != "" {
		if sig, err = runtime.ParseSignal(signal); err != nil {
			return errdefs.Invalid("invalid signal: %s", signal)
		}
	}
	if c.State.Status != StatusRunning && c.State.Status != StatusPaused {
		return errdefs.Precondition("cannot kill container %s: container %s is not running", ref, c.ID)
	}
	if sig == unix.SIGKILL || sig == unix.SIGTERM {
		if c, err = e.markStopped(ctx, c.ID); err != nil {
			return err
		}
	}
	if err := e.signal(c, sig); err != nil {
		return err
	}
	e.event(ctx, c, "kill", map[string]string{"signal": fmt.Sprint(int(sig))})
	if sig == unix.SIGKILL {
		return e.waitRecorded(ctx, c.ID)
	}
	return nil
}

// waitPidExit waits for a process that is not our child to exit, through
// a pidfd; false when it still runs at the deadline.
func waitPidExit(ctx context.Context, pid int, d time.Duration) bool {
	if pid <= 0 {
		return true
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return errors.Is(err, unix.ESRCH)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return false
		}
		ms := int(min(left, 200*time.Millisecond) / time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, max(ms, 1))
		if n > 0 {
			return true
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false
		}
	}
}

// waitRecorded waits until the monitor has recorded the end of the
// container's program (or is gone), bounded by recordTimeout.
func (e *Engine) waitRecorded(ctx context.Context, id string) error {
	deadline := time.Now().Add(recordTimeout)
	delay := time.Millisecond
	for {
		c, err := e.Container(ctx, id)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil // removed (--rm)
		}
		if err != nil {
			return err
		}
		if !active(c.State.Status) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s: its monitor did not record the exit within %s", id[:12], recordTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	// Force kills a running container first.
	Force bool
	// Volumes removes the container's anonymous volumes too.
	Volumes bool
}

// Remove deletes a container.
func (e *Engine) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	if active(c.State.Status) && !opts.Force {
		verb := c.State.Status
		return errdefs.Precondition("cannot remove container %q: container is %s: stop the container before removing or force remove", "/"+c.Name, verb)
	}
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	c, err = db.UpdateContainer(ctx, c.ID, func(c *state.Container) error {
		c.State.ManualStop = true
		if active(c.State.Status) {
			c.State.Status = StatusRemoving
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.State.Pid > 0 {
		_ = e.runtime().Kill(c.ID, unix.SIGKILL, true)
		_ = e.runtime().Resume(c.ID)
		waitPidExit(ctx, c.State.Pid, recordTimeout)
	}
	if c.State.MonitorPid > 0 {
		waitPidExit(ctx, c.State.MonitorPid, recordTimeout)
	}
	lock, err := flock.Exclusive(ctx, e.containerPath(c.ID, lockName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // --rm's monitor removed it meanwhile
		}
		return fmt.Errorf("lock container: %w", err)
	}
	defer func() { _ = lock.Unlock() }()
	return e.destroy(ctx, c, opts.Volumes)
}

// Wait blocks until the container is not running (or is removed, with
// removed) and returns its exit code.
func (e *Engine) Wait(ctx context.Context, ref string, removed bool) (int, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return -1, err
	}
	id := c.ID
	delay := time.Millisecond
	for {
		c, err := e.Container(ctx, id)
		if errors.Is(err, errdefs.ErrNotFound) {
			return 0, nil
		}
		if err != nil {
			return -1, err
		}
		if !active(c.State.Status) && c.State.Status != StatusRemoving && !removed {
			return c.State.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// reconcile notices a container whose monitor died: its program is
// killed (nobody holds its output any more) and the exit recorded with
// the reason, so it is reported instead of silently lost.
func (e *Engine) reconcile(ctx context.Context, c *state.Container) (*state.Container, error) {
	if !active(c.State.Status) && c.State.Status != StatusRemoving {
		return c, nil
	}
	if c.State.MonitorPid <= 0 || monitorAlive(c.State.MonitorPid, c.State.MonitorStart) {
		return c, nil
	}
	dead := c.State.MonitorPid
	if c.State.Pid > 0 {
		_ = e.runtime().Kill(c.ID, unix.SIGKILL, true)
		waitPidExit(ctx, c.State.Pid, 5*time.Second)
	}
	oom := e.oomKilled(c.ID)
	_ = e.runtime().Delete(ctx, c.ID, true)
	_ = e.teardownNetwork(ctx, c.ID)
	_ = e.unmountRootfs(c.ID)
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	c, err = db.UpdateContainer(ctx, c.ID, func(c *state.Container) error {
		if c.State.MonitorPid != dead {
			return nil // someone else got here first
		}
		c.State.Status = StatusExited
		c.State.Pid, c.State.MonitorPid = 0, 0
		if c.State.ExitCode == 0 {
			c.State.ExitCode = 137
		}
		c.State.OOMKilled = c.State.OOMKilled || oom
		c.State.FinishedAt = time.Now().UTC()
		c.State.Error = fmt.Sprintf("berth monitor (pid %d) died; the container was stopped", dead)
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.event(ctx, c, "die", map[string]string{"exitCode": fmt.Sprint(c.State.ExitCode), "error": c.State.Error})
	return c, nil
}

// monitorAlive says whether pid is still the monitor that started at
// start (clock ticks), and not a zombie or a process that reused the
// number. The start time, unlike the command line, stays the same while
// the monitor execs from one phase to the next.
func monitorAlive(pid int, start uint64) bool {
	// While a monitor execs from one phase to the next, the kernel swaps
	// its threads, and /proc can show it gone or as a zombie for a moment:
	// only a death seen for 200 ms is one.
	for range 10 {
		if got, running := procStart(pid); running && (start == 0 || got == start) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// procStart reads a process's start time and whether it is alive (not
// gone, not a zombie).
func procStart(pid int) (uint64, bool) {
	start, state, err := runtime.ProcStartTime(pid)
	return start, err == nil && state != "Z" && state != "X"
}
