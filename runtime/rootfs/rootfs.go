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
	// Rootfs is the absolute host path of the root filesystem.
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
func Setup(o Options) error {
	if o.Spec == nil {
		return errors.New("rootfs setup: no spec")
	}
	rootfs, err := filepath.EvalSymlinks(o.Rootfs)
	if err != nil {
		return fmt.Errorf("resolve rootfs: %w", err)
	}
	if err := prepareRoot(o.Spec, rootfs); err != nil {
		return err
	}
	if err := makeMounts(o, rootfs); err != nil {
		return err
	}
	if o.BeforePivot != nil {
		if err := o.BeforePivot(); err != nil {
			return err
		}
	}
	if o.NoPivot {
		prop, _ := RootPropagation(o.Spec)
		return moveRoot(rootfs, prop&unix.MS_SHARED == 0)
	}
	return pivotRoot(rootfs)
}

// prepareRoot cuts propagation to the host and turns rootfs into a mount
// point of its own, which pivot_root needs.
func prepareRoot(s *specs.Spec, rootfs string) error {
	prop, err := RootPropagation(s)
	if err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	if err := privateParent(rootfs); err != nil {
		return err
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs onto itself: %w", err)
	}
	return nil
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

// makeMounts makes the spec's mounts and /dev inside rootfs.
func makeMounts(o Options, rootfs string) error {
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()
	mt := &mounter{rootPath: rootfs, root: root, opts: o}
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

// pivotRoot makes rootfs the root with pivot_root(".", "."): the old root
// ends up stacked under the new one, where it is detached. It is made a
// slave first so that detaching it does not unmount anything on the host.
func pivotRoot(rootfs string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root: %w", err)
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
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
func moveRoot(rootfs string, detach bool) error {
	if detach {
		detachOutside(rootfs)
	}
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("enter new root: %w", err)
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
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
