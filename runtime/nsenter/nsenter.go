// Package nsenter lets a re-executed berth start inside existing
// namespaces, as `exec` into a running container needs.
//
// Go is multi-threaded before main runs, and the kernel lets only a
// single-threaded process join a user, mount or time namespace. So the
// package holds a small C constructor (built with cgo) that runs before the
// Go runtime starts. Importing the package for its side effect installs it:
//
//	import _ "github.com/berth-containers/berth/runtime/nsenter"
//
// The constructor does nothing unless _BERTH_NSENTER is set (Env builds
// it): a comma-separated list of type:path, types user, ipc, uts, net, pid,
// mnt, cgroup and time, paths such as /proc/123/ns/net (no commas in
// paths). It opens every path first, then joins user, ipc, uts, net, pid,
// cgroup, time and mnt in that order, and removes _BERTH_NSENTER from the
// environment. On failure it writes one line, "berth: join <type>
// namespace <path>: <error>", to the fd named by _BERTH_NSENTER_ERRFD (else
// stderr) and exits with status 1.
//
// The pid namespace is different: joining one moves only the children of
// the caller, and once a process's children would be born in another pid
// namespace than its own the kernel refuses it new threads, which the Go
// runtime needs. So the caller starts the re-executed berth from a thread
// that has joined the pid namespace (OnThreadIn), making it be born there;
// a pid entry in _BERTH_NSENTER only checks that this happened (EINVAL if
// not). Namespaces that allow a multi-threaded caller (pid, net, ipc, uts,
// cgroup) may all be joined that way instead of by the constructor.
package nsenter

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrFdEnv is the environment variable naming the fd on which the
// constructor reports a failure (stderr when unset).
const ErrFdEnv = "_BERTH_NSENTER_ERRFD"

const (
	// envVar lists the namespaces the constructor joins.
	envVar = "_BERTH_NSENTER"
)

// order is the join order of the constructor, with each type's name in
// _BERTH_NSENTER and its clone flag.
var order = []struct {
	typ  specs.LinuxNamespaceType
	name string
	flag int
}{
	{specs.UserNamespace, "user", unix.CLONE_NEWUSER},
	{specs.IPCNamespace, "ipc", unix.CLONE_NEWIPC},
	{specs.UTSNamespace, "uts", unix.CLONE_NEWUTS},
	{specs.NetworkNamespace, "net", unix.CLONE_NEWNET},
	{specs.PIDNamespace, "pid", unix.CLONE_NEWPID},
	{specs.CgroupNamespace, "cgroup", unix.CLONE_NEWCGROUP},
	{specs.TimeNamespace, "time", unix.CLONE_NEWTIME},
	{specs.MountNamespace, "mnt", unix.CLONE_NEWNS},
}

// threadJoinable are the namespaces one thread of a multi-threaded process
// may join.
var threadJoinable = []specs.LinuxNamespaceType{
	specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
	specs.UTSNamespace, specs.CgroupNamespace,
}

// Env returns the environment entry that makes a re-executed berth join
// these namespaces, for example "_BERTH_NSENTER=user:/proc/7/ns/user,net:/proc/7/ns/net".
// Entries come in join order; a type the constructor does not know is
// passed on as it is, and the constructor fails on it.
func Env(paths map[specs.LinuxNamespaceType]string) string {
	var items []string
	for _, o := range order {
		if p, ok := paths[o.typ]; ok {
			items = append(items, o.name+":"+p)
		}
	}
	var unknown []string
	for t, p := range paths {
		if flagOf(t) == 0 {
			unknown = append(unknown, string(t)+":"+p)
		}
	}
	slices.Sort(unknown)
	return envVar + "=" + strings.Join(append(items, unknown...), ",")
}

// flagOf returns the clone flag of t, 0 if unknown.
func flagOf(t specs.LinuxNamespaceType) int {
	for _, o := range order {
		if o.typ == t {
			return o.flag
		}
	}
	return 0
}

// join is one namespace for a thread to enter.
type join struct {
	typ  specs.LinuxNamespaceType
	path string
	flag int
}

// threadPlan checks that every namespace in paths can be joined by one
// thread and returns them in join order.
func threadPlan(paths map[specs.LinuxNamespaceType]string) ([]join, error) {
	for t := range paths {
		if !slices.Contains(threadJoinable, t) {
			return nil, fmt.Errorf("join %s namespace: not possible from a thread of a running process", t)
		}
	}
	var plan []join
	for _, o := range order {
		if p, ok := paths[o.typ]; ok {
			plan = append(plan, join{typ: o.typ, path: p, flag: o.flag})
		}
	}
	return plan, nil
}

// OnThreadIn runs fn on a locked OS thread that has first joined the
// namespaces given (only ones that allow a multi-threaded caller: pid, net,
// ipc, uts, cgroup); the thread is discarded afterwards, so no other
// goroutine ever runs in those namespaces. Processes that fn forks (with
// os/exec, from its own goroutine) are born in them; for pid that is the
// only effect, as the thread itself stays in its pid namespace.
//
// The thread ends as soon as fn returns, so a process started in fn must not
// ask for a parent-death signal (SysProcAttr.Pdeathsig): it would get it
// then.
func OnThreadIn(paths map[specs.LinuxNamespaceType]string, fn func() error) error {
	plan, err := threadPlan(paths)
	if err != nil {
		return err
	}
	return onSpareThread(func() error {
		if err := enter(plan); err != nil {
			return err
		}
		return fn()
	})
}

// onSpareThread runs do on a locked OS thread other than the main one, and
// ends that thread afterwards.
func onSpareThread(do func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine returns while locked, the
		// runtime ends the thread instead of reusing it elsewhere.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread is never ended (the runtime parks it) and its
			// namespaces are the ones /proc/self shows. Hold it, so that
			// the nested call cannot land on it, and give it back intact.
			err := onSpareThread(do)
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		errc <- do()
	}()
	return <-errc
}

// enter opens every namespace of plan, then joins them with the calling
// thread.
func enter(plan []join) error {
	fds := make([]int, 0, len(plan))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, j := range plan {
		fd, err := unix.Open(j.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", j.typ, j.path, err)
		}
		fds = append(fds, fd)
	}
	for i, j := range plan {
		if err := unix.Setns(fds[i], j.flag); err != nil {
			return fmt.Errorf("join %s namespace %s: %w", j.typ, j.path, err)
		}
	}
	return nil
}
