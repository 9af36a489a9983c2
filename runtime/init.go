package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/runtime/cinit"
	"github.com/berth-containers/berth/runtime/hooks"
	"github.com/berth-containers/berth/runtime/rootfs"
)

// initConfig is everything init needs, sent in the bootstrap message.
type initConfig struct {
	ID           string            `json:"id"`
	Spec         *specs.Spec       `json:"spec,omitempty"`
	Process      *specs.Process    `json:"process"`
	Bundle       string            `json:"bundle,omitempty"`
	Rootfs       string            `json:"rootfs,omitempty"`
	NoPivot      bool              `json:"noPivot,omitempty"`
	NoNewKeyring bool              `json:"noNewKeyring,omitempty"`
	UseFifo      bool              `json:"useFifo,omitempty"`
	FifoFd       int               `json:"fifoFd,omitempty"`
	ConsoleFd    int               `json:"consoleFd,omitempty"`
	PreserveFds  int               `json:"preserveFds,omitempty"`
	CgroupPaths  map[string]string `json:"cgroupPaths,omitempty"`
	NewCgroupNS  bool              `json:"newCgroupNS,omitempty"`
	NewTimeNS    bool              `json:"newTimeNS,omitempty"`
	UserNS       bool              `json:"userNS,omitempty"`
	InitPid      int               `json:"initPid"`
	// Exec marks a process joining a running container.
	Exec bool `json:"exec,omitempty"`
	// SeccompFilter is the process's seccomp program, compiled by the
	// parent (see seccomp.CompileCached) so that init, which runs on every
	// start, never pays for libseccomp; nil: no filter. Spec carries no
	// seccomp section.
	SeccompFilter []byte `json:"seccompFilter,omitempty"`
}

// IsInit reports whether this process was started as a container's init.
//
// A C init (runtime/cinit) that hands over to the Go init leaves its own
// variable: the constructor cannot change the environment Go reads.
func IsInit() bool { return initSyncFd() != "" }

func initSyncFd() string {
	if v := os.Getenv(envInit); v != "" {
		return v
	}
	return os.Getenv(cinit.EnvSync)
}

// Init is the whole life of a container's init process: it receives its
// configuration, builds the container and execs the user's program. It
// returns only on failure, with the exit code to use.
func Init() int {
	// Namespace changes, capabilities, seccomp and personality are
	// per-thread: everything happens on this one thread, which execs.
	goruntime.LockOSThread()
	fd, err := strconv.Atoi(initSyncFd())
	// Nothing of ours may reach the container's program or its hooks.
	os.Clearenv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: bad sync fd")
		return 1
	}
	// Not dumpable: container processes must not ptrace us or open our
	// /proc files while we still hold host resources.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	sc := &syncConn{f: os.NewFile(uintptr(fd), "sync")}
	m, err := sc.expect(msgBootstrap)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init:", err)
		return 1
	}
	cfg := m.Init
	if cfg.Exec {
		err = initExec(sc, cfg)
	} else {
		err = initContainer(sc, cfg)
	}
	// Only failures get here. After ready the parent may be gone (create
	// returned): then the program's stderr is the only place left.
	if sc.send(message{Type: msgError, Error: err.Error()}) != nil {
		fmt.Fprintln(os.Stderr, "berth init:", err)
	}
	return 1
}

func initContainer(sc *syncConn, cfg *initConfig) error {
	s := cfg.Spec
	if cfg.ConsoleFd == 0 {
		// A terminal's setup makes its own session; otherwise we still
		// leave the caller's, so its terminal's signals stay with it.
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	if cfg.NewCgroupNS {
		// Only now, inside the container's cgroup, so that it becomes the
		// namespace's root.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("new cgroup namespace: %w", err)
		}
	}
	if cfg.NewTimeNS {
		if err := newTimeNamespace(s.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	err := rootfs.Setup(rootfs.Options{
		Spec: s, Rootfs: cfg.Rootfs, Bundle: cfg.Bundle, NoPivot: cfg.NoPivot,
		CgroupPaths: cfg.CgroupPaths, CgroupNS: hasNS(s, specs.CgroupNamespace), UserNS: cfg.UserNS,
		BeforePivot: func() error { return beforePivot(sc, cfg) },
	})
	if err != nil {
		return err
	}
	if cfg.ConsoleFd > 0 {
		if err := setupConsole(cfg, true); err != nil {
			return err
		}
	}
	if err := setNames(s); err != nil {
		return err
	}
	if err := writeSysctls(s); err != nil {
		return err
	}
	if err := rootfs.Finalize(s); err != nil {
		return err
	}
	if err := checkLSM(cfg.Process); err != nil {
		return err
	}
	if !cfg.NoNewKeyring {
		if err := joinKeyring(cfg.ID); err != nil {
			return err
		}
	}
	return finishProcess(sc, cfg)
}

// beforePivot runs once every mount is made: the parent runs prestart and
// createRuntime hooks, then we run createContainer hooks here, in the
// container's namespaces but before pivot_root, as the spec says.
func beforePivot(sc *syncConn, cfg *initConfig) error {
	h := cfg.Spec.Hooks
	//nolint:staticcheck // prestart is deprecated but still used by tools.
	if h == nil || (len(h.Prestart) == 0 && len(h.CreateRuntime) == 0 && len(h.CreateContainer) == 0) {
		return nil
	}
	if err := sc.send(message{Type: msgHooks}); err != nil {
		return err
	}
	if _, err := sc.expect(msgHooksDone); err != nil {
		return err
	}
	return hooks.Run(context.Background(), h.CreateContainer, initHookState(cfg, StatusCreated))
}

func initHookState(cfg *initConfig, status string) *specs.State {
	var ann map[string]string
	if cfg.Spec != nil {
		ann = cfg.Spec.Annotations
	}
	return &specs.State{
		Version: specs.Version, ID: cfg.ID, Status: specs.ContainerState(status),
		Pid: cfg.InitPid, Bundle: cfg.Bundle, Annotations: ann,
	}
}

// finishProcess is shared by create and exec: process attributes, dropping
// privileges, seccomp, the wait for start, and execve.
func finishProcess(sc *syncConn, cfg *initConfig) error {
	p := cfg.Process
	path, err := lookPath(p)
	if err != nil {
		return err
	}
	filter, err := decodeSeccomp(cfg.SeccompFilter)
	if err != nil {
		return err
	}
	if filter != nil {
		defer filter.Release()
	}
	warnings, err := setProcessAttrs(p)
	if err != nil {
		return err
	}
	if err := prepareCwd(p.Cwd); err != nil {
		return err
	}
	// Before seccomp: a profile may not know close_range.
	if err := markFdsCloexec(3 + cfg.PreserveFds); err != nil {
		return err
	}
	capWarnings, err := dropPrivileges(sc, p, filter)
	if err != nil {
		return err
	}
	warnings = append(warnings, capWarnings...)
	if err := sc.send(message{Type: msgReady, Warnings: warnings}); err != nil {
		return err
	}
	if err := waitStart(sc, cfg); err != nil {
		return err
	}
	if !cfg.Exec && cfg.Spec.Hooks != nil {
		if err := hooks.Run(context.Background(), cfg.Spec.Hooks.StartContainer, initHookState(cfg, StatusCreated)); err != nil {
			return fmt.Errorf("startContainer hook: %w", err)
		}
	}
	if err := setPersonality(cfg); err != nil {
		return err
	}
	err = unix.Exec(path, p.Args, p.Env)
	return fmt.Errorf("exec %s: %w", p.Args[0], err)
}

// waitStart blocks on exec.fifo until `start` for create. run and exec
// start at once: their parent only waits for the exec (the sync socket
// closing), which saves a round trip on every start.
func waitStart(sc *syncConn, cfg *initConfig) error {
	if !cfg.UseFifo {
		return nil
	}
	sc.f.Close()
	fifo, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(cfg.FifoFd), os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := fifo.Write([]byte("0")); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	// The write end stays open (close-on-exec): `start` waits for it to
	// close, so that poststart hooks run after the user's program is
	// exec'd, as the spec orders, not alongside startContainer hooks.
	return unix.Close(cfg.FifoFd)
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

var errNoUTS = errors.New("hostname and domainname need a new uts namespace")

func setNames(s *specs.Spec) error {
	if s.Hostname == "" && s.Domainname == "" {
		return nil
	}
	if !hasNS(s, specs.UTSNamespace) {
		return errNoUTS
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("set domainname: %w", err)
		}
	}
	return nil
}
