package engine

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/runtime"
)

// Docker's healthcheck defaults.
const (
	healthDefaultInterval      = 30 * time.Second
	healthDefaultTimeout       = 30 * time.Second
	healthDefaultStartInterval = 5 * time.Second
	healthDefaultRetries       = 3
	healthLogKeep              = 5
	healthOutputMax            = 4096
	healthPidFile              = "health.pid"
)

// healthConfig is the container's healthcheck, nil when it has none.
func healthConfig(c *state.Container) *container.HealthConfig {
	h := c.Config.Healthcheck
	if h == nil || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	return h
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// healthTick is how often the monitor wakes the healthcheck: the
// interval, or the start interval while a start period may be running.
func healthTick(h *container.HealthConfig) time.Duration {
	tick := orDefault(h.Interval, healthDefaultInterval)
	if h.StartPeriod > 0 {
		tick = min(tick, orDefault(h.StartInterval, healthDefaultStartInterval))
	}
	return tick
}

// runHealthcheck runs one probe when it is due and records the result.
func (e *Engine) runHealthcheck(ctx context.Context, id string) error {
	c, err := e.Container(ctx, id)
	if err != nil || c.State.Status != StatusRunning {
		return err
	}
	h := healthConfig(c)
	if h == nil || !healthDue(c, h, time.Now()) {
		return nil
	}
	start := time.Now().UTC()
	code, out := e.probe(ctx, c, h)
	res := &container.HealthcheckResult{Start: start, End: time.Now().UTC(), ExitCode: code, Output: out}
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	var changed string
	c, err = db.UpdateContainer(ctx, id, func(c *state.Container) error {
		changed = recordProbe(c, h, res)
		return nil
	})
	if err != nil {
		return err
	}
	if changed != "" {
		e.event(ctx, c, "health_status: "+changed, nil)
	}
	return nil
}

// healthDue says whether a probe should run now: one interval after the
// last (the start interval inside the start period).
func healthDue(c *state.Container, h *container.HealthConfig, now time.Time) bool {
	hs := c.State.Health
	if hs == nil || len(hs.Log) == 0 {
		return true
	}
	every := orDefault(h.Interval, healthDefaultInterval)
	if h.StartPeriod > 0 && now.Sub(c.State.StartedAt) < h.StartPeriod {
		every = orDefault(h.StartInterval, healthDefaultStartInterval)
	}
	// A little slack: the monitor's tick is not exact.
	return now.Sub(hs.Log[len(hs.Log)-1].Start) >= every-every/20
}

// recordProbe adds a result to the container's health and returns the new
// status when it changed.
func recordProbe(c *state.Container, h *container.HealthConfig, res *container.HealthcheckResult) string {
	if c.State.Health == nil {
		c.State.Health = &container.Health{Status: container.Starting}
	}
	hs := c.State.Health
	old := hs.Status
	retries := h.Retries
	if retries <= 0 {
		retries = healthDefaultRetries
	}
	inStart := h.StartPeriod > 0 && res.Start.Sub(c.State.StartedAt) < h.StartPeriod
	switch {
	case res.ExitCode == 0:
		hs.Status, hs.FailingStreak = container.Healthy, 0
	case inStart && hs.Status == container.Starting:
		// Failures in the start period do not count.
	default:
		hs.FailingStreak++
		if hs.FailingStreak >= retries {
			hs.Status = container.Unhealthy
		}
	}
	hs.Log = append(hs.Log, res)
	if len(hs.Log) > healthLogKeep {
		hs.Log = hs.Log[len(hs.Log)-healthLogKeep:]
	}
	if hs.Status != old {
		return string(hs.Status)
	}
	return ""
}

// probe runs the healthcheck command in the container with its timeout.
func (e *Engine) probe(ctx context.Context, c *state.Container, h *container.HealthConfig) (int, string) {
	args := h.Test[1:]
	if h.Test[0] == "CMD-SHELL" {
		args = []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return -1, err.Error()
	}
	defer r.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(&limitedWriter{&out, healthOutputMax}, r)
		close(done)
	}()
	p, err := e.execProcess(c, ExecOptions{Cmd: args})
	if err != nil {
		w.Close()
		return -1, err.Error()
	}
	pidFile := e.containerPath(c.ID, healthPidFile)
	timeout := orDefault(h.Timeout, healthDefaultTimeout)
	timer := time.AfterFunc(timeout, func() { killPidFile(pidFile) })
	devNull, _ := os.Open(os.DevNull)
	code, err := e.runtime().Exec(ctx, runtime.ExecOptions{ID: c.ID, Process: p, PidFile: pidFile, Stdin: devNull, Stdout: w, Stderr: w})
	devNull.Close()
	w.Close()
	timedOut := !timer.Stop()
	<-done
	_ = os.Remove(pidFile)
	switch {
	case timedOut:
		return -1, "Health check exceeded timeout (" + timeout.String() + ")"
	case err != nil:
		return -1, err.Error()
	}
	return code, out.String()
}

func killPidFile(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// limitedWriter keeps the first n bytes and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
