package rootfs

import (
	"errors"
	"os"
	"strings"
	"sync"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Resolution inside the container's root. Every mount target, device
// node, masked and read-only path is looked up below the root handle so
// that nothing the image holds (a symlink, "..") leads out of it.
//
// With openat2 (Linux 5.6) the kernel does that in one call per lookup:
// RESOLVE_IN_ROOT treats the root handle as "/" for symlinks and "..".
// A directory made here is opened with RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS
// and RESOLVE_NO_XDEV, so one swapped for a symlink or covered by a mount
// between the mkdir and the open is refused. pathrs-lite serves kernels
// without openat2 (or a seccomp profile that refuses it). It also
// re-checks procfs and probes for openat2 on every call, some thirty
// system calls per path; a container's start resolves dozens of paths, on
// the path to its program's first instruction.

// inRoot resolves a path as if the root handle were "/".
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// newDirFlags open a directory just made: its name must be a plain
// directory on the same mount, not a symlink or a mount point.
const newDirFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS

// openat2Retries bounds the retries when openat2 says EAGAIN: a rename or
// a mount elsewhere on the host raced with a scoped lookup.
const openat2Retries = 64

// haveOpenat2 says, once per process, whether scoped lookups work here.
var haveOpenat2 = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT,
	})
	if err != nil {
		return false
	}
	_ = unix.Close(fd)
	return true
})

// openat2 opens p below dir with the given resolve flags.
func openat2(dir *os.File, p string, flags uint64, resolve uint64) (*os.File, error) {
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve}
	for range openat2Retries {
		fd, err := unix.Openat2(int(dir.Fd()), p, how)
		if err == nil {
			return os.NewFile(uintptr(fd), p), nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
		}
	}
	return nil, &os.PathError{Op: "openat2", Path: p, Err: unix.EAGAIN}
}

// openIn returns an O_PATH handle on p resolved inside root.
func openIn(root *os.File, p string) (*os.File, error) {
	if !haveOpenat2() {
		return pathrs.OpenatInRoot(root, p)
	}
	return openat2(root, p, unix.O_PATH, inRoot)
}

// mkdirAllIn makes directory p and its missing parents inside root, with
// mode (less the umask), and returns a handle on p.
func mkdirAllIn(root *os.File, p string, mode uint32) (*os.File, error) {
	elems := pathElems(p)
	if !haveOpenat2() || elems == nil {
		return pathrs.MkdirAllHandle(root, p, os.FileMode(mode))
	}
	dir, have, err := longestPrefix(root, elems)
	if err != nil {
		return nil, err
	}
	for _, name := range elems[have:] {
		if err := unix.Mkdirat(int(dir.Fd()), name, mode); err != nil && !errors.Is(err, unix.EEXIST) {
			dir.Close()
			return nil, &os.PathError{Op: "mkdirat", Path: name, Err: err}
		}
		next, err := openat2(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, newDirFlags)
		dir.Close()
		if err != nil {
			return nil, err
		}
		dir = next
	}
	return dir, nil
}

// longestPrefix opens the longest leading part of elems that exists as a
// directory inside root, and says how many elements it holds. The root
// itself always does.
func longestPrefix(root *os.File, elems []string) (*os.File, int, error) {
	for n := len(elems); ; n-- {
		dir, err := openat2(root, "/"+strings.Join(elems[:n], "/"), unix.O_PATH|unix.O_DIRECTORY, inRoot)
		if err == nil {
			return dir, n, nil
		}
		if !errors.Is(err, unix.ENOENT) || n == 0 {
			return nil, 0, err
		}
	}
}

// pathElems splits p into its names, or says nil when p holds a "..":
// after a symlink that means the symlink's parent, which a lexical clean
// would get wrong, so the general resolver walks it.
func pathElems(p string) []string {
	elems := []string{}
	for _, e := range strings.Split(p, "/") {
		switch e {
		case "", ".":
		case "..":
			return nil
		default:
			elems = append(elems, e)
		}
	}
	return elems
}

// HaveOpenat2 reports whether openat2(2) with RESOLVE_IN_ROOT works here,
// which the C init (runtime/cinit) relies on.
func HaveOpenat2() bool { return haveOpenat2() }
