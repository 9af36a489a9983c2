package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-containers/berth/engine/monitor"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
)

// Restart back-off, as Docker's: 100 ms doubling to a minute, from the
// start again once a run lasted 10 s.
const (
	restartDelayMin = 100 * time.Millisecond
	restartDelayMax = time.Minute
	restartResetRun = 10 * time.Second
)

// errExitRecorded says an exit was recorded already, by the monitor's
// exit phase or by the foreground CLI (see finishExit).
var errExitRecorded = errors.New("exit already recorded")

// oomKilled says whether the OOM killer struck the container.
func (e *Engine) oomKilled(id string) bool {
	n, err := e.runtime().OOMKills(id)
	return err == nil && n > 0
}

// recordExit stores how the program ended and says whether the restart
// policy wants it run again.
func (e *Engine) recordExit(ctx context.Context, id string, ex monitor.Exit, oom bool) (*state.Container, bool, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, false, err
	}
	var restart bool
	c, err := db.UpdateContainer(ctx, id, func(c *state.Container) error {
		s := &c.State
		if s.Pid == 0 && s.FinishedAt.Equal(ex.Finished) {
			return errExitRecorded
		}
		s.ExitCode, s.FinishedAt, s.OOMKilled, s.Pid = ex.Code, ex.Finished, oom, 0
		if ex.Error != "" {
			s.Error = ex.Error
		}
		restart = wantsRestart(c, ex.Code)
		switch {
		case restart:
			s.Status = StatusRestarting
			c.RestartCount++
		case s.Status != StatusRemoving:
			s.Status = StatusExited
			s.MonitorPid = 0
		}
		if s.Health != nil {
			s.Health.Status = container.Unhealthy
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if oom {
		e.event(ctx, c, "oom", nil)
	}
	if !restart {
		e.volumeEvents(ctx, c, "unmount")
	}
	e.event(ctx, c, "die", map[string]string{"exitCode": strconv.Itoa(ex.Code)})
	return c, restart, nil
}

// wantsRestart applies the restart policy to an exit.
func wantsRestart(c *state.Container, code int) bool {
	if c.State.ManualStop || c.State.Status == StatusRemoving || c.HostConfig.AutoRemove {
		return false
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return code != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// restartDelay is the back-off before the next run.
func restartDelay(c *state.Container) time.Duration {
	if c.State.FinishedAt.Sub(c.State.StartedAt) >= restartResetRun {
		return restartDelayMin
	}
	d := restartDelayMin
	for i := 1; i < c.RestartCount && d < restartDelayMax; i++ {
		d *= 2
	}
	return min(d, restartDelayMax)
}

// afterExit finishes a container that stays stopped: --rm removes it
// (unless a restart stopped it), otherwise its root filesystem is
// unmounted until the next start.
func (e *Engine) afterExit(ctx context.Context, c *state.Container) error {
	if c.HostConfig.AutoRemove && !c.State.KeepOnExit {
		return e.destroy(ctx, c, true)
	}
	return errors.Join(e.teardownNetwork(ctx, c.ID), e.unmountRootfs(c.ID))
}

// restart waits out the back-off, then runs the program again unless
// someone stopped or removed the container meanwhile.
func (m *monitorProc) restart(ctx context.Context, c *state.Container) error {
	deadline := time.Now().Add(restartDelay(c))
	for time.Now().Before(deadline) {
		time.Sleep(min(50*time.Millisecond, time.Until(deadline)))
		cur, err := m.e.Container(ctx, m.id)
		if err != nil {
			return err // removed
		}
		if cur.State.ManualStop || cur.State.Status != StatusRestarting {
			return m.stayStopped(ctx)
		}
	}
	return m.launch(ctx)
}

// stayStopped ends a restart that was called off.
func (m *monitorProc) stayStopped(ctx context.Context) error {
	lock, err := flock.Exclusive(ctx, m.e.containerPath(m.id, lockName))
	if err != nil {
		return fmt.Errorf("lock container: %w", err)
	}
	defer func() { _ = lock.Unlock() }()
	db, err := m.e.db(ctx)
	if err != nil {
		return err
	}
	c, err := db.UpdateContainer(ctx, m.id, func(c *state.Container) error {
		if c.State.Status == StatusRestarting {
			c.State.Status = StatusExited
		}
		c.State.MonitorPid = 0
		return nil
	})
	if err != nil {
		return err
	}
	return m.e.afterExit(ctx, c)
}

// destroy removes a stopped container and everything it had: runtime
// state, mounts, snapshot, files, and its anonymous volumes when asked.
// Each step tolerates what an interrupted earlier removal left.
func (e *Engine) destroy(ctx context.Context, c *state.Container, anonVolumes bool) error {
	if err := e.runtime().Delete(ctx, c.ID, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	// The network's rows go with the container's; the host's firewall and
	// resolver records follow once they are gone.
	fp, err := e.dropNetNS(ctx, c.ID)
	if err != nil {
		return err
	}
	if err := e.unmountRootfs(c.ID); err != nil {
		return err
	}
	if err := e.Snapshots.Remove(ctx, c.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("remove root filesystem: %w", err)
	}
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	if err := db.DeleteContainer(ctx, c.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if err := e.publishHostState(ctx, fp.ports > 0, fp.records, false); err != nil {
		return err
	}
	if err := os.RemoveAll(e.containerDir(c.ID)); err != nil {
		return fmt.Errorf("remove container directory: %w", err)
	}
	if anonVolumes {
		e.removeAnonVolumes(ctx, c)
	}
	e.event(ctx, c, "destroy", nil)
	return nil
}

// removeAnonVolumes removes the container's anonymous volumes that no
// other container uses. Failures leave a volume for volume prune.
func (e *Engine) removeAnonVolumes(ctx context.Context, c *state.Container) {
	hasVolumes := false
	for _, mp := range c.Mounts {
		hasVolumes = hasVolumes || mp.Type == "volume"
	}
	if !hasVolumes {
		return
	}
	users, err := e.VolumeUsers(ctx)
	if err != nil {
		return
	}
	for _, mp := range c.Mounts {
		if mp.Type != "volume" || len(users[mp.Name]) > 0 {
			continue
		}
		if v, err := e.Volume(ctx, mp.Name); err == nil && v.Anonymous {
			_ = e.deleteVolume(ctx, v)
		}
	}
}

// discard undoes a create that failed half-way.
func (e *Engine) discard(ctx context.Context, c *state.Container) {
	_ = e.destroy(ctx, c, true)
}

// event records a container event.
func (e *Engine) event(ctx context.Context, c *state.Container, action string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["name"] = c.Name
	attrs["image"] = c.Image
	for k, v := range c.Config.Labels {
		if _, ok := attrs[k]; !ok {
			attrs[k] = v
		}
	}
	e.emit(ctx, "container", action, c.ID, attrs)
}

// emit records an event; events are best effort and never fail the
// operation they describe.
func (e *Engine) emit(ctx context.Context, typ, action, actor string, attrs map[string]string) {
	db, err := e.db(ctx)
	if err != nil {
		return
	}
	_ = db.AddEvent(ctx, state.Event{Type: typ, Action: action, ActorID: actor, Attributes: attrs})
}
