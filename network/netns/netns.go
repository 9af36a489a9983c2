// Package netns makes, enters and removes persistent network namespaces:
// a namespace kept alive by a bind mount of its nsfs file onto a path, so
// it outlives the process that made it and a runtime can join it by path.
//
// Go runs goroutines on any OS thread, and a network namespace belongs to
// a thread. Every switch here therefore happens on a goroutine locked to
// its thread, and that thread goes back to the scheduler only after it
// has been moved back to its original namespace and checked; when that
// cannot be done the goroutine exits still locked, and the runtime ends
// the thread instead of reusing it.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
)

// threadNetNS is the namespace file of the calling thread; the caller must
// have locked it.
func threadNetNS() string {
	return fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
}

// isNetNSFile reports whether fd is an nsfs file of a network namespace,
// which is what a path holding a namespace mount opens to.
func isNetNSFile(fd int) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return false, err
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// isMounted reports whether path holds a namespace mount.
func isMounted(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// Create makes a new network namespace and binds it at path, with its
// loopback interface up. The parent directory is created (0700) when
// missing; a path that already holds a namespace is a conflict.
func Create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	switch mounted, err := isMounted(path); {
	case err == nil && mounted:
		return errdefs.AlreadyExists("create network namespace %s: a namespace is already mounted there", path)
	case err != nil && !errors.Is(err, unix.ENOENT):
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	// The mount point: an empty file. A leftover one from a crash is
	// reused as it is.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	f.Close()

	if err := onLockedThread(func() error { return unshareAndBind(path) }); err != nil {
		os.Remove(path)
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	return nil
}

// unshareAndBind runs on a locked thread that returns to its namespace
// afterwards (see onLockedThread).
func unshareAndBind(path string) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount(threadNetNS(), path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	if err := loopbackUp(); err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH) // the error above is the one to report
		return err
	}
	return nil
}

// loopbackUp sets IFF_UP on lo of the calling thread's namespace with one
// ioctl: cheaper than opening a netlink socket for it.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// onLockedThread runs fn on a new goroutine locked to its thread, then
// puts the thread back into the network namespace it started in. The
// thread is handed back to the scheduler only when that is verified;
// otherwise the goroutine exits locked, which ends the thread.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(threadNetNS())
		if err != nil {
			errc <- fmt.Errorf("open current network namespace: %w", err)
			runtime.UnlockOSThread() // nothing changed yet
			return
		}
		defer orig.Close()
		var origSt unix.Stat_t
		if err := unix.Fstat(int(orig.Fd()), &origSt); err != nil {
			errc <- fmt.Errorf("stat current network namespace: %w", err)
			runtime.UnlockOSThread()
			return
		}
		ferr := fn()
		if restore(int(orig.Fd()), origSt) {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// restore moves the calling thread back into the namespace orig and
// checks it got there.
func restore(orig int, want unix.Stat_t) bool {
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(threadNetNS(), &st); err != nil {
		return false
	}
	return st.Dev == want.Dev && st.Ino == want.Ino
}

// Do runs fn on a thread inside the network namespace bound at path. Only
// fn's own goroutine is inside: goroutines it starts are not. Sockets fn
// opens stay in the namespace after it returns, and processes it starts
// (exec.Cmd.Start) are born in it.
func Do(path string, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errdefs.NotFound("network namespace %s does not exist", path)
		}
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	defer f.Close()
	if ok, err := isNetNSFile(int(f.Fd())); err != nil || !ok {
		if err == nil {
			return errdefs.Invalid("enter network namespace %s: not a network namespace", path)
		}
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	return onLockedThread(func() error {
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", path, err)
		}
		return fn()
	})
}

// Remove unmounts the namespace bound at path and deletes the file. A path
// that is gone, or a file that is no longer a mount (a crash between the
// two steps), is not an error.
func Remove(path string) error {
	// Several mounts may be stacked on one path by racing creators; take
	// them all, a bounded number of times.
	for range 16 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		return fmt.Errorf("remove network namespace %s: unmount: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}

// List returns the paths of the entries of dir, sorted, so a reconciler
// can remove those its store does not know. A missing dir holds none.
func List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list network namespaces in %s: %w", dir, err)
	}
	paths := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		paths = append(paths, filepath.Join(dir, e.Name()))
	}
	sort.Strings(paths)
	return paths, nil
}
