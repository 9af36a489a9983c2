// Package rootfs builds a container's root filesystem from inside its init
// process: the spec's mounts, /dev, the switch to the new root, and the
// masked and read-only paths applied inside it.
//
// Everything here runs in the container's fresh mount namespace, on a
// locked OS thread, before the user's program is executed. Setup runs while
// the host's filesystem is still visible; Finalize and MountConsole run
// after the switch, inside the new root. Mount destinations come from an
// untrusted image, so every one is resolved inside the root filesystem
// and mounted through a handle, never through a joined path.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options says how to build a container's root filesystem.
type Options struct {
	// Spec is the container's configuration: mounts, devices, propagation.
	Spec *specs.Spec
	// Rootfs is the absolute host path of the root filesystem, or a
	// /proc/self/fd/N link to it: an O_PATH directory handle, or a detached
	// mount made by open_tree(2) with OPEN_TREE_CLONE, for a user
	// namespace root that cannot walk the host path.
	Rootfs string
	// Bundle is the bundle directory; relative bind sources resolve
	// against it.
	Bundle string
	// NoPivot moves the root onto / and chroots instead of pivot_root,
	// for roots pivot_root cannot take (a ramfs root).
	NoPivot bool
	// CgroupPaths maps each controller to the container's cgroup directory
	// on the host ("" is the unified hierarchy); mounts of type "cgroup"
	// bind these when there is no cgroup namespace.
	CgroupPaths map[string]string
	// CgroupNS says the container has its own cgroup namespace, so cgroup
	// filesystems can be mounted rather than bound.
	CgroupNS bool
	// UserNS says the init process is inside a user namespace, where
	// device nodes cannot be made and are bound from the host instead.
	UserNS bool
	// BeforePivot runs once every mount and device is made, before the
	// root changes (the createContainer hooks); it may be nil.
	BeforePivot func() error
}

// Setup builds the root filesystem and makes it the process's root: it
// sets the propagation of /, makes the rootfs a mount point, makes every
// spec mount in order, fills /dev, runs BeforePivot, then switches root
// and leaves the working directory at the new /.
//
// Rootfs may also be a /proc/self/fd/N link: a user namespace's root may be
// unable to walk the host path to its rootfs (a bundle under a private
// directory) but can still use a handle made for it before. A handle to a
// plain directory only works in the mount namespace it was opened in; one
// to a detached mount tree works anywhere.
func Setup(o Options) error {
	if o.Spec == nil {
		return errors.New("rootfs setup: no spec")
	}
	prop, err := RootPropagation(o.Spec)
	if err != nil {
		return err
	}
	if prop&(unix.MS_SHARED|unix.MS_UNBINDABLE) != 0 {
		// Shared now would send every mount below to the host's peers,
		// and unbindable forbids the rootfs bind itself; Finalize applies
		// either to the new root once it stands alone.
		prop = unix.MS_SLAVE | unix.MS_REC
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	if err := privateParent(hostPath(o.Rootfs)); err != nil {
		return err
	}
	root, err := bindRoot(o.Rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := makeMounts(o, root); err != nil {
		return err
	}
	if o.BeforePivot != nil {
		if err := o.BeforePivot(); err != nil {
			return err
		}
	}
	if o.NoPivot {
		return moveRoot(root, prop&unix.MS_SHARED == 0)
	}
	return pivotRoot(root)
}

// isFdLink reports whether p names an open file of this process or thread.
func isFdLink(p string) bool {
	return strings.HasPrefix(p, "/proc/self/fd/") || strings.HasPrefix(p, "/proc/thread-self/fd/")
}

// hostPath is rootfs as the host's mount table names it. A path the
// process cannot walk is taken as it is: only the mount table is searched
// for it.
func hostPath(rootfs string) string {
	if isFdLink(rootfs) {
		if real, err := os.Readlink(rootfs); err == nil {
			return real
		}
	}
	if real, err := filepath.EvalSymlinks(rootfs); err == nil {
		return real
	}
	return filepath.Clean(rootfs)
}

// bindRoot makes rootfs a mount point of its own, which pivot_root needs,
// by binding it (recursively) onto itself, and returns a handle to the new
// mount's root. The bind is made detached and then attached, so the handle
// is the new mount itself, found without walking the path again.
func bindRoot(rootfs string) (*os.File, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, rootfs, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if errors.Is(err, unix.ENOSYS) {
		return bindRootClassic(rootfs)
	}
	if errors.Is(err, unix.EINVAL) && isFdLink(rootfs) {
		return attachDetached(rootfs)
	}
	if err != nil {
		return nil, fmt.Errorf("bind rootfs onto itself: %w", err)
	}
	f := os.NewFile(uintptr(tree), "rootfs")
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		f.Close()
		return nil, fmt.Errorf("bind rootfs onto itself: %w", err)
	}
	return f, nil
}

// attachDetached takes a rootfs handed over as a detached mount (made by
// open_tree(2) with OPEN_TREE_CLONE before the mount namespace was
// created, since a handle to a mount of another namespace cannot be bound).
// It is attached on top of /, where only the handle reaches it: lookups
// of host paths still start at the old root below it.
func attachDetached(rootfs string) (*os.File, error) {
	f, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	if err := unix.MoveMount(int(f.Fd()), "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		f.Close()
		return nil, fmt.Errorf("attach rootfs: %w", err)
	}
	return f, nil
}

// bindRootClassic is bindRoot for kernels without open_tree(2).
func bindRootClassic(rootfs string) (*os.File, error) {
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("bind rootfs onto itself: %w", err)
	}
	f, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	return f, nil
}

// privateParent makes the mount holding rootfs private when it is shared:
// pivot_root refuses a new root whose parent mount is shared, which it is
// when rootfsPropagation asked for shared.
func privateParent(rootfs string) error {
	infos, err := mountinfo.GetMounts(mountinfo.ParentsFilter(rootfs))
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	var parent *mountinfo.Info
	for _, in := range infos {
		if parent == nil || len(in.Mountpoint) >= len(parent.Mountpoint) {
			parent = in
		}
	}
	if parent == nil || !strings.Contains(parent.Optional, "shared:") {
		return nil
	}
	if err := unix.Mount("", parent.Mountpoint, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", parent.Mountpoint, err)
	}
	return nil
}

// makeMounts makes the spec's mounts and /dev inside root.
func makeMounts(o Options, root *os.File) error {
	real, err := os.Readlink(fdPath(root))
	if err != nil {
		return fmt.Errorf("rootfs path: %w", err)
	}
	mt := &mounter{rootPath: real, root: root, opts: o}
	for _, m := range o.Spec.Mounts {
		if err := mt.mountSpec(m); err != nil {
			return fmt.Errorf("mount %s: %w", m.Destination, err)
		}
	}
	if bindsDev(o.Spec.Mounts) {
		return nil
	}
	return mt.makeDev()
}

// pivotRoot makes root the root with pivot_root(".", "."): the old root
// ends up stacked under the new one, where it is detached. It is made a
// slave first so that detaching it does not unmount anything on the host.
func pivotRoot(root *os.File) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return fmt.Errorf("enter new root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("enter old root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	return nil
}

// moveRoot moves the rootfs mount onto / and chroots into it, for roots
// pivot_root cannot take. Unless / shares its mounts with the host (when
// an unmount would travel there), host mounts outside the rootfs are
// detached first, so the chroot has less to escape to.
func moveRoot(root *os.File, detach bool) error {
	if detach {
		real, err := os.Readlink(fdPath(root))
		if err != nil {
			return fmt.Errorf("rootfs path: %w", err)
		}
		detachOutside(real)
	}
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return fmt.Errorf("enter new root: %w", err)
	}
	// "." is the root of the rootfs mount, which is what MS_MOVE takes.
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move root onto /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	return nil
}

// detachOutside lazily unmounts, in this mount namespace only, every mount
// that is neither the rootfs, inside it, nor on the way to it. Failures are
// ignored: this only narrows what a chroot escape could reach.
func detachOutside(rootfs string) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return
	}
	for i := len(infos) - 1; i >= 0; i-- {
		mp := infos[i].Mountpoint
		if keepForMove(rootfs, mp) {
			continue
		}
		_ = unix.Unmount(mp, unix.MNT_DETACH)
	}
}

// keepForMove reports whether the mount at mp must stay for moveRoot: it
// is an ancestor of rootfs, rootfs itself, or below it.
func keepForMove(rootfs, mp string) bool {
	if mp == "/" || mp == rootfs || strings.HasPrefix(mp, rootfs+"/") {
		return true
	}
	return strings.HasPrefix(rootfs, mp+"/")
}
