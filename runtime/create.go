package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime/cgroups"
	"github.com/berth-containers/berth/runtime/hooks"
	"github.com/berth-containers/berth/runtime/seccomp"
	"github.com/berth-containers/berth/runtime/spec"
)

// CreateOptions are the flags of create and run.
type CreateOptions struct {
	ID            string
	Bundle        string
	ConsoleSocket string
	PidFile       string
	NoPivot       bool
	NoNewKeyring  bool
	// PreserveFds passes this many fds after stdio (3, 4, ...) on.
	PreserveFds int
	Stdin       *os.File
	Stdout      *os.File
	Stderr      *os.File
	// detached: nobody stays to relay a terminal without a console socket.
	detached bool
}

// pending is a container whose init is set up and waiting to be started.
type pending struct {
	c       *Container
	cmd     *exec.Cmd
	sync    *syncConn
	console *os.File // our end of the console socketpair, for run in the foreground
}

// Create makes a container and leaves its init waiting on exec.fifo until
// Start.
func (r *Runtime) Create(ctx context.Context, o CreateOptions) error {
	p, err := r.create(ctx, o, true)
	if err != nil {
		return err
	}
	p.c.release()
	return nil
}

// create does the work of create and run. With fifo the init waits for
// `start` on exec.fifo; otherwise it execs as soon as it is ready, and the
// sync socket stays open so run learns when it has.
func (r *Runtime) create(ctx context.Context, o CreateOptions, fifo bool) (p *pending, err error) {
	if err := checkID(o.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle path: %w", err)
	}
	s, err := spec.Load(bundle)
	if err != nil {
		return nil, err
	}
	if s.Process == nil {
		return nil, errdefs.Invalid("config.json: process is required to create a container")
	}
	if s.Process.Terminal && o.ConsoleSocket == "" && (fifo || o.detached) {
		return nil, errdefs.Invalid("a container with a terminal that is created or run detached needs --console-socket")
	}
	if err := checkHost(s); err != nil {
		return nil, err
	}
	rootfs, err := filepath.EvalSymlinks(spec.RootPath(bundle, s))
	if err != nil {
		return nil, fmt.Errorf("root filesystem: %w", err)
	}
	c, err := r.newContainerDir(o.ID, s)
	if err != nil {
		return nil, err
	}
	// On failure: kill init first, since a cgroup with a live process
	// cannot be removed, then the cgroup, then the state.
	var cmd *exec.Cmd
	var sc *syncConn
	var cgm *cgroups.Manager
	defer func() {
		if err == nil {
			return
		}
		if cmd != nil {
			killWait(cmd)
			sc.f.Close()
		}
		if cgm != nil {
			_ = cgm.Destroy()
		}
		c.release()
		_ = os.RemoveAll(c.dir)
	}()
	c.rec = record{
		ID: o.ID, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(),
		Owner: owner(), Annotations: s.Annotations, Systemd: r.Systemd,
	}
	cfg := &initConfig{
		ID: o.ID, Spec: s, Process: s.Process, Bundle: bundle, Rootfs: rootfs,
		NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring, UseFifo: fifo,
	}
	l := &launcher{cfg: cfg, stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr}
	consoleEnd, closeAfter, err := l.prepareFiles(c.dir, s, o, fifo, rootfs)
	defer closeAll(closeAfter)
	if err != nil {
		return nil, err
	}
	l.cinit = wantsCInit(cfg, l)
	// Start init first: its runtime boots while we do the rest, and it
	// waits for the bootstrap message before it touches anything.
	if cmd, sc, err = l.start(); err != nil {
		return nil, err
	}
	c.rec.Pid = cmd.Process.Pid
	cfg.InitPid = c.rec.Pid
	if cfg.SeccompFilter, err = r.compileSeccomp(s); err != nil {
		return nil, err
	}
	cfg.Spec = withoutSeccomp(s)
	if c.rec.PidStartTime, _, err = procStartTime(c.rec.Pid); err != nil {
		return nil, fmt.Errorf("read init start time: %w", err)
	}
	m, err := cgroups.New(cgroups.Config{
		ID: o.ID, Path: cgroupsPath(s), Systemd: r.Systemd,
		Resources: resources(s), Devices: s.Linux.Devices,
	})
	if err != nil {
		return nil, err
	}
	cgm = m // Apply may fail half-way: whatever it made goes too.
	if err := cgm.Apply(c.rec.Pid); err != nil {
		return nil, err
	}
	cgState := cgm.State()
	c.rec.Cgroup = &cgState
	cfg.CgroupPaths = cgm.Paths()
	if err := writeFileAtomic(filepath.Join(c.dir, configFile), mustJSON(s)); err != nil {
		return nil, err
	}
	if err := c.handshake(ctx, sc, cfg, s, l.cinit); err != nil {
		return nil, err
	}
	// One write of the record, once init is ready: on ext4, replacing a
	// file by rename forces its data out, which costs milliseconds.
	if err := c.save(); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, c.rec.Pid); err != nil {
			return nil, err
		}
	}
	return &pending{c: c, cmd: cmd, sync: sc, console: consoleEnd}, nil
}

// prepareFiles opens what init inherits besides stdio: preserved fds, the
// exec fifo, a detached rootfs tree for user namespaces, and the console
// channel. It returns our end of a console socketpair (or nil) and the
// files to close once init has started.
func (l *launcher) prepareFiles(dir string, s *specs.Spec, o CreateOptions, fifo bool, rootfs string) (*os.File, []*os.File, error) {
	var toClose []*os.File
	if err := l.preserve(o.PreserveFds); err != nil {
		return nil, nil, err
	}
	if fifo {
		f, err := makeFifo(dir)
		if err != nil {
			return nil, toClose, err
		}
		toClose = append(toClose, f)
		l.cfg.FifoFd = l.addFile(f)
	}
	if hasNS(s, specs.UserNamespace) {
		// The container's root may be a host uid that cannot walk to the
		// rootfs (a bundle under a 0700 directory): hand init a detached
		// copy of the mount tree, made while we still can.
		tree, err := openTree(rootfs)
		if err != nil {
			return nil, toClose, err
		}
		toClose = append(toClose, tree)
		l.cfg.Rootfs = "/proc/self/fd/" + strconv.Itoa(l.addFile(tree))
	}
	var consoleEnd *os.File
	if s.Process.Terminal {
		f, ours, err := consoleChannel(o.ConsoleSocket)
		if err != nil {
			return nil, toClose, err
		}
		toClose = append(toClose, f)
		consoleEnd = ours
		l.cfg.ConsoleFd = l.addFile(f)
	}
	return consoleEnd, toClose, l.namespaces(s)
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// handshake drives init from bootstrap to ready (see sync.go).
func (c *Container) handshake(ctx context.Context, sc *syncConn, cfg *initConfig, s *specs.Spec, cInit bool) error {
	if err := sendBootstrap(sc, cfg, cInit); err != nil {
		return err
	}
	for {
		m, fds, err := sc.recv()
		if err != nil {
			if errors.Is(err, errEOF) {
				return errors.New("container init exited during setup")
			}
			return err
		}
		switch m.Type {
		case msgError:
			closeFds(fds)
			return errors.New(m.Error)
		case msgHooks:
			if err := c.runCreateHooks(ctx, s); err != nil {
				_ = sc.send(message{Type: msgError, Error: err.Error()})
				return err
			}
			if err := sc.send(message{Type: msgHooksDone}); err != nil {
				return err
			}
		case msgSeccompFd:
			err := c.sendSeccomp(s, fds)
			closeFds(fds)
			if err != nil {
				_ = sc.send(message{Type: msgError, Error: err.Error()})
				return err
			}
			if err := sc.send(message{Type: msgSeccompDone}); err != nil {
				return err
			}
		case msgReady:
			closeFds(fds)
			for _, w := range m.Warnings {
				c.rt.warn(w)
			}
			return nil
		default:
			closeFds(fds)
			return fmt.Errorf("sync: unexpected %s message", m.Type)
		}
	}
}

// sendBootstrap sends a C init its plan, or the Go bootstrap to a Go init
// and to a C init whose spec needs the Go one after all.
func sendBootstrap(sc *syncConn, cfg *initConfig, cInit bool) error {
	if cInit {
		if plan, ok := compilePlan(cfg); ok {
			return sc.sendPlan(plan)
		}
	}
	return sc.send(message{Type: msgBootstrap, Init: cfg})
}

// runCreateHooks runs prestart and createRuntime hooks. They see status
// "created", as crun shows them and the OCI validation suite expects.
func (c *Container) runCreateHooks(ctx context.Context, s *specs.Spec) error {
	if s.Hooks == nil {
		return nil
	}
	st := c.hookState(StatusCreated)
	//nolint:staticcheck // prestart is deprecated but still used by tools.
	if err := hooks.Run(ctx, s.Hooks.Prestart, st); err != nil {
		return fmt.Errorf("prestart hook: %w", err)
	}
	if err := hooks.Run(ctx, s.Hooks.CreateRuntime, st); err != nil {
		return fmt.Errorf("createRuntime hook: %w", err)
	}
	return nil
}

func (c *Container) sendSeccomp(s *specs.Spec, fds []int) error {
	if len(fds) != 1 || s.Linux == nil || s.Linux.Seccomp == nil || s.Linux.Seccomp.ListenerPath == "" {
		return errors.New("seccomp: unexpected listener fd")
	}
	st := &specs.ContainerProcessState{
		Version: specs.Version, Pid: c.rec.Pid, Metadata: s.Linux.Seccomp.ListenerMetadata,
		State: *c.hookState(StatusCreated),
	}
	if err := seccomp.SendListener(s.Linux.Seccomp.ListenerPath, st, fds[0]); err != nil {
		return fmt.Errorf("seccomp listener: %w", err)
	}
	return nil
}

// newContainerDir makes <root>/<id> with its lock; it fails if the id is
// taken.
func (r *Runtime) newContainerDir(id string, s *specs.Spec) (*Container, error) {
	dir := filepath.Join(r.Root, id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, errdefs.AlreadyExists("container %q already exists", id)
		}
		return nil, fmt.Errorf("make container dir: %w", err)
	}
	fd, err := unix.Open(filepath.Join(dir, lockFile), unix.O_CREAT|unix.O_RDONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		err = unix.Flock(fd, unix.LOCK_EX)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("lock new container: %w", err)
	}
	return &Container{rt: r, dir: dir, lockFd: fd, spec: s}, nil
}

// openTree returns a detached recursive bind mount of dir.
func openTree(dir string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("open root filesystem tree %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), "rootfs"), nil
}

func makeFifo(dir string) (*os.File, error) {
	path := filepath.Join(dir, fifoFile)
	if err := unix.Mkfifo(path, 0o622); err != nil {
		return nil, fmt.Errorf("make exec fifo: %w", err)
	}
	// Past the umask: init may write it as any user, even an unprivileged
	// host uid that is root in a user namespace.
	if err := os.Chmod(path, 0o622); err != nil {
		return nil, fmt.Errorf("make exec fifo: %w", err)
	}
	// init reopens it for writing through /proc/self/fd, which works after
	// pivot_root when the host path no longer resolves.
	f, err := os.OpenFile(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	return f, nil
}

// consoleChannel returns the socket init sends the terminal master on:
// a connection to --console-socket, or, without one, one end of a
// socketpair whose other end we keep (run in the foreground).
func consoleChannel(socket string) (child, ours *os.File, err error) {
	if socket != "" {
		conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socket, Net: "unix"})
		if err != nil {
			return nil, nil, fmt.Errorf("connect to console socket: %w", err)
		}
		defer conn.Close()
		f, err := conn.File()
		if err != nil {
			return nil, nil, fmt.Errorf("console socket fd: %w", err)
		}
		return f, nil, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[1]), "console-child"), os.NewFile(uintptr(fds[0]), "console"), nil
}

func cgroupsPath(s *specs.Spec) string {
	if s.Linux == nil {
		return ""
	}
	return s.Linux.CgroupsPath
}

func resources(s *specs.Spec) *specs.LinuxResources {
	if s.Linux == nil {
		return nil
	}
	return s.Linux.Resources
}

func killWait(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_, _ = cmd.Process.Wait()
}

func closeFds(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("pid file path: %w", err)
	}
	if err := writeFileAtomic(abs, []byte(strconv.Itoa(pid))); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

func owner() string {
	return strconv.Itoa(os.Geteuid())
}
