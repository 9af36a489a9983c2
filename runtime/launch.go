package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/runtime/cinit"
	"github.com/berth-containers/berth/runtime/nsenter"
)

// Environment variables that turn a re-executed berth into a container's
// init (see cmd/berth) and tell it which fd is the sync socket.
const (
	envInit = "_BERTH_INIT"
)

// launcher starts a re-executed berth as init (or as the setup process of
// exec) in the right namespaces, with the right fds.
type launcher struct {
	cfg                   *initConfig
	stdin, stdout, stderr *os.File
	files                 []*os.File
	cloneFlags            uintptr
	joinThread            map[specs.LinuxNamespaceType]string // joined by the forking thread
	joinEarly             map[specs.LinuxNamespaceType]string // joined by the nsenter constructor
	uidMaps, gidMaps      []syscall.SysProcIDMap
	rootInUserNS          bool
	// cinit starts the init as the C init (runtime/cinit), which takes
	// a plan or hands a Go bootstrap on to the Go init.
	cinit bool
}

// preserve passes the caller's fds 3..3+n-1 on at the same numbers.
func (l *launcher) preserve(n int) error {
	for i := 0; i < n; i++ {
		fd := 3 + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("--preserve-fds: fd %d is not open: %w", fd, err)
		}
		l.files = append(l.files, os.NewFile(uintptr(fd), "preserved-"+strconv.Itoa(fd)))
	}
	l.cfg.PreserveFds = n
	return nil
}

// addFile passes f to the child and returns its fd number there.
func (l *launcher) addFile(f *os.File) int {
	l.files = append(l.files, f)
	return 2 + len(l.files)
}

// threadJoinable namespaces can be entered by one thread of a
// multi-threaded process; a child forked from that thread is born in them.
var threadJoinable = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.IPCNamespace: true,
	specs.UTSNamespace: true, specs.CgroupNamespace: true,
}

var cloneFlag = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace: unix.CLONE_NEWIPC, specs.UTSNamespace: unix.CLONE_NEWUTS,
	specs.MountNamespace: unix.CLONE_NEWNS, specs.UserNamespace: unix.CLONE_NEWUSER,
}

// namespaces works out, for each namespace of the spec, whether the child
// is cloned into a new one, joins one by path, or (cgroup and time) makes
// it itself once it stands in its cgroup.
func (l *launcher) namespaces(s *specs.Spec) error {
	l.joinThread = map[specs.LinuxNamespaceType]string{}
	l.joinEarly = map[specs.LinuxNamespaceType]string{}
	if s.Linux == nil {
		return nil
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" {
			if err := checkNamespacePath(ns); err != nil {
				return err
			}
			if threadJoinable[ns.Type] {
				l.joinThread[ns.Type] = ns.Path
			} else {
				l.joinEarly[ns.Type] = ns.Path
			}
			continue
		}
		switch ns.Type {
		case specs.CgroupNamespace:
			l.cfg.NewCgroupNS = true
		case specs.TimeNamespace:
			l.cfg.NewTimeNS = true
		default:
			l.cloneFlags |= cloneFlag[ns.Type]
		}
	}
	if l.cloneFlags&unix.CLONE_NEWUSER != 0 {
		l.uidMaps = idMaps(s.Linux.UIDMappings)
		l.gidMaps = idMaps(s.Linux.GIDMappings)
		for _, m := range s.Linux.UIDMappings {
			if m.ContainerID == 0 {
				l.rootInUserNS = true
			}
		}
	}
	_, userPath := l.joinEarly[specs.UserNamespace]
	l.cfg.UserNS = l.cloneFlags&unix.CLONE_NEWUSER != 0 || userPath
	return nil
}

// checkNamespacePath makes sure a path given for a namespace is one of
// that type, so a wrong path fails in create with a clear line.
func checkNamespacePath(ns specs.LinuxNamespace) error {
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("namespace %s: open %s: %w", ns.Type, ns.Path, err)
	}
	defer unix.Close(fd)
	want := map[specs.LinuxNamespaceType]int{
		specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
		specs.IPCNamespace: unix.CLONE_NEWIPC, specs.UTSNamespace: unix.CLONE_NEWUTS,
		specs.MountNamespace: unix.CLONE_NEWNS, specs.UserNamespace: unix.CLONE_NEWUSER,
		specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
	}[ns.Type]
	got, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("namespace %s: %s is not a namespace file: %w", ns.Type, ns.Path, err)
	}
	if got != want {
		return fmt.Errorf("namespace %s: %s is a namespace of another type", ns.Type, ns.Path)
	}
	return nil
}

func idMaps(in []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(in))
	for _, m := range in {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

// start re-executes berth from a sealed copy of its binary and returns the
// running child and our end of the sync socket.
func (l *launcher) start() (*exec.Cmd, *syncConn, error) {
	self, err := sealedSelf()
	if err != nil {
		return nil, nil, err
	}
	defer self.Close()
	parent, child, err := newSyncPair()
	if err != nil {
		return nil, nil, err
	}
	defer child.Close()
	syncFd := l.addFile(child)
	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/" + strconv.Itoa(int(self.Fd())),
		Args:       []string{"berth", "init"},
		Env:        l.env(syncFd),
		Stdin:      l.stdin,
		Stdout:     l.stdout,
		Stderr:     l.stderr,
		ExtraFiles: l.files,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:                 l.cloneFlags,
			UidMappings:                l.uidMaps,
			GidMappings:                l.gidMaps,
			GidMappingsEnableSetgroups: true,
		},
	}
	if l.rootInUserNS {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	if err := l.run(cmd); err != nil {
		parent.Close()
		return nil, nil, fmt.Errorf("start container init: %w", err)
	}
	return cmd, &syncConn{f: parent}, nil
}

func (l *launcher) env(syncFd int) []string {
	// One P is plenty for init's sequential work, and each extra thread
	// costs page faults that dominate a container's start.
	name := envInit
	if l.cinit {
		name = cinit.EnvSync
	}
	env := []string{name + "=" + strconv.Itoa(syncFd), "GOMAXPROCS=1"}
	if len(l.joinEarly) > 0 {
		env = append(env, nsenter.Env(l.joinEarly), nsenter.ErrFdEnv+"="+strconv.Itoa(syncFd))
	}
	return env
}

// run starts cmd, from a thread inside the namespaces to join by thread
// when there are any.
func (l *launcher) run(cmd *exec.Cmd) error {
	if len(l.joinThread) == 0 {
		return cmd.Start()
	}
	return nsenter.OnThreadIn(l.joinThread, cmd.Start)
}

// nsProcName is the file name of a namespace type under /proc/<pid>/ns.
func nsProcName(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	default:
		return string(t)
	}
}
