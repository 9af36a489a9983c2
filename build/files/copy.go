// Package files copies what COPY and ADD read into a step's root
// filesystem with Docker's rules, and downloads ADD's URLs.
package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/build/source"
	"github.com/berth-containers/berth/build/source/archive"
	"github.com/berth-containers/berth/internal/ctxio"
	"github.com/berth-containers/berth/internal/errdefs"
)

// CopyOptions say how Copy sets ownership and modes.
type CopyOptions struct {
	// UID and GID are --chown, resolved to numbers; nil keeps the
	// default KeepOwnership picks.
	UID, GID *int
	// KeepOwnership keeps the source's uid/gid (COPY --from a stage or an
	// image); otherwise files become 0:0, as Docker makes the context's.
	KeepOwnership bool
	// Mode is --chmod: it replaces the permission bits of every copied
	// file and directory.
	Mode *fs.FileMode
	// ExtractArchives is ADD's rule: a source file that is a tar archive
	// (plain or compressed) is unpacked into the destination directory
	// instead of copied.
	ExtractArchives bool
}

// owner returns the uid/gid a copied entry gets, from its source's.
func (o CopyOptions) owner(uid, gid int) (int, int) {
	if !o.KeepOwnership {
		uid, gid = 0, 0
	}
	if o.UID != nil {
		uid = *o.UID
	}
	if o.GID != nil {
		gid = *o.GID
	}
	return uid, gid
}

// permBits are the mode bits Copy sets.
const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// copier holds one Copy's state.
type copier struct {
	src  *source.Context
	root string
	o    CopyOptions
	// links maps a source inode with several links to the first path it
	// was copied to, so later names become hard links to it.
	links map[fileID]string
	// dirs get their mtimes after their entries are written.
	dirs []dirTime
}

type fileID struct{ dev, ino uint64 }

type dirTime struct {
	path  string
	mtime time.Time
}

// Copy copies matches (found by src.Match) into the root filesystem at
// root, at dest: an absolute container path, resolved inside root so
// symlinks there never lead out of it. Docker's rules: dest is a
// directory when it ends in "/", when there are several matches or when
// a source is a wildcard; a directory source copies its contents; a file
// to a non-directory dest is written at that name; an existing directory
// at dest receives files inside it. Modes, symlinks, hard links within the
// copy, xattrs (where the filesystem takes them) and mtimes are kept.
func Copy(ctx context.Context, src *source.Context, matches []source.Match, root, dest string, o CopyOptions) error {
	c := &copier{src: src, root: filepath.Clean(root), o: o, links: map[fileID]string{}}
	destDir := strings.HasSuffix(dest, "/") || len(matches) > 1
	for _, m := range matches {
		destDir = destDir || m.Wildcard
	}
	dest = path.Clean("/" + filepath.ToSlash(dest))
	for _, m := range matches {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.copyMatch(ctx, m, dest, destDir); err != nil {
			return err
		}
	}
	for i := len(c.dirs) - 1; i >= 0; i-- {
		if err := archive.SetTimes(c.dirs[i].path, c.dirs[i].mtime); err != nil {
			return err
		}
	}
	return nil
}

// copyMatch copies one match to dest.
func (c *copier) copyMatch(ctx context.Context, m source.Match, dest string, destDir bool) error {
	if m.Info.IsDir() {
		dir, err := c.mkdirAll(dest)
		if err != nil {
			return err
		}
		return c.tree(ctx, m, dir)
	}
	if c.o.ExtractArchives && m.Info.Mode().IsRegular() {
		ok, err := archive.IsArchive(ctx, m.Abs)
		if err != nil {
			return err
		}
		if ok {
			return c.extract(ctx, m, dest)
		}
	}
	target, err := c.fileTarget(m, dest, destDir)
	if err != nil {
		return err
	}
	return c.entry(ctx, target, m.Abs, m.Info)
}

// fileTarget is the host path a single file match is written to.
func (c *copier) fileTarget(m source.Match, dest string, destDir bool) (string, error) {
	name := path.Base(m.Rel)
	if destDir {
		dir, err := c.mkdirAll(dest)
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, name), nil
	}
	// An existing directory (or a link to one inside root) receives the
	// file; anything else at dest is replaced by it.
	if res, err := securejoin.SecureJoin(c.root, dest); err == nil {
		if fi, err := os.Stat(res); err == nil && fi.IsDir() {
			return filepath.Join(res, name), nil
		}
	}
	if dest == "/" {
		return filepath.Join(c.root, name), nil
	}
	parent, err := c.mkdirAll(path.Dir(dest))
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, path.Base(dest)), nil
}

// mkdirAll creates the container directory p inside root, with missing
// parents 0755 owned by the --chown user (else root), and returns its host
// path. Symlinks on the way resolve inside root.
func (c *copier) mkdirAll(p string) (string, error) {
	uid, gid := c.o.owner(0, 0)
	cur := "/"
	host := c.root
	for _, comp := range strings.Split(strings.Trim(p, "/"), "/") {
		if comp == "" {
			continue
		}
		cur = path.Join(cur, comp)
		res, err := securejoin.SecureJoin(c.root, cur)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", cur, err)
		}
		fi, err := os.Stat(res)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(res, 0o755); err != nil {
				return "", fmt.Errorf("create %s: %w", cur, err)
			}
			if err := os.Chmod(res, 0o755); err != nil {
				return "", fmt.Errorf("create %s: %w", cur, err)
			}
			if err := os.Lchown(res, uid, gid); err != nil {
				return "", fmt.Errorf("chown %s: %w", cur, err)
			}
		case err != nil:
			return "", fmt.Errorf("resolve %s: %w", cur, err)
		case !fi.IsDir():
			return "", errdefs.Invalid("cannot copy to %s: %s is not a directory", p, cur)
		}
		host = res
	}
	return host, nil
}

// tree copies the contents of directory match m into the host directory
// dir.
func (c *copier) tree(ctx context.Context, m source.Match, dir string) error {
	return c.src.Walk(m, func(rel, abs string, info fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rel == "." {
			return nil // the contents go into dir, not the directory itself
		}
		parent, err := c.parent(dir, path.Dir(rel))
		if err != nil {
			return err
		}
		return c.entry(ctx, filepath.Join(parent, path.Base(rel)), abs, info)
	})
}

// parent is the host path of directory rel below dir, which the walk has
// already created; a symlink met there (one that was in root before the
// copy) resolves inside root.
func (c *copier) parent(dir, rel string) (string, error) {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	fi, err := os.Lstat(p)
	if err == nil && fi.IsDir() {
		return p, nil
	}
	inRoot, err := filepath.Rel(c.root, p)
	if err != nil {
		return "", err
	}
	res, err := securejoin.SecureJoin(c.root, inRoot)
	if err != nil {
		return "", fmt.Errorf("resolve /%s: %w", inRoot, err)
	}
	return res, nil
}

// entry copies one file, directory, symlink or node from abs to the host
// path target.
func (c *copier) entry(ctx context.Context, target, abs string, info fs.FileInfo) error {
	st, _ := info.Sys().(*syscall.Stat_t)
	mode := info.Mode()
	var err error
	switch {
	case mode.IsDir():
		created, err := c.dir(target)
		if err != nil || !created {
			// An existing directory keeps its metadata, as Docker's
			// builder leaves it.
			return err
		}
	case mode&fs.ModeSymlink != 0:
		err = c.symlink(target, abs)
	case mode.IsRegular():
		if st != nil && st.Nlink > 1 {
			id := fileID{dev: st.Dev, ino: st.Ino}
			if first, ok := c.links[id]; ok {
				return c.replace(target, func() error { return os.Link(first, target) })
			}
			c.links[id] = target
		}
		err = c.file(ctx, target, abs)
	case mode&(fs.ModeDevice|fs.ModeNamedPipe) != 0 && st != nil:
		err = c.replace(target, func() error { return unix.Mknod(target, st.Mode, int(st.Rdev)) }) //nolint:gosec // dev_t fits
	default:
		return nil // sockets cannot be copied
	}
	if err != nil {
		return err
	}
	return c.meta(target, abs, info, st)
}

// dir makes a directory at target and says whether it did; one already
// there is kept, a non-directory there is an error.
func (c *copier) dir(target string) (bool, error) {
	fi, err := os.Lstat(target)
	if err == nil {
		if fi.IsDir() || (fi.Mode()&fs.ModeSymlink != 0 && c.linksToDir(target)) {
			return false, nil
		}
		return false, errdefs.Invalid("cannot replace file %s with a directory", c.containerPath(target))
	}
	if err := os.Mkdir(target, 0o700); err != nil {
		return false, fmt.Errorf("create %s: %w", c.containerPath(target), err)
	}
	return true, nil
}

// linksToDir reports whether the symlink at target resolves, inside root,
// to a directory (a merged /lib -> usr/lib receiving a copied lib/).
func (c *copier) linksToDir(target string) bool {
	res, err := c.parent(filepath.Dir(target), filepath.Base(target))
	if err != nil {
		return false
	}
	fi, err := os.Stat(res)
	return err == nil && fi.IsDir()
}

// replace removes a non-directory at target, then creates the new one.
func (c *copier) replace(target string, create func() error) error {
	fi, err := os.Lstat(target)
	if err == nil {
		if fi.IsDir() {
			return errdefs.Invalid("cannot replace directory %s with a file", c.containerPath(target))
		}
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("replace %s: %w", c.containerPath(target), err)
		}
	}
	if err := create(); err != nil {
		return fmt.Errorf("create %s: %w", c.containerPath(target), err)
	}
	return nil
}

// symlink copies a symlink as a link.
func (c *copier) symlink(target, abs string) error {
	link, err := os.Readlink(abs)
	if err != nil {
		return fmt.Errorf("read link %s: %w", abs, err)
	}
	return c.replace(target, func() error { return os.Symlink(link, target) })
}

// file copies a regular file's content; it never writes through a link
// at target and never into another name of the same inode.
func (c *copier) file(ctx context.Context, target, abs string) error {
	return c.replace(target, func() error {
		in, err := os.Open(abs)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, ctxio.Reader(ctx, in))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// meta applies ownership, mode, extended attributes and mtime.
func (c *copier) meta(target, abs string, info fs.FileInfo, st *syscall.Stat_t) error {
	suid, sgid := 0, 0
	if st != nil {
		suid, sgid = int(st.Uid), int(st.Gid)
	}
	uid, gid := c.o.owner(suid, sgid)
	if err := os.Lchown(target, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", c.containerPath(target), err)
	}
	copyXattrs(abs, target)
	if info.Mode()&fs.ModeSymlink == 0 {
		mode := info.Mode() & permBits
		if c.o.Mode != nil {
			mode = *c.o.Mode & permBits
		}
		// After chown, which clears set-id bits.
		if err := os.Chmod(target, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", c.containerPath(target), err)
		}
	}
	if info.IsDir() {
		c.dirs = append(c.dirs, dirTime{path: target, mtime: info.ModTime()})
		return nil
	}
	return archive.SetTimes(target, info.ModTime())
}

// extract unpacks an archive match into the directory dest.
func (c *copier) extract(ctx context.Context, m source.Match, dest string) error {
	dir, err := c.mkdirAll(dest)
	if err != nil {
		return err
	}
	f, err := os.Open(m.Abs)
	if err != nil {
		return fmt.Errorf("open %s: %w", m.Source, err)
	}
	defer f.Close()
	o := archive.Options{Root: c.root, AllowAbsolute: true, Mode: c.o.Mode, Owner: c.archiveOwner}
	if err := archive.Extract(ctx, f, dir, o); err != nil {
		return fmt.Errorf("unpack %s: %w", m.Source, err)
	}
	return nil
}

// archiveOwner keeps an archive entry's owner unless --chown was given,
// as Docker does for unpacked archives.
func (c *copier) archiveOwner(uid, gid int) (int, int) {
	if c.o.UID != nil {
		uid = *c.o.UID
	}
	if c.o.GID != nil {
		gid = *c.o.GID
	}
	return uid, gid
}

// containerPath names a host path under root as the container sees it.
func (c *copier) containerPath(p string) string {
	rel, err := filepath.Rel(c.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return path.Clean("/" + filepath.ToSlash(rel))
}

// copyXattrs copies extended attributes, best effort: the target
// filesystem may refuse some namespaces, and a build goes on without them.
func copyXattrs(src, dst string) {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size <= 0 {
		return
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(src, buf)
	if err != nil {
		return
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vsize, err := unix.Lgetxattr(src, name, nil)
		if err != nil || vsize < 0 {
			continue
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(src, name, val); err != nil {
			continue
		}
		_ = unix.Lsetxattr(dst, name, val[:vsize], 0)
	}
}
