package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ApplyStats describes one applied layer.
type ApplyStats struct {
	// Entries is the number of tar headers read.
	Entries int64
	// Whiteouts counts whiteout and opaque markers.
	Whiteouts int64
	// FileBytes is the content written to regular files.
	FileBytes int64
	// StreamBytes is the length of the uncompressed tar stream, trailing
	// padding included.
	StreamBytes int64
}

// Apply unpacks the uncompressed layer tar r into root, an existing
// directory that should be empty (each layer is unpacked on its own and
// overlayfs stacks them). It reads r to its end even past the tar trailer,
// so a caller hashing r sees the whole stream. A refused entry yields an
// *EntryError, wrapping ErrUnsafe or ErrUnsupported for hostile or unknown
// entries; root is then left partly written for the caller to discard.
func Apply(ctx context.Context, root string, r io.Reader) (ApplyStats, error) {
	var stats ApplyStats
	rootFd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return stats, fmt.Errorf("open layer root %s: %w", root, err)
	}
	defer unix.Close(rootFd)

	cr := &ctxReader{ctx: ctx, r: r}
	a := &applier{root: rootFd, dirTimes: map[string][2]time.Time{}}
	tr := tar.NewReader(cr)
	last := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.stats(cr), fmt.Errorf("read layer entry after %q: %w", last, err)
		}
		a.st.Entries++
		if a.st.Entries > MaxEntries {
			return a.stats(cr), &EntryError{Name: hdr.Name, Err: unsafef("more than %d entries", MaxEntries)}
		}
		last = hdr.Name
		if err := a.entry(hdr, tr); err != nil {
			return a.stats(cr), &EntryError{Name: hdr.Name, Err: err}
		}
	}
	if err := a.finishDirs(); err != nil {
		return a.stats(cr), err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return a.stats(cr), fmt.Errorf("read layer trailer: %w", err)
	}
	return a.stats(cr), nil
}

// ctxReader stops reading once ctx is done and counts what it read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// applier performs entry plans beneath one open root directory.
type applier struct {
	root int
	st   ApplyStats
	// dirTimes holds directory times to set once their contents exist;
	// writing a child would otherwise change them again.
	dirTimes map[string][2]time.Time
}

func (a *applier) stats(cr *ctxReader) ApplyStats {
	s := a.st
	s.StreamBytes = cr.n
	return s
}

func (a *applier) entry(hdr *tar.Header, content io.Reader) error {
	e, err := planEntry(hdr)
	if err != nil {
		return err
	}
	switch e.kind {
	case opSkip:
		return nil
	case opRoot:
		return a.applyRoot(e)
	case opOpaque:
		a.st.Whiteouts++
		return a.opaque(e)
	}
	pfd, err := mkdirAll(a.root, e.dir)
	if err != nil {
		return fmt.Errorf("parent directory: %w", err)
	}
	defer unix.Close(pfd)
	if e.kind != opDir || !isDirAt(pfd, e.base) {
		// Docker's rule: a later entry replaces an earlier one, except
		// that a directory over a directory merges.
		removed, err := removeAllAt(pfd, e.base)
		if err != nil {
			return fmt.Errorf("replace existing entry: %w", err)
		}
		if removed {
			a.forgetDirTimes(e.path)
		}
	}
	switch e.kind {
	case opDir:
		return a.dir(pfd, e)
	case opFile:
		return a.file(pfd, e, content)
	case opSymlink:
		return a.symlink(pfd, e)
	case opHardlink:
		return a.hardlink(pfd, e)
	case opDevice:
		return a.device(pfd, e)
	case opWhiteout:
		a.st.Whiteouts++
		return a.whiteout(pfd, e)
	}
	return fmt.Errorf("entry kind %d: %w", e.kind, ErrUnsupported)
}

func (a *applier) applyRoot(e entryPlan) error {
	if err := setFdAttrs(a.root, e); err != nil {
		return err
	}
	a.dirTimes["."] = [2]time.Time{e.atime, e.mtime}
	return nil
}

func (a *applier) opaque(e entryPlan) error {
	fd, err := mkdirAll(a.root, e.path)
	if err != nil {
		return fmt.Errorf("opaque directory: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Fsetxattr(fd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("mark %s opaque: %w", e.path, err)
	}
	return nil
}

func (a *applier) dir(pfd int, e entryPlan) error {
	if err := unix.Mkdirat(pfd, e.base, 0o700); err != nil && err != unix.EEXIST {
		return fmt.Errorf("mkdir: %w", err)
	}
	fd, err := unix.Openat(pfd, e.base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	if err := setFdAttrs(fd, e); err != nil {
		return err
	}
	a.dirTimes[e.path] = [2]time.Time{e.atime, e.mtime}
	return nil
}

func (a *applier) file(pfd int, e entryPlan, content io.Reader) error {
	fd, err := unix.Openat(pfd, e.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	f := os.NewFile(uintptr(fd), e.path)
	defer f.Close()
	var n int64
	if e.sparse {
		n, err = copySparse(f, io.LimitReader(content, e.size), e.size)
	} else {
		n, err = io.Copy(f, io.LimitReader(content, e.size))
	}
	a.st.FileBytes += n
	if err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	if n != e.size {
		return fmt.Errorf("write file: %d of %d bytes: %w", n, e.size, io.ErrUnexpectedEOF)
	}
	if err := setFdAttrs(fd, e); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close file: %w", err)
	}
	return setTimes(pfd, e)
}

// copySparse copies r to f, seeking over blocks of zeros so that they
// stay holes, and sets the final size (a file may end in a hole).
func copySparse(f *os.File, r io.Reader, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			if allZero(buf[:m]) {
				_, werr := f.Seek(int64(m), io.SeekCurrent)
				if werr != nil {
					return n, werr
				}
			} else if _, werr := f.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if n == size {
		if err := f.Truncate(size); err != nil {
			return n, err
		}
	}
	return n, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (a *applier) symlink(pfd int, e entryPlan) error {
	if err := unix.Symlinkat(e.link, pfd, e.base); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	if err := unix.Fchownat(pfd, e.base, e.uid, e.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("lchown: %w", err)
	}
	if err := setPathXattrs(pfd, e); err != nil {
		return err
	}
	return setTimes(pfd, e)
}

func (a *applier) hardlink(pfd int, e entryPlan) error {
	tfd, err := openDir(a.root, path.Dir(e.link))
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return unsafef("hardlink target %q is not an earlier entry of this layer", e.link)
	}
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", e.link, err)
	}
	defer unix.Close(tfd)
	// Flags 0: a target that is a symlink is linked itself, not followed.
	if err := unix.Linkat(tfd, path.Base(e.link), pfd, e.base, 0); err != nil {
		if err == unix.ENOENT {
			return unsafef("hardlink target %q is not an earlier entry of this layer", e.link)
		}
		return fmt.Errorf("hardlink to %q: %w", e.link, err)
	}
	return nil
}

func (a *applier) device(pfd int, e entryPlan) error {
	if err := unix.Mknodat(pfd, e.base, e.devType|e.mode, int(e.dev)); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	if err := unix.Fchownat(pfd, e.base, e.uid, e.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// The node was just made by us in a directory only we write to, so
	// fchmodat's following of the last component finds that node.
	if err := unix.Fchmodat(pfd, e.base, e.mode, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := setPathXattrs(pfd, e); err != nil {
		return err
	}
	return setTimes(pfd, e)
}

func (a *applier) whiteout(pfd int, e entryPlan) error {
	if err := unix.Mknodat(pfd, e.base, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("make whiteout: %w", err)
	}
	if err := unix.Fchownat(pfd, e.base, e.uid, e.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown whiteout: %w", err)
	}
	return nil
}

// forgetDirTimes drops the pending times of p and everything under it,
// which an entry replacing p has just removed.
func (a *applier) forgetDirTimes(p string) {
	for k := range a.dirTimes {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(a.dirTimes, k)
		}
	}
}

// finishDirs sets directory times deepest first, now that nothing more is
// written inside them.
func (a *applier) finishDirs() error {
	paths := make([]string, 0, len(a.dirTimes))
	for p := range a.dirTimes {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		di, dj := strings.Count(paths[i], "/"), strings.Count(paths[j], "/")
		if di != dj {
			return di > dj
		}
		return paths[i] < paths[j]
	})
	for _, p := range paths {
		t := a.dirTimes[p]
		e := entryPlan{path: p, dir: path.Dir(p), base: path.Base(p), atime: t[0], mtime: t[1]}
		if p == "." {
			if err := unix.UtimesNanoAt(a.root, ".", timespecs(e), 0); err != nil {
				return fmt.Errorf("set times of layer root: %w", err)
			}
			continue
		}
		pfd, err := openDir(a.root, e.dir)
		if err != nil {
			return fmt.Errorf("set times of %s: %w", p, err)
		}
		if isDirAt(pfd, e.base) {
			err = setTimes(pfd, e)
		}
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("set times of %s: %w", p, err)
		}
	}
	return nil
}

// setFdAttrs sets owner, mode and extended attributes through an open
// descriptor, in that order: chown clears setuid bits and file
// capabilities, so both must come after it.
func setFdAttrs(fd int, e entryPlan) error {
	if err := unix.Fchown(fd, e.uid, e.gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, e.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for _, x := range e.xattrs {
		if err := unix.Fsetxattr(fd, x.Key, x.Value, 0); err != nil {
			return fmt.Errorf("set extended attribute %s: %w", x.Key, err)
		}
	}
	return nil
}

func setPathXattrs(pfd int, e entryPlan) error {
	for _, x := range e.xattrs {
		if err := unix.Lsetxattr(procPath(pfd, e.base), x.Key, x.Value, 0); err != nil {
			return fmt.Errorf("set extended attribute %s: %w", x.Key, err)
		}
	}
	return nil
}

func setTimes(pfd int, e entryPlan) error {
	if err := unix.UtimesNanoAt(pfd, e.base, timespecs(e), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func timespecs(e entryPlan) []unix.Timespec {
	return []unix.Timespec{toTimespec(e.atime), toTimespec(e.mtime)}
}

// toTimespec maps a zero time (a header without one) to the epoch rather
// than year 1, which no filesystem stores.
func toTimespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}
