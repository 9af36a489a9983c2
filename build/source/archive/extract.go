package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/ctxio"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Options say how Extract places entries.
type Options struct {
	// Root bounds the resolution of symlinks met in an entry's parent
	// directories: they resolve inside Root as if it were "/" (a root
	// filesystem being built). Empty means the destination directory.
	Root string
	// NoFollow refuses an entry whose parent directories hold a symlink
	// instead of resolving it (a build context unpacked from a tar).
	NoFollow bool
	// AllowAbsolute reads an absolute entry name relative to the
	// destination, as Docker's ADD does; otherwise such a name is refused.
	AllowAbsolute bool
	// Owner maps an entry's uid/gid to the ones to set; nil leaves
	// ownership to the extracting process.
	Owner func(uid, gid int) (int, int)
	// Mode, when set, replaces the permission bits of every file and
	// directory.
	Mode *fs.FileMode
}

// xattrPrefix marks extended attributes among a tar header's PAX records.
const xattrPrefix = "SCHILY.xattr."

// extractor holds one Extract's state.
type extractor struct {
	dir  string // destination, a host path
	root string // what symlinks resolve inside
	o    Options
	// dirs are the directories whose mtimes are set last: writing
	// their entries changes them.
	dirs []dirTime
}

type dirTime struct {
	path  string
	mtime time.Time
}

// Extract unpacks the tar stream r (compressed or not) into the directory
// dir, creating it if needed. No entry lands outside dir: a name that
// leaves it is refused, links are created as links and never followed
// while writing, and parents are resolved as o says.
func Extract(ctx context.Context, r io.Reader, dir string, o Options) error {
	dr, err := Decompress(ctx, r)
	if err != nil {
		return err
	}
	defer dr.Close()
	e := &extractor{dir: filepath.Clean(dir), root: o.Root, o: o}
	if e.root == "" {
		e.root = e.dir
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", e.dir, err)
	}
	tr := tar.NewReader(dr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errdefs.Invalid("read archive: %v", err)
		}
		if err := e.entry(ctx, hdr, tr); err != nil {
			return err
		}
	}
	// Deepest first, so setting a child's time does not touch a parent's
	// after it was set.
	for i := len(e.dirs) - 1; i >= 0; i-- {
		d := e.dirs[i]
		if err := SetTimes(d.path, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// name cleans an entry name into a path relative to the destination, or
// refuses it.
func (e *extractor) name(raw string) (string, error) {
	p := path.Clean(strings.ReplaceAll(raw, "\\", "/"))
	if path.IsAbs(p) {
		if !e.o.AllowAbsolute {
			return "", errdefs.Invalid("archive entry %q: absolute names are not allowed", raw)
		}
		p = path.Clean(strings.TrimLeft(p, "/"))
		if p == "" {
			p = "."
		}
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errdefs.Invalid("archive entry %q: leaves the destination directory", raw)
	}
	return p, nil
}

// entry writes one tar entry.
func (e *extractor) entry(ctx context.Context, hdr *tar.Header, r io.Reader) error {
	rel, err := e.name(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil // the destination itself
	}
	parent, err := e.parent(path.Dir(rel))
	if err != nil {
		return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
	}
	target := filepath.Join(parent, path.Base(rel))
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = e.mkdir(target)
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archives still use TypeRegA
		err = e.file(ctx, target, r)
	case tar.TypeSymlink:
		err = e.replace(target, func() error { return os.Symlink(hdr.Linkname, target) })
	case tar.TypeLink:
		err = e.hardlink(target, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = e.replace(target, func() error { return mknod(target, hdr) })
	default:
		return nil // headers carrying no file (PAX globals, GNU volumes)
	}
	if err != nil {
		return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
	}
	return e.meta(target, hdr)
}

// parent returns the host path of the directory rel (relative to the
// destination), creating missing directories.
func (e *extractor) parent(rel string) (string, error) {
	if rel == "." {
		return e.dir, nil
	}
	cur := e.dir
	for _, comp := range strings.Split(rel, "/") {
		next := filepath.Join(cur, comp)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := e.mkdirImplicit(next); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.o.NoFollow {
				return "", errdefs.Invalid("%s is a symlink; archives may not write through symlinks", comp)
			}
			if next, err = e.follow(next); err != nil {
				return "", err
			}
		case !fi.IsDir():
			return "", fmt.Errorf("%s is not a directory", next)
		}
		cur = next
	}
	return cur, nil
}

// follow resolves the symlink at host path p inside the root and checks
// that it names a directory.
func (e *extractor) follow(p string) (string, error) {
	rel, err := filepath.Rel(e.root, p)
	if err != nil {
		return "", err
	}
	res, err := securejoin.SecureJoin(e.root, rel)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(res)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", p)
	}
	return res, nil
}

// mkdirImplicit creates a directory the archive did not list.
func (e *extractor) mkdirImplicit(p string) error {
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(p, 0o755); err != nil { // past the umask
		return err
	}
	if e.o.Owner != nil {
		uid, gid := e.o.Owner(0, 0)
		return os.Lchown(p, uid, gid)
	}
	return nil
}

// mkdir creates a directory entry; one already there is kept.
func (e *extractor) mkdir(p string) error {
	fi, err := os.Lstat(p)
	if err == nil {
		if fi.IsDir() {
			return nil
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return os.Mkdir(p, 0o755)
}

// replace removes what is at p, unless it is a directory, then creates.
func (e *extractor) replace(p string, create func() error) error {
	fi, err := os.Lstat(p)
	if err == nil {
		if fi.IsDir() {
			return fmt.Errorf("cannot replace directory %s with a file", p)
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return create()
}

// file writes a regular file's content, never through a link at p.
func (e *extractor) file(ctx context.Context, p string, r io.Reader) error {
	return e.replace(p, func() error {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, ctxio.Reader(ctx, r))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// hardlink links p to an earlier entry of the archive.
func (e *extractor) hardlink(p, linkname string) error {
	rel, err := e.name(linkname)
	if err != nil {
		return err
	}
	parent, err := e.parent(path.Dir(rel))
	if err != nil {
		return err
	}
	old := filepath.Join(parent, path.Base(rel))
	fi, err := os.Lstat(old)
	if err != nil {
		return fmt.Errorf("hard link target %s: %w", linkname, err)
	}
	if fi.IsDir() {
		return errdefs.Invalid("hard link target %s is a directory", linkname)
	}
	return e.replace(p, func() error { return os.Link(old, p) })
}

// meta applies ownership, mode, extended attributes and times.
func (e *extractor) meta(p string, hdr *tar.Header) error {
	if e.o.Owner != nil {
		uid, gid := e.o.Owner(hdr.Uid, hdr.Gid)
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, xattrPrefix); ok {
			// Best effort: the filesystem may not take every namespace.
			_ = unix.Lsetxattr(p, name, []byte(v), 0)
		}
	}
	if hdr.Typeflag == tar.TypeSymlink {
		return SetTimes(p, hdr.ModTime)
	}
	if hdr.Typeflag == tar.TypeLink {
		return nil // the target's metadata is the link's
	}
	mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if e.o.Mode != nil {
		mode = *e.o.Mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	}
	if err := os.Chmod(p, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	if hdr.Typeflag == tar.TypeDir {
		e.dirs = append(e.dirs, dirTime{path: p, mtime: hdr.ModTime})
		return nil
	}
	return SetTimes(p, hdr.ModTime)
}

// mknod creates a device node or a FIFO.
func mknod(p string, hdr *tar.Header) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)) //nolint:gosec // tar device numbers fit
	return unix.Mknod(p, mode, int(dev))                          //nolint:gosec // Linux dev_t fits an int
}

// SetTimes sets p's access and modification times to mtime without
// following a symlink at p.
func SetTimes(p string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", p, err)
	}
	return nil
}
