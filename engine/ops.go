package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/engine/logfile"
	"github.com/berth-containers/berth/engine/monitor"
	"github.com/berth-containers/berth/engine/specgen"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime"
	"github.com/berth-containers/berth/runtime/cgroups"
)

// Attach connects to a running container's stdio through its monitor.
func (e *Engine) Attach(ctx context.Context, ref string) (*monitor.Conn, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	if c.State.Status != StatusRunning && c.State.Status != StatusPaused {
		return nil, errdefs.Precondition("you cannot attach to a stopped container, start it first")
	}
	return monitor.Dial(e.containerPath(c.ID, attachSock))
}

// LogOptions select what Logs reads.
type LogOptions struct {
	Tail         int
	Since, Until time.Time
	Follow       bool
}

// Logs reads a container's log, following it while the container runs
// when asked.
func (e *Engine) Logs(ctx context.Context, ref string, o LogOptions, fn func(logfile.Entry) error) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.LogPath == "" {
		return errdefs.Precondition("configured logging driver does not support reading")
	}
	running := func() bool {
		cur, err := e.Container(ctx, c.ID)
		return err == nil && active(cur.State.Status)
	}
	return logfile.Read(ctx, c.LogPath, logfile.ReadOptions{
		Tail: o.Tail, Since: o.Since, Until: o.Until, Follow: o.Follow, Running: running,
		PollInterval: 100 * time.Millisecond,
	}, fn)
}

// ExecOptions describe a process to run in a container.
type ExecOptions struct {
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	Tty        bool
	Privileged bool
	Detach     bool
	Stdin      *os.File // nil: /dev/null
	Stdout     *os.File
	Stderr     *os.File
}

// Exec runs a process in a running container and returns its exit code.
func (e *Engine) Exec(ctx context.Context, ref string, o ExecOptions) (int, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return -1, err
	}
	if c.State.Status == StatusPaused {
		return -1, errdefs.Precondition("container %s is paused, unpause the container before exec", c.ID)
	}
	if c.State.Status != StatusRunning {
		return -1, errdefs.Precondition("container %s is not running", c.ID)
	}
	if len(o.Cmd) == 0 {
		return -1, errdefs.Invalid("no command specified")
	}
	p, err := e.execProcess(c, o)
	if err != nil {
		return -1, err
	}
	stdin := o.Stdin
	if stdin == nil {
		if stdin, err = os.Open(os.DevNull); err != nil {
			return -1, err
		}
		defer stdin.Close()
	}
	code, err := e.runtime().Exec(ctx, runtime.ExecOptions{
		ID: c.ID, Process: p, Detach: o.Detach, Stdin: stdin, Stdout: o.Stdout, Stderr: o.Stderr,
	})
	if err != nil {
		return code, startError(err)
	}
	e.event(ctx, c, "exec_start: "+strings.Join(o.Cmd, " "), nil)
	return code, nil
}

// execProcess derives an exec's process from the container's own.
func (e *Engine) execProcess(c *state.Container, o ExecOptions) (*specs.Process, error) {
	p, err := e.runtime().BaseProcess(c.ID)
	if err != nil {
		return nil, err
	}
	p.Args = o.Cmd
	p.Env = specgen.MergeEnv(p.Env, o.Env)
	p.Terminal = o.Tty
	rootfs := e.containerPath(c.ID, rootfsDir)
	if o.WorkingDir != "" {
		// Docker's exec does not make a missing directory, unlike the
		// container's own working directory.
		dir, err := securejoin.SecureJoin(rootfs, o.WorkingDir)
		if fi, serr := os.Stat(dir); err != nil || serr != nil || !fi.IsDir() {
			return nil, &ExitError{Code: 126, Err: fmt.Errorf("chdir to cwd (%q) set in config.json failed: no such file or directory", o.WorkingDir)}
		}
		p.Cwd = o.WorkingDir
	}
	if o.User != "" {
		u, home, err := specgen.ResolveUser(rootfs, o.User)
		if err != nil {
			return nil, &ExitError{Code: 126, Err: err}
		}
		p.User = u
		if home != "" && !hasEnv(o.Env, "HOME") {
			p.Env = specgen.MergeEnv(p.Env, []string{"HOME=" + home})
		}
	}
	if o.Privileged {
		all, err := specgen.AllCapabilities()
		if err != nil {
			return nil, err
		}
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return p, nil
}

// hasEnv says whether env sets key.
func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// Pause freezes a running container.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	return e.freeze(ctx, ref, true)
}

// Unpause thaws a paused container.
func (e *Engine) Unpause(ctx context.Context, ref string) error {
	return e.freeze(ctx, ref, false)
}

func (e *Engine) freeze(ctx context.Context, ref string, pause bool) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	from, to, action := StatusRunning, StatusPaused, "pause"
	if !pause {
		from, to, action = StatusPaused, StatusRunning, "unpause"
	}
	if c.State.Status != from {
		return errdefs.Precondition("container %s is not %s", c.ID, from)
	}
	if pause {
		err = e.runtime().Pause(c.ID)
	} else {
		err = e.runtime().Resume(c.ID)
	}
	if err != nil {
		return err
	}
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	if c, err = db.UpdateContainer(ctx, c.ID, func(c *state.Container) error {
		if c.State.Status == from {
			c.State.Status = to
		}
		return nil
	}); err != nil {
		return err
	}
	e.event(ctx, c, action, nil)
	return nil
}

// Rename gives a container a new name.
func (e *Engine) Rename(ctx context.Context, ref, name string) error {
	name = trimSlash(name)
	if err := validName(name); err != nil {
		return err
	}
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.Name == name {
		return errdefs.Invalid("renaming a container with the same name as its current name")
	}
	old := c.Name
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	if c, err = db.UpdateContainer(ctx, c.ID, func(c *state.Container) error {
		c.Name = name
		return nil
	}); err != nil {
		return err
	}
	e.event(ctx, c, "rename", map[string]string{"oldName": "/" + old})
	return nil
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}

// Pids lists the host pids of a running container's processes.
func (e *Engine) Pids(ctx context.Context, ref string) ([]int, error) {
	c, err := e.running(ctx, ref)
	if err != nil {
		return nil, err
	}
	return e.runtime().Pids(c.ID)
}

// Stats reads a running container's cgroup counters.
func (e *Engine) Stats(ctx context.Context, ref string) (*state.Container, *cgroups.Stats, error) {
	c, err := e.running(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	st, err := e.runtime().Stats(c.ID)
	return c, st, err
}

func (e *Engine) running(ctx context.Context, ref string) (*state.Container, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	if c.State.Status != StatusRunning && c.State.Status != StatusPaused {
		return nil, errdefs.Precondition("container %s is not running", c.ID)
	}
	return c, nil
}

// Update changes a container's resources and restart policy; a running
// container's cgroup changes at once.
func (e *Engine) Update(ctx context.Context, ref string, res container.Resources, set UpdateFields, policy *container.RestartPolicy) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	hc := *c.HostConfig
	applyUpdate(&hc.Resources, res, set)
	if policy != nil {
		if hc.AutoRemove && policy.Name != container.RestartPolicyDisabled && policy.Name != "" {
			return errdefs.Invalid("restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = *policy
	}
	lr, err := specgen.Resources(&hc)
	if err != nil {
		return err
	}
	if c.State.Status == StatusRunning || c.State.Status == StatusPaused {
		if err := e.runtime().Update(c.ID, lr); err != nil {
			return fmt.Errorf("update resources: %w", err)
		}
	}
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	if c, err = db.UpdateContainer(ctx, c.ID, func(c *state.Container) error {
		c.HostConfig.Resources = hc.Resources
		c.HostConfig.RestartPolicy = hc.RestartPolicy
		return nil
	}); err != nil {
		return err
	}
	e.event(ctx, c, "update", nil)
	return nil
}

// UpdateFields says which resource fields an update sets.
type UpdateFields map[string]bool

// applyUpdate copies the fields set from res into dst.
func applyUpdate(dst *container.Resources, res container.Resources, set UpdateFields) {
	if set["memory"] {
		dst.Memory = res.Memory
	}
	if set["memory-swap"] {
		dst.MemorySwap = res.MemorySwap
	}
	if set["memory-reservation"] {
		dst.MemoryReservation = res.MemoryReservation
	}
	if set["cpus"] {
		dst.NanoCPUs = res.NanoCPUs
	}
	if set["cpu-shares"] {
		dst.CPUShares = res.CPUShares
	}
	if set["cpu-period"] {
		dst.CPUPeriod = res.CPUPeriod
	}
	if set["cpu-quota"] {
		dst.CPUQuota = res.CPUQuota
	}
	if set["cpuset-cpus"] {
		dst.CpusetCpus = res.CpusetCpus
	}
	if set["cpuset-mems"] {
		dst.CpusetMems = res.CpusetMems
	}
	if set["pids-limit"] {
		dst.PidsLimit = res.PidsLimit
	}
	if set["blkio-weight"] {
		dst.BlkioWeight = res.BlkioWeight
	}
}

// Restart stops a container (if running) and starts it again.
func (e *Engine) Restart(ctx context.Context, ref string, timeout *int) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	keep := c.HostConfig.AutoRemove && active(c.State.Status)
	if keep {
		if err := e.keepOnExit(ctx, c.ID, true); err != nil {
			return err
		}
	}
	if err := e.Stop(ctx, c.ID, timeout); err != nil {
		if keep {
			// The stop failed, so no start follows: the container's
			// own exit, whenever it comes, removes it as --rm asks.
			// The stop's error is the one to report.
			_ = e.keepOnExit(context.WithoutCancel(ctx), c.ID, false)
		}
		return err
	}
	if _, err := e.Start(ctx, c.ID, StartOptions{}); err != nil {
		return err
	}
	e.event(ctx, c, "restart", nil)
	return nil
}

// keepOnExit sets whether the container's next exit leaves it in place
// even with --rm: restart stops it only to start it again.
func (e *Engine) keepOnExit(ctx context.Context, id string, keep bool) error {
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	_, err = db.UpdateContainer(ctx, id, func(c *state.Container) error {
		c.State.KeepOnExit = keep
		return nil
	})
	return err
}

// PruneContainers removes every stopped container and returns their IDs.
func (e *Engine) PruneContainers(ctx context.Context) ([]string, error) {
	cs, err := e.Containers(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		if c.State.Status != StatusExited && c.State.Status != StatusCreated && c.State.Status != StatusDead {
			continue
		}
		if err := e.Remove(ctx, c.ID, RemoveOptions{}); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
			return out, err
		}
		out = append(out, c.ID)
	}
	return out, nil
}
