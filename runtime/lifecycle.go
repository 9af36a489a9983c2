package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime/cgroups"
	"github.com/berth-containers/berth/runtime/hooks"
	"github.com/berth-containers/berth/runtime/spec"
)

// Start lets a created container's init exec the user's program.
func (r *Runtime) Start(ctx context.Context, id string) error {
	c, err := r.open(id, true)
	if err != nil {
		return err
	}
	defer c.release()
	if st := c.Status(); st != StatusCreated {
		return errdefs.Precondition("cannot start container %s: it is %s, not created", id, st)
	}
	path := filepath.Join(c.dir, fifoFile)
	// O_NONBLOCK: if init died meanwhile there is no writer, and a
	// blocking open would hang for ever.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer f.Close()
	if err := readFifo(f, 5*time.Second); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	s, err := c.Spec()
	if err != nil {
		return err
	}
	awaitExec(ctx, f, execWait(s))
	// Removing the fifo is what makes the container "running".
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove exec fifo: %w", err)
	}
	return c.runPoststart(ctx)
}

// readFifo waits for init's one byte, bounded by timeout.
func readFifo(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll exec fifo: %w", err)
		}
		if n == 0 {
			continue
		}
		got, err := unix.Read(int(f.Fd()), buf)
		if got == 1 {
			return nil
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			return fmt.Errorf("read exec fifo: %w", err)
		}
		if got == 0 && fds[0].Revents&unix.POLLHUP != 0 {
			return errors.New("container init exited before start")
		}
	}
	return errors.New("timed out waiting for container init")
}

// execWait bounds how long start waits for init to exec the user's
// program: the startContainer hooks run first, and one with no timeout
// may take as long as it likes (zero: no bound but the context's).
func execWait(s *specs.Spec) time.Duration {
	wait := 5 * time.Second
	if s.Hooks == nil {
		return wait
	}
	for _, h := range s.Hooks.StartContainer {
		if h.Timeout == nil {
			return 0
		}
		wait += time.Duration(*h.Timeout) * time.Second
	}
	return wait
}

// awaitExec waits for init to close its end of the exec fifo, which it
// does by exec'ing the user's program (or by dying). Running past the
// bound is not an error: the container has started either way.
func awaitExec(ctx context.Context, f *os.File, bound time.Duration) {
	var deadline time.Time
	if bound > 0 {
		deadline = time.Now().Add(bound)
	}
	buf := make([]byte, 1)
	for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 100); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
			return
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			if n, _ := unix.Read(int(f.Fd()), buf); n == 0 {
				return
			}
		}
	}
}

// runPoststart runs poststart hooks; as the spec says, a failure is
// reported but does not stop the container.
func (c *Container) runPoststart(ctx context.Context) error {
	s, err := c.Spec()
	if err != nil || s.Hooks == nil {
		return err
	}
	if err := hooks.Run(ctx, s.Hooks.Poststart, c.hookState(StatusRunning)); err != nil {
		fmt.Fprintf(os.Stderr, "berth: warning: poststart hook: %v\n", err)
	}
	return nil
}

// StateOf returns a container's OCI state.
func (r *Runtime) StateOf(id string) (State, error) {
	c, err := r.open(id, false)
	if err != nil {
		return State{}, err
	}
	return c.OCIState(), nil
}

// List returns the state of every container, sorted by id.
func (r *Runtime) List() ([]State, error) {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", r.Root, err)
	}
	var out []State
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := r.open(e.Name(), false)
		if err != nil {
			continue // being created or deleted right now
		}
		out = append(out, c.OCIState())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ParseSignal accepts "KILL", "SIGKILL", "sigkill" or "9".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.Invalid("invalid signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN") || strings.HasPrefix(name, "SIGRTMAX") {
		return parseRealtime(name)
	}
	return 0, errdefs.Invalid("unknown signal %q", s)
}

func parseRealtime(name string) (unix.Signal, error) {
	const rtmin, rtmax = 34, 64
	// RTMIN counts up (RTMIN+n), RTMAX counts down (RTMAX-n).
	base, off, sign := rtmin, strings.TrimPrefix(name, "SIGRTMIN"), "+"
	if strings.HasPrefix(name, "SIGRTMAX") {
		base, off, sign = rtmax, strings.TrimPrefix(name, "SIGRTMAX"), "-"
	}
	if off == "" {
		return unix.Signal(base), nil
	}
	digits, ok := strings.CutPrefix(off, sign)
	n, err := strconv.Atoi(digits)
	if !ok || err != nil || digits == "" || digits[0] < '0' || digits[0] > '9' {
		return 0, errdefs.Invalid("unknown signal %q", name)
	}
	sig := base + n
	if sign == "-" {
		sig = base - n
	}
	if sig < rtmin || sig > rtmax {
		return 0, errdefs.Invalid("unknown signal %q", name)
	}
	return unix.Signal(sig), nil
}

// Kill sends sig to the container's init, or with all to every process
// in its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, err := r.open(id, true)
	if err != nil {
		return err
	}
	defer c.release()
	st := c.Status()
	if st == StatusStopped && !all {
		return errdefs.Precondition("container %s is not running", id)
	}
	if all {
		return c.signalAll(sig)
	}
	if err := unix.Kill(c.rec.Pid, sig); err != nil {
		return fmt.Errorf("signal init of %s: %w", id, err)
	}
	return nil
}

// signalAll signals every process of the container. A frozen cgroup is
// thawed after SIGKILL is queued, or the processes could not die.
func (c *Container) signalAll(sig unix.Signal) error {
	m, err := c.cgroup()
	if err != nil {
		if c.initAlive() {
			return unix.Kill(c.rec.Pid, sig)
		}
		return nil
	}
	pids, err := m.Pids()
	if err != nil {
		return fmt.Errorf("list container processes: %w", err)
	}
	if sig == unix.SIGKILL {
		_ = m.Freeze()
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal %d: %w", pid, err)
		}
	}
	if sig == unix.SIGKILL {
		_ = m.Thaw()
	}
	return nil
}

func (c *Container) cgroup() (*cgroups.Manager, error) {
	if c.rec.Cgroup == nil {
		return nil, errors.New("container has no cgroup")
	}
	return cgroups.Load(*c.rec.Cgroup)
}

// Delete removes a stopped (or, with force, any) container: its
// processes, cgroup and state, then runs poststop hooks.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	c, err := r.open(id, true)
	if err != nil {
		return err
	}
	defer c.release()
	// The runtime spec: deleting a container that is not stopped is an
	// error. (runc also deletes a created one; tools that rely on that
	// pass --force, as containerd and podman do after a kill.)
	switch st := c.Status(); st {
	case StatusStopped:
	default:
		if !force {
			return errdefs.Precondition("cannot delete container %s that is not stopped: it is %s (use --force)", id, st)
		}
		c.killAll()
	}
	return c.destroy(ctx)
}

// killAll SIGKILLs every process and waits (bounded) for init to go. A
// container with its own pid namespace whose init is gone has nothing left
// to kill: the kernel ended the rest with it.
func (c *Container) killAll() {
	if !c.initAlive() {
		if s, err := c.Spec(); err == nil {
			if ok, path := spec.HasNamespace(s, specs.PIDNamespace); ok && path == "" {
				return
			}
		}
	}
	_ = c.signalAll(unix.SIGKILL)
	if c.initAlive() {
		_ = unix.Kill(c.rec.Pid, unix.SIGKILL)
	}
	for i := 0; i < 200 && c.initAlive(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *Container) destroy(ctx context.Context) error {
	var errs []error
	if m, err := c.cgroup(); err == nil {
		if err := destroyCgroup(m); err != nil {
			errs = append(errs, err)
		}
	}
	s, specErr := c.Spec()
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove state: %w", err))
	}
	if specErr == nil && s.Hooks != nil {
		if err := hooks.Run(ctx, s.Hooks.Poststop, c.hookState(StatusStopped)); err != nil {
			fmt.Fprintf(os.Stderr, "berth: warning: poststop hook: %v\n", err)
		}
	}
	return errors.Join(errs...)
}

// destroyCgroup removes the cgroup, retrying briefly while the kernel
// finishes reaping the last processes.
func destroyCgroup(m *cgroups.Manager) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = m.Destroy(); err == nil {
			return nil
		}
		if pids, _ := m.Pids(); len(pids) > 0 {
			for _, p := range pids {
				_ = unix.Kill(p, unix.SIGKILL)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup: %w", err)
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error {
	return r.withRunning(id, StatusRunning, func(m *cgroups.Manager) error { return m.Freeze() })
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	return r.withRunning(id, StatusPaused, func(m *cgroups.Manager) error { return m.Thaw() })
}

func (r *Runtime) withRunning(id, want string, fn func(*cgroups.Manager) error) error {
	c, err := r.open(id, true)
	if err != nil {
		return err
	}
	defer c.release()
	if st := c.Status(); st != want {
		return errdefs.Precondition("container %s is %s, not %s", id, st, want)
	}
	m, err := c.cgroup()
	if err != nil {
		return err
	}
	return fn(m)
}

// specOf returns the stored configuration of a container.
func (r *Runtime) specOf(id string) (*specs.Spec, error) {
	c, err := r.open(id, false)
	if err != nil {
		return nil, err
	}
	return c.Spec()
}

// Pids lists the host pids of the container's processes.
func (r *Runtime) Pids(id string) ([]int, error) {
	c, err := r.open(id, false)
	if err != nil {
		return nil, err
	}
	m, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return m.Pids()
}

// Stats returns the container's cgroup statistics.
func (r *Runtime) Stats(id string) (*cgroups.Stats, error) {
	c, err := r.open(id, false)
	if err != nil {
		return nil, err
	}
	if c.Status() == StatusStopped {
		return nil, errdefs.Precondition("container %s is not running", id)
	}
	m, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return m.Stats()
}

// Update applies new resource limits and records them in the stored
// configuration, so later commands see them.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	c, err := r.open(id, true)
	if err != nil {
		return err
	}
	defer c.release()
	if c.Status() == StatusStopped {
		return errdefs.Precondition("container %s is not running", id)
	}
	m, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := m.Set(res); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	// The next command loads the cgroup from the record: it must see the
	// limits in force now, or an update that leaves a field out would
	// restore that field's value from creation time.
	st := m.State()
	c.rec.Cgroup = &st
	if err := c.save(); err != nil {
		return err
	}
	s, err := c.Spec()
	if err != nil {
		return err
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	s.Linux.Resources = st.Resources
	return writeFileAtomic(filepath.Join(c.dir, configFile), mustJSON(s))
}

// Resources returns the resources a container was last given.
func (r *Runtime) Resources(id string) (*specs.LinuxResources, error) {
	s, err := r.specOf(id)
	if err != nil {
		return nil, err
	}
	if s.Linux == nil || s.Linux.Resources == nil {
		return &specs.LinuxResources{}, nil
	}
	return s.Linux.Resources, nil
}

// signalProcess forwards sig to a process, ignoring one that is gone.
func signalProcess(pid int, sig os.Signal) {
	if s, ok := sig.(syscall.Signal); ok {
		_ = unix.Kill(pid, s)
	}
}

// OOMKills counts the container's processes the kernel's OOM killer
// killed; it works on a stopped container until Delete.
func (r *Runtime) OOMKills(id string) (uint64, error) {
	c, err := r.open(id, false)
	if err != nil {
		return 0, err
	}
	m, err := c.cgroup()
	if err != nil {
		return 0, err
	}
	return m.OOMKills(), nil
}
