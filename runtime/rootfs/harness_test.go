package rootfs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/testutil"
)

// The tests that mount run in a child process: the test binary executed
// again in a new mount namespace (and more namespaces when a test needs
// them). The child builds the root filesystem, looks around inside it with
// the probes it was given, and prints what it saw as JSON; the parent
// asserts on that. Nothing the child mounts can reach the host, and the
// parent checks the host's mount table is unchanged afterwards.

const childEnv = "BERTH_ROOTFS_TEST_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(childMain(cfg))
	}
	os.Exit(m.Run())
}

// probe is one look the child takes once the root is built.
type probe struct {
	Op   string // mount, mounts, stat, read, write, readlink, ls, cwd, console
	Path string
}

type probeResult struct {
	Out string
	Err string
}

type childConfig struct {
	Spec         *specs.Spec
	Rootfs       string
	Bundle       string
	NoPivot      bool
	UserNS       bool
	CgroupNS     bool
	CgroupPaths  map[string]string
	SkipFinalize bool
	Probes       []probe
}

type childReport struct {
	SetupErr      string
	FinalizeErr   string
	BeforePivotOK bool
	Results       []probeResult
}

func childMain(data string) int {
	runtime.LockOSThread()
	var cfg childConfig
	if err := json.Unmarshal([]byte(data), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	// A safety net under the code being tested: whatever it does, mounts
	// made here must not propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		fmt.Fprintln(os.Stderr, "child: make / a slave:", err)
		return 2
	}
	var rep childReport
	err := Setup(Options{
		Spec: cfg.Spec, Rootfs: cfg.Rootfs, Bundle: cfg.Bundle, NoPivot: cfg.NoPivot,
		CgroupPaths: cfg.CgroupPaths, CgroupNS: cfg.CgroupNS, UserNS: cfg.UserNS,
		BeforePivot: func() error { rep.BeforePivotOK = true; return nil },
	})
	if err != nil {
		rep.SetupErr = err.Error()
	} else if !cfg.SkipFinalize {
		if err := Finalize(cfg.Spec); err != nil {
			rep.FinalizeErr = err.Error()
		}
	}
	if rep.SetupErr == "" && rep.FinalizeErr == "" {
		for _, p := range cfg.Probes {
			rep.Results = append(rep.Results, runProbe(p))
		}
	}
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
	return 0
}

func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

func runProbe(p probe) probeResult {
	out, err := probeOut(p)
	if err != nil {
		return probeResult{Out: out, Err: errText(err)}
	}
	return probeResult{Out: out}
}

func probeOut(p probe) (string, error) {
	switch p.Op {
	case "mount":
		infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(p.Path))
		if err != nil {
			return "", err
		}
		if len(infos) == 0 {
			return "", errors.New("not a mount")
		}
		in := infos[len(infos)-1]
		return fmt.Sprintf("fstype=%s opts=%s super=%s optional=%s root=%s", in.FSType, in.Options, in.VFSOptions, in.Optional, in.Root), nil
	case "mounts":
		infos, err := mountinfo.GetMounts(nil)
		if err != nil {
			return "", err
		}
		var mps []string
		for _, in := range infos {
			mps = append(mps, in.Mountpoint)
		}
		return strings.Join(mps, "\n"), nil
	case "stat":
		var st unix.Stat_t
		if err := unix.Lstat(p.Path, &st); err != nil {
			return "", err
		}
		return fmt.Sprintf("type=%s perm=%o major=%d minor=%d uid=%d gid=%d", fileType(st.Mode), st.Mode&0o7777,
			unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Uid, st.Gid), nil
	case "read":
		b, err := os.ReadFile(p.Path)
		return string(b), err
	case "write":
		return "", os.WriteFile(p.Path, []byte("x"), 0o644)
	case "readlink":
		return os.Readlink(p.Path)
	case "ls":
		ents, err := os.ReadDir(p.Path)
		if err != nil {
			return "", err
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		return strings.Join(names, " "), nil
	case "cwd":
		return os.Getwd()
	case "console":
		return probeConsole()
	}
	return "", fmt.Errorf("unknown probe %q", p.Op)
}

// probeConsole opens a new terminal on the container's devpts and binds
// it as the console, the way the runtime does for a terminal container.
func probeConsole() (string, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return "", err
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return "", err
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return "", err
	}
	slave := fmt.Sprintf("/dev/pts/%d", n)
	if err := MountConsole(slave); err != nil {
		return "", err
	}
	var a, b unix.Stat_t
	if err := unix.Stat(slave, &a); err != nil {
		return "", err
	}
	if err := unix.Stat("/dev/console", &b); err != nil {
		return "", err
	}
	return fmt.Sprintf("same=%v", a.Rdev == b.Rdev && a.Ino == b.Ino), nil
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return "c"
	case unix.S_IFBLK:
		return "b"
	case unix.S_IFIFO:
		return "p"
	case unix.S_IFDIR:
		return "d"
	case unix.S_IFLNK:
		return "l"
	case unix.S_IFREG:
		return "f"
	}
	return "?"
}

// childOpts says how the child is cloned.
type childOpts struct {
	Cloneflags uintptr // beyond CLONE_NEWNS
	FullUserNS bool    // map every id 1:1 into a new user namespace
	// MappedRoot, when set, puts the child in a new user namespace whose
	// root is this host id (65536 ids from there).
	MappedRoot int
	ExtraFiles []*os.File // become fds 3, 4, ... in the child
}

// hostMounts is the host's mount table in a form to compare.
func hostMounts(t *testing.T) []string {
	t.Helper()
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		t.Fatalf("read host mountinfo: %v", err)
	}
	var out []string
	for _, in := range infos {
		out = append(out, fmt.Sprintf("%d %s %s %s %s", in.ID, in.Mountpoint, in.FSType, in.Options, in.Optional))
	}
	return out
}

// runChild builds the root in a child process and returns its report. It
// fails the test when the host's mount table differs afterwards.
func runChild(t *testing.T, cfg childConfig, co childOpts) childReport {
	t.Helper()
	before := hostMounts(t)
	t.Cleanup(func() {
		after := hostMounts(t)
		if !slices.Equal(before, after) {
			t.Errorf("host mounts changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
	})
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("encode child config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// /proc/self/exe rather than the binary's path: a child whose root is
	// mapped to an unprivileged host id may not be able to walk to it.
	cmd := exec.CommandContext(ctx, "/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(data))
	cmd.ExtraFiles = co.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS | co.Cloneflags, Pdeathsig: syscall.SIGKILL}
	if co.FullUserNS {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1<<32 - 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1<<32 - 1}}
	}
	if co.MappedRoot != 0 {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: co.MappedRoot, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: co.MappedRoot, Size: 65536}}
		// Become the namespace's root before exec, or exec drops every
		// capability: our host uid 0 has no mapping in there.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep childReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("child report: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return rep
}

// mustRun runs the child and fails unless Setup and Finalize succeeded and
// every probe ran; it returns the probe results in order.
func mustRun(t *testing.T, cfg childConfig, co childOpts) []probeResult {
	t.Helper()
	rep := runChild(t, cfg, co)
	if rep.SetupErr != "" {
		t.Fatalf("setup: %s", rep.SetupErr)
	}
	if rep.FinalizeErr != "" {
		t.Fatalf("finalize: %s", rep.FinalizeErr)
	}
	if !rep.BeforePivotOK {
		t.Errorf("BeforePivot was not called")
	}
	if len(rep.Results) != len(cfg.Probes) {
		t.Fatalf("got %d probe results for %d probes", len(rep.Results), len(cfg.Probes))
	}
	return rep.Results
}

// newBundle makes a bundle with a busybox rootfs and a default spec.
func newBundle(t *testing.T) (bundle, rootfs string, s *specs.Spec) {
	t.Helper()
	testutil.RequiresRoot(t)
	bundle = t.TempDir()
	rootfs = testutil.BusyboxRootfs(t, filepath.Join(bundle, "rootfs"))
	return bundle, rootfs, testutil.DefaultSpec()
}

// expectOK fails when a probe failed or its output lacks any of want.
func expectOK(t *testing.T, what string, r probeResult, want ...string) {
	t.Helper()
	if r.Err != "" {
		t.Errorf("%s: unexpected error %s (out %q)", what, r.Err, r.Out)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.Out, w) {
			t.Errorf("%s: %q does not contain %q", what, r.Out, w)
		}
	}
}

// expectErr fails unless a probe failed with err.
func expectErr(t *testing.T, what string, r probeResult, err string) {
	t.Helper()
	if r.Err != err {
		t.Errorf("%s: error %q, want %q (out %q)", what, r.Err, err, r.Out)
	}
}
