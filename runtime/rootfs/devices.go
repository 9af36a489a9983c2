package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// makeDev fills /dev: the device nodes, the ptmx link into devpts and the
// usual links into /proc.
func (mt *mounter) makeDev() error {
	// Device modes are exact, not filtered through our umask.
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, d := range planDevices(mt.opts.Spec) {
		if err := mt.makeDevice(d); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	dev, err := mt.open("/dev")
	if err != nil {
		return err
	}
	defer dev.Close()
	_, kerr := os.Stat("/proc/kcore")
	for _, l := range devSymlinks(kerr == nil) {
		err := unix.Symlinkat(l[1], int(dev.Fd()), path.Base(l[0]))
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("link %s: %w", l[0], err)
		}
	}
	// An image's own /dev/ptmx would bypass the container's devpts.
	if err := unix.Unlinkat(int(dev.Fd()), "ptmx", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove /dev/ptmx: %w", err)
	}
	if err := unix.Symlinkat("pts/ptmx", int(dev.Fd()), "ptmx"); err != nil {
		return fmt.Errorf("link /dev/ptmx: %w", err)
	}
	return nil
}

// makeDevice makes one node with mknod, or binds the host's node where
// mknod is not allowed (in a user namespace, or where EPERM says so).
func (mt *mounter) makeDevice(d specs.LinuxDevice) error {
	dir, err := mkdirAllIn(mt.root, mt.creatable(path.Dir(d.Path)), 0o755)
	if err != nil {
		return fmt.Errorf("make parent: %w", err)
	}
	defer dir.Close()
	if mt.opts.UserNS {
		return mt.bindDevice(dir, d)
	}
	mode, num, err := deviceMode(d)
	if err != nil {
		return err
	}
	base := path.Base(d.Path)
	err = unix.Mknodat(int(dir.Fd()), base, mode, num)
	if errors.Is(err, unix.EEXIST) {
		// Whatever the image left there gives way to the node asked for.
		if uerr := unix.Unlinkat(int(dir.Fd()), base, 0); uerr != nil {
			return fmt.Errorf("replace existing file: %w", uerr)
		}
		err = unix.Mknodat(int(dir.Fd()), base, mode, num)
	}
	if errors.Is(err, unix.EPERM) {
		return mt.bindDevice(dir, d)
	}
	if err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(int(dir.Fd()), base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}

// bindDevice binds the host's node at the same path onto an empty file.
func (mt *mounter) bindDevice(dir *os.File, d specs.LinuxDevice) error {
	base := path.Base(d.Path)
	// mknod of a regular file creates it without opening whatever might
	// already be there.
	err := unix.Mknodat(int(dir.Fd()), base, unix.S_IFREG|0o600, 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("make bind target: %w", err)
	}
	src, err := os.OpenFile(d.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open host device: %w", err)
	}
	defer src.Close()
	return mt.at(d.Path, func(target string) error {
		if err := unix.Mount(fdPath(src), target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind host device: %w", err)
		}
		return nil
	})
}
