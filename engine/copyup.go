package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// copyUp fills an empty volume with what the image has at dst, as Docker
// does the first time a volume is mounted. The image path is resolved
// inside rootfs, so a symlink in the image cannot point the copy at the
// host.
func copyUp(rootfs, dst, volume string) error {
	entries, err := os.ReadDir(volume)
	if err != nil {
		return fmt.Errorf("read volume %s: %w", volume, err)
	}
	if len(entries) > 0 {
		return nil
	}
	src, err := securejoin.SecureJoin(rootfs, dst)
	if err != nil {
		return fmt.Errorf("resolve %s in the image: %w", dst, err)
	}
	fi, err := os.Lstat(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy %s into its volume: %w", dst, err)
	}
	if !fi.IsDir() {
		return nil
	}
	if err := copyTree(src, volume); err != nil {
		return fmt.Errorf("copy %s into its volume: %w", dst, err)
	}
	return copyOwner(src, volume, fi)
}

// copyTree copies the directory src into the existing directory dst,
// keeping modes, owners and symlinks as they are (never following one).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode().IsDir():
			err = os.Mkdir(target, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			var link string
			if link, err = os.Readlink(p); err == nil {
				err = os.Symlink(link, target)
			}
		case fi.Mode().IsRegular():
			err = copyFile(p, target, fi.Mode().Perm())
		default:
			return nil // devices, fifos and sockets stay in the image
		}
		if err != nil {
			return err
		}
		return copyOwner(p, target, fi)
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyOwner gives dst src's owner and mode (chown clears set-id bits).
func copyOwner(_, dst string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return nil
	}
	return unix.Chmod(dst, st.Mode&07777)
}
