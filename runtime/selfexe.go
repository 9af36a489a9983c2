package runtime

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// sealedSelf returns a file of this very binary that no process can write
// through, for re-executing as the container's init. A container process
// can reach the binary that created it through /proc/<pid>/exe (the init,
// or an exec'd process, is visible in its pid namespace); without this it
// could overwrite berth on the host (CVE-2019-5736).
//
// The cheap way is a detached read-only bind mount of the file
// (open_tree + mount_setattr): never attached to any mount tree, it is seen
// by nobody, and a write through it fails with EROFS. Kernels older than
// 5.12 get a sealed memfd copy instead.
func sealedSelf() (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
		if err == nil {
			return os.NewFile(uintptr(fd), "berth-init"), nil
		}
		_ = unix.Close(fd)
	}
	return memfdSelf()
}

func memfdSelf() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open own binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd for own binary: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "berth-init")
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return nil, fmt.Errorf("copy own binary: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(dst.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return nil, fmt.Errorf("seal own binary: %w", err)
	}
	return dst, nil
}
