package rootfs

import (
	"errors"
	"fmt"
	"io"
	"os"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxCopyDepth bounds the directory walk of a copy-up.
const maxCopyDepth = 256

// mountTmpCopyUp mounts a tmpfs on dest that starts with a copy of what
// dest held. A handle opened on dest before the mount still reads the
// directory underneath, so the copy needs no staging place on the host.
// The tmpfs is made read-only, when asked, only once the copy is in.
func (mt *mounter) mountTmpCopyUp(m specs.Mount, o MountOptions, dest string) error {
	h, err := mt.newTarget(dest, true, kindFS, m.Type)
	if err != nil {
		return err
	}
	defer h.Close()
	below, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open %s to copy up: %w", dest, err)
	}
	defer below.Close()
	if err := unix.Mount("tmpfs", fdPath(h), "tmpfs", o.Flags&^(unix.MS_RDONLY|unix.MS_REMOUNT), o.Data); err != nil {
		return fmt.Errorf("mount tmpfs: %w", err)
	}
	top, err := mt.open(dest)
	if err != nil {
		return err
	}
	defer top.Close()
	upper, err := pathrs.Reopen(top, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open new tmpfs: %w", err)
	}
	defer upper.Close()
	if err := copyTree(int(below.Fd()), int(upper.Fd()), 0); err != nil {
		return fmt.Errorf("copy up %s: %w", dest, err)
	}
	// The root of the tmpfs takes the covered directory's owner and mode.
	if err := copyAttrs(int(below.Fd()), "", int(upper.Fd()), "", true); err != nil {
		return fmt.Errorf("copy up %s: %w", dest, err)
	}
	if o.Flags&unix.MS_RDONLY == 0 {
		return nil
	}
	return remountBind(fdPath(top), o.Flags&remountFlags, o.Flags)
}

// copyTree copies every entry of directory src into directory dst,
// keeping types, modes, owners and times. Symlinks are copied, not
// followed.
func copyTree(src, dst, depth int) error {
	if depth > maxCopyDepth {
		return errors.New("directory tree too deep")
	}
	// Reading through a duplicate leaves the caller's descriptor to it.
	dup, err := unix.Dup(src)
	if err != nil {
		return fmt.Errorf("dup: %w", err)
	}
	dir := os.NewFile(uintptr(dup), "copy-source")
	defer dir.Close()
	if _, err := dir.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind: %w", err)
	}
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, name := range names {
		if err := copyEntry(src, dst, name, depth); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func copyEntry(src, dst int, name string, depth int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, name, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		s, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		defer unix.Close(s)
		d, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open copy: %w", err)
		}
		defer unix.Close(d)
		if err := copyTree(s, d, depth+1); err != nil {
			return err
		}
	case unix.S_IFREG:
		if err := copyFile(src, dst, name); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := readlinkat(src, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dst, name); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
	default:
		if err := unix.Mknodat(dst, name, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
	}
	return copyAttrs(src, name, dst, name, st.Mode&unix.S_IFMT != unix.S_IFLNK)
}

func copyFile(src, dst int, name string) error {
	in, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	fin := os.NewFile(uintptr(in), name)
	defer fin.Close()
	out, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	fout := os.NewFile(uintptr(out), name)
	defer fout.Close()
	if _, err := io.Copy(fout, fin); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", fmt.Errorf("readlink: %w", err)
	}
	return string(buf[:n]), nil
}

// copyAttrs gives dst/dname the owner, mode and times of src/sname. An
// empty name means the directory itself. The mode is set after the owner,
// since chown clears set-id bits; symlinks have no mode of their own.
func copyAttrs(src int, sname string, dst int, dname string, chmod bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, sname, &st, atFlags(sname)); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if err := unix.Fchownat(dst, dname, int(st.Uid), int(st.Gid), atFlags(dname)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if dname == "" {
		if err := unix.Fchmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
		return nil
	}
	if chmod {
		if err := unix.Fchmodat(dst, dname, st.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dst, dname, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// atFlags are the *at(2) flags that act on name itself, or on the
// directory descriptor when name is empty.
func atFlags(name string) int {
	if name == "" {
		return unix.AT_SYMLINK_NOFOLLOW | unix.AT_EMPTY_PATH
	}
	return unix.AT_SYMLINK_NOFOLLOW
}
