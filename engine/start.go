package engine

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/monitor"
	"github.com/berth-containers/berth/engine/specgen"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
	"github.com/berth-containers/berth/snapshot"
)

// Container statuses, as Docker names them (the store's).
const (
	StatusCreated    = state.StatusCreated
	StatusRunning    = state.StatusRunning
	StatusPaused     = state.StatusPaused
	StatusRestarting = state.StatusRestarting
	StatusRemoving   = state.StatusRemoving
	StatusExited     = state.StatusExited
	StatusDead       = state.StatusDead
)

// startTimeout bounds how long start waits for the monitor to report.
const startTimeout = 2 * time.Minute

// StartOptions tune Start.
type StartOptions struct {
	// Attach connects the caller to the container's stdio before its
	// program starts, so no output is missed (run in the foreground,
	// start -a).
	Attach bool
	// Monitor is a monitor started ahead (PrepareMonitor) with the same
	// Attach; nil: Start starts one. Start uses it or sends it away.
	Monitor *Monitor
}

// ExitError is a container program's failure to start, with the exit
// code Docker gives it: 127 not found, 126 not executable, 125 other.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Start starts a created or stopped container under a new monitor. With
// opts.Attach it returns the connection to its stdio.
func (e *Engine) Start(ctx context.Context, ref string, opts StartOptions) (_ *monitor.Conn, err error) {
	mon := opts.Monitor
	if mon == nil {
		// Started first, so that its start-up overlaps with the mount
		// and the spec below.
		if mon, err = e.PrepareMonitor(opts.Attach); err != nil {
			return nil, err
		}
	}
	defer mon.Abort() // a no-op once begin has taken it
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	lock, err := flock.Exclusive(ctx, e.containerPath(c.ID, lockName))
	if err != nil {
		return nil, fmt.Errorf("lock container %s: %w", c.ID[:12], err)
	}
	defer func() { _ = lock.Unlock() }()
	if c, err = e.Container(ctx, c.ID); err != nil {
		return nil, err
	}
	switch c.State.Status {
	case StatusRunning, StatusRestarting:
		if opts.Attach {
			conn, err := e.Attach(ctx, c.ID)
			return conn, err
		}
		return nil, nil
	case StatusPaused:
		return nil, errdefs.Precondition("cannot start a paused container, try unpause instead")
	case StatusRemoving, StatusDead:
		return nil, errdefs.Precondition("container %s is marked for removal and cannot be started", c.Name)
	}
	if err := e.prepareStart(ctx, c); err != nil {
		return nil, err
	}
	conn, err := mon.begin(ctx, c.ID)
	if err != nil {
		// The monitor's failStart released what it could; a monitor that
		// never ran leaves the network to release here.
		_ = e.teardownNetwork(context.WithoutCancel(ctx), c.ID)
	}
	return conn, err
}

// prepareStart mounts the root filesystem, sets up the network and
// writes the OCI spec; on failure it undoes both.
func (e *Engine) prepareStart(ctx context.Context, c *state.Container) (err error) {
	rootfs := e.containerPath(c.ID, rootfsDir)
	// The network (a veth costs the kernel about a millisecond) is set up
	// while the root filesystem is mounted.
	type netResult struct {
		path string
		err  error
	}
	netDone := make(chan netResult, 1)
	go func() {
		p, err := e.setupNetwork(ctx, c)
		netDone <- netResult{p, err}
	}()
	defer func() {
		if err != nil {
			_ = e.teardownNetwork(context.WithoutCancel(ctx), c.ID)
			_ = e.unmountRootfs(c.ID)
		}
	}()
	err = e.mountRootfs(c.ID, c.HostConfig.AutoRemove)
	if err == nil {
		err = makeWorkdir(rootfs, c.Config.WorkingDir)
	}
	net := <-netDone
	if err != nil {
		return err
	}
	if net.err != nil {
		return net.err
	}
	netnsPath := net.path
	s, err := e.generateSpec(c, rootfs, netnsPath)
	if err != nil {
		return err
	}
	data, err := json.Marshal(s)
	if err == nil {
		err = writeFileAtomic(e.containerPath(c.ID, specFile), data)
	}
	if err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

// mountRootfs mounts the container's snapshot at its rootfs directory
// unless it is mounted already.
func (e *Engine) mountRootfs(id string, volatile bool) error {
	target := e.containerPath(id, rootfsDir)
	if mounted(target) {
		return nil
	}
	ms, err := e.Snapshots.Mounts(id)
	if err != nil {
		return fmt.Errorf("root filesystem: %w", err)
	}
	if volatile {
		ms = snapshot.Volatile(ms)
	}
	if err := snapshot.MountAll(ms, target); err != nil {
		return fmt.Errorf("mount root filesystem: %w", err)
	}
	return nil
}

// unmountRootfs undoes mountRootfs; an unmounted rootfs is fine.
func (e *Engine) unmountRootfs(id string) error {
	target := e.containerPath(id, rootfsDir)
	for range 8 { // overlay over bind: unmount until nothing is left
		if !mounted(target) {
			return nil
		}
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return nil
}

// mounted says whether something is mounted at dir.
func mounted(dir string) bool {
	m, err := mountinfo.Mounted(dir)
	return err == nil && m
}

// generateSpec builds the OCI spec of a container from its record.
func (e *Engine) generateSpec(c *state.Container, rootfs, netnsPath string) (_ *specs.Spec, err error) {
	mounts, err := e.specMounts(c, rootfs)
	if err != nil {
		return nil, err
	}
	in := specgen.Input{
		ID: c.ID, Name: c.Name, Config: c.Config, HostConfig: c.HostConfig,
		Rootfs: rootfs, Mounts: mounts, CgroupParent: "berth", CgroupV2: cgroupV2(), NetNSPath: netnsPath,
		Files: specgen.Files{
			Hostname:   e.containerPath(c.ID, hostnameFile),
			Hosts:      e.containerPath(c.ID, hostsFile),
			ResolvConf: e.containerPath(c.ID, resolvFile),
		},
	}
	if c.HostConfig.Init != nil && *c.HostConfig.Init {
		if in.InitPath, err = staticSelf(); err != nil {
			return nil, err
		}
	}
	return specgen.Generate(in)
}

// cgroupV2 says whether the host's cgroups are the unified hierarchy.
func cgroupV2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// Monitor is a container's monitor started before its container is
// ready, so that its start-up (a Go process opening the store) overlaps
// with the caller's own work: creating the container, mounting its root
// filesystem, writing its spec. It waits for the container's id on a pipe
// and leaves quietly when the pipe closes without one.
type Monitor struct {
	ready *os.File // the monitor's report
	id    *os.File // the container's id goes here
	conn  *monitor.Conn
}

// PrepareMonitor starts a monitor for a container that Start will name;
// attach says the caller stays connected to the container's stdio (run in
// the foreground, start -a). The caller passes it to Start, or Aborts it.
func (e *Engine) PrepareMonitor(attach bool) (_ *Monitor, err error) {
	m := &Monitor{}
	var idR, readyW, theirs *os.File
	defer func() {
		for _, f := range []*os.File{idR, readyW, theirs} {
			if f != nil {
				f.Close()
			}
		}
		if err != nil {
			m.Abort()
		}
	}()
	if m.ready, readyW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("monitor pipe: %w", err)
	}
	if idR, m.id, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("monitor pipe: %w", err)
	}
	files := []*os.File{readyW, idR}
	if attach {
		var ours *os.File
		if ours, theirs, err = socketPair(); err != nil {
			return nil, err
		}
		files = append(files, theirs)
		m.conn = monitor.NewConn(ours)
		m.conn.Claim = true
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{monitorArg0, monitorPhaseStart, monitorIDOnPipe},
		Env:         monitorEnv(e.root, attach),
		ExtraFiles:  files,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	_ = cmd.Process.Release()
	return m, nil
}

// Abort sends an unused monitor away.
func (m *Monitor) Abort() {
	for _, f := range []*os.File{m.id, m.ready} {
		if f != nil {
			f.Close()
		}
	}
	closeConn(m.conn)
	m.id, m.ready, m.conn = nil, nil, nil
}

// begin gives the monitor its container and waits until it reports the
// program running, or why it is not.
func (m *Monitor) begin(ctx context.Context, id string) (*monitor.Conn, error) {
	_, err := m.id.WriteString(id + "\n")
	if err != nil {
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	if err := readReady(ctx, m.ready); err != nil {
		return nil, err
	}
	conn := m.conn
	m.conn = nil // the caller's now, not Abort's
	return conn, nil
}

func closeConn(c *monitor.Conn) {
	if c != nil {
		_ = c.Close()
	}
}

// socketPair returns two connected unix stream sockets.
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "attach"), os.NewFile(uintptr(fds[1]), "attach-monitor"), nil
}

// The monitor's report on its readiness pipe: "ok" or "error CODE TEXT".
func readReady(ctx context.Context, r *os.File) error {
	_ = r.SetReadDeadline(time.Now().Add(startTimeout))
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = r.SetReadDeadline(time.Now())
		case <-done:
		}
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSuffix(line, "\n")
	if line == "ok" {
		return nil
	}
	if rest, ok := strings.CutPrefix(line, "error "); ok {
		codeText, msg, _ := strings.Cut(rest, " ")
		code, _ := strconv.Atoi(codeText)
		return &ExitError{Code: code, Err: errors.New(msg)}
	}
	if err == nil {
		err = fmt.Errorf("unexpected report %q", line)
	}
	return fmt.Errorf("monitor failed to start the container (see %s): %w", monitorLog, err)
}

// writeFileAtomic replaces a file through a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// monitorEnv is the environment a new monitor starts with.
func monitorEnv(root string, attach bool) []string {
	env := append(os.Environ(), envMonitorRoot+"="+root)
	if attach {
		env = append(env, envMonitorAttach+"=1")
	}
	return env
}

// staticSelf returns the berth binary's path for --init, which runs it
// inside the container where no shared library is: it must be static.
func staticSelf() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find berth for --init: %w", err)
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("read berth for --init: %w", err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", errdefs.Precondition("--init needs a statically linked berth; %s is dynamically linked", p)
		}
	}
	return p, nil
}

// makeWorkdir creates a missing working directory in the writable layer
// before the root may be made read-only, as Docker does at create.
func makeWorkdir(rootfs, dir string) error {
	if dir == "" || dir == "/" {
		return nil
	}
	full, err := securejoin.SecureJoin(rootfs, dir)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	if _, err := os.Stat(full); err == nil {
		return nil
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.MkdirAll(strings.TrimPrefix(path.Clean(dir), "/"), 0o755); err != nil {
		return fmt.Errorf("make working directory %s: %w", dir, err)
	}
	return nil
}
