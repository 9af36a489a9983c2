package layer

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"

	"golang.org/x/sys/unix"
)

// resolveFlags keep every lookup beneath the layer root: absolute symlinks
// and ".." that would climb above it fail with EXDEV instead of being
// followed, and /proc magic links are never followed.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// maxRetries bounds the EAGAIN retries openat2 asks for when a rename
// races a RESOLVE_BENEATH lookup.
const maxRetries = 32

// openBeneath opens rel (relative, already cleaned) beneath the directory
// rootFd with openat2, translating an escape into ErrUnsafe.
func openBeneath(rootFd int, rel string, flags int) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags}
	var err error
	for range maxRetries {
		var fd int
		fd, err = unix.Openat2(rootFd, rel, how)
		if err == nil {
			return fd, nil
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			break
		}
	}
	if err == unix.EXDEV {
		return -1, unsafef("%q resolves outside the layer root through a symlink", rel)
	}
	if err == unix.ELOOP {
		return -1, unsafef("%q: too many symlinks", rel)
	}
	return -1, &os.PathError{Op: "openat2", Path: rel, Err: err}
}

// openDir opens the directory rel beneath rootFd for reading.
func openDir(rootFd int, rel string) (int, error) {
	return openBeneath(rootFd, rel, unix.O_RDONLY|unix.O_DIRECTORY)
}

// mkdirAll opens the directory rel beneath rootFd, making any missing
// component with mode 0755 as Docker does for parents a layer omits.
// Components are made one at a time relative to an already resolved
// parent, so none can be redirected outside the root.
func mkdirAll(rootFd int, rel string) (int, error) {
	fd, err := openDir(rootFd, rel)
	if err == nil || rel == "." || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	pfd, err := mkdirAll(rootFd, path.Dir(rel))
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	base := path.Base(rel)
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, &os.PathError{Op: "mkdirat", Path: rel, Err: err}
	}
	fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if isSymlinkAt(pfd, base) {
			return -1, unsafef("%q is a dangling symlink used as a directory", rel)
		}
		return -1, &os.PathError{Op: "openat", Path: rel, Err: err}
	}
	return fd, nil
}

// removeAllAt removes name in the directory dfd and, if it is a directory,
// everything under it, never following symlinks. It reports whether there
// was anything to remove.
func removeAllAt(dfd int, name string) (bool, error) {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return false, &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, &os.PathError{Op: "openat", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return false, fmt.Errorf("read directory %s: %w", name, err)
	}
	for _, n := range names {
		if _, err := removeAllAt(fd, n); err != nil {
			return false, err
		}
	}
	if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil {
		return false, &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return true, nil
}

// isDirAt reports whether name in dfd is a directory (not a symlink to one).
func isDirAt(dfd int, name string) bool {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// isSymlinkAt reports whether name in dfd is a symlink.
func isSymlinkAt(dfd int, name string) bool {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// procPath names name inside the open directory dfd through procfs, for
// the l*xattr calls that have no *at form. The directory is already
// resolved and the final component is never followed by them.
func procPath(dfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + name
}
