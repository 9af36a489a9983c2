// Package fs is the registry's storage driver on a directory tree: each
// object is a regular file at its path under the root, each directory a
// directory.
//
// Durability: Put writes a temporary file beside the object, fsyncs it,
// renames it over the object and fsyncs the directory, so a Put that
// returned survives power loss and readers see the old file or the new,
// never a part. Move fsyncs the destination's directory after the rename.
// Delete does not fsync: a deletion lost to a crash only leaves content
// that garbage collection removes again.
//
// Uploads: an upload is the file at its path itself, so its size is the
// upload's size and any Driver on the same root, in any process, resumes
// it by opening it for append; a new upload is an empty file renamed into
// place, so readers of whatever was there before keep reading it whole.
// A writer holds its upload alone, with an exclusive flock, from Writer
// until it is closed: concurrent requests on one session, in any process
// on the root, take turns, and the writers are storage.ExclusiveWriters.
// The file is the object at its path from the start, which makes Commit
// the durability point and nothing more: it fsyncs the file and its
// directory. Close does not fsync: a chunk lost to a crash shortens or
// spoils the upload, and the registry checks an upload's digest before it
// stores it as a blob, so the push fails rather than storing wrong
// content.
//
// Directories exist while objects lie under them: Delete, Move and Cancel
// remove the directories they leave empty, up to the root, as an object
// store's prefixes vanish with their last key. Writers that find their
// directory removed under them by such a cleanup create it again.
//
// Confinement: every access goes through an os.Root, so no path and no
// symbolic link inside the tree reaches outside the root. List and Walk
// report only regular files and directories. Element names that begin
// with ".tmp-" are the driver's temporary files: paths holding one are
// refused, and List and Walk skip them.
package fs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

const (
	// tmpPrefix begins the names of files Put and Writer fill before they
	// rename them into place.
	tmpPrefix = ".tmp-"
	// fileMode and dirMode leave access control to the root's own mode:
	// New creates it readable by its owner alone.
	fileMode = 0o644
	dirMode  = 0o755
	// createAttempts bounds the retries of a writer whose directory a
	// concurrent cleanup removed between creating it and using it.
	createAttempts = 32
)

// Driver is a storage.Driver on the directory tree under one root. It is
// safe for concurrent use, and keeps no state but the open root: drivers
// in several processes share one tree.
type Driver struct {
	root *os.Root
	// noSync skips every fsync; only benchmarks set it, to measure what
	// durability costs.
	noSync bool
}

var _ storage.Driver = (*Driver)(nil)

// New opens the tree at root, creating it, readable by its owner alone,
// when it does not exist.
func New(root string) (*Driver, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create storage root: %w", err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open storage root: %w", err)
	}
	return &Driver{root: r}, nil
}

// Close releases the root directory. The Driver is unusable afterwards.
func (d *Driver) Close() error {
	return d.root.Close()
}

// Name names the backend.
func (d *Driver) Name() string { return "filesystem" }

// checkPath refuses a path storage.go does not allow, and the names the
// driver keeps for its temporary files.
func checkPath(p string) error {
	if p == "" {
		return errdefs.Invalid("empty storage path")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return errdefs.Invalid("storage path %q: holds a NUL byte", p)
	}
	for elem := range strings.SplitSeq(p, "/") {
		switch {
		case elem == "":
			return errdefs.Invalid("storage path %q: leading, trailing or doubled slash", p)
		case elem == "." || elem == "..":
			return errdefs.Invalid("storage path %q: holds a %q element", p, elem)
		case strings.HasPrefix(elem, tmpPrefix):
			return errdefs.Invalid("storage path %q: names beginning with %q are reserved", p, tmpPrefix)
		}
	}
	return nil
}

// missing reports whether err says that a path is not there: it, or a
// parent, does not exist, or a parent is a file.
func missing(err error) bool {
	return errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// collides reports whether err says an object and a directory met at one
// name: a file where a directory must go, or the reverse.
func collides(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY)
}

// bare drops the os package's path wrapper: messages name the storage
// path once, in the driver's own words.
func bare(err error) error {
	var pe *iofs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// readErr classifies an error met looking up p: absent is ErrNotFound.
func readErr(op, p string, err error) error {
	switch {
	case missing(err):
		return errdefs.NotFound("%s %s: %w", op, p, bare(err))
	case errors.Is(err, syscall.ENAMETOOLONG):
		return errdefs.Invalid("%s %s: %w", op, p, bare(err))
	}
	return fmt.Errorf("%s %s: %w", op, p, bare(err))
}

// writeErr classifies an error met creating p: an object where a
// directory must go, or the reverse, is ErrFailedPrecondition.
func writeErr(op, p string, err error) error {
	switch {
	case collides(err):
		return errdefs.Precondition("%s %s: an object and a directory collide: %w", op, p, bare(err))
	case errors.Is(err, syscall.ENAMETOOLONG):
		return errdefs.Invalid("%s %s: %w", op, p, bare(err))
	}
	return fmt.Errorf("%s %s: %w", op, p, bare(err))
}

// syncDir makes the entries of dir durable: a rename or a new file in it
// survives power loss once its directory is synced.
func (d *Driver) syncDir(dir string) error {
	if d.noSync {
		return nil
	}
	f, err := d.root.Open(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		// A concurrent Delete removed what was written, and pruned the
		// directory: there is no entry left to make durable.
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncFile makes f's data durable.
func (d *Driver) syncFile(f *os.File) error {
	if d.noSync {
		return nil
	}
	return f.Sync()
}

// prune removes dir and then its parents while they are empty, stopping
// at the root or at the first that is not. A directory a writer fills at
// the same moment survives, since rmdir fails once it holds an entry,
// and writers retry when one is removed before their entry lands.
func (d *Driver) prune(dir string) {
	for dir != "." {
		err := d.rmdir(dir)
		if err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return
		}
		dir = path.Dir(dir)
	}
}

// rmdir removes the directory dir if it is empty. Unlike os.Root.Remove
// it never unlinks a file: an object created at dir's name after a
// concurrent cleanup removed the directory stays.
func (d *Driver) rmdir(dir string) error {
	parent, err := d.root.Open(path.Dir(dir))
	if err != nil {
		return err
	}
	defer parent.Close()
	rc, err := parent.SyscallConn()
	if err != nil {
		return err
	}
	var rmErr error
	if err := rc.Control(func(fd uintptr) {
		rmErr = unix.Unlinkat(int(fd), path.Base(dir), unix.AT_REMOVEDIR)
	}); err != nil {
		return err
	}
	return rmErr
}

// mkdirAll creates dir and its parents; the root itself always exists.
func (d *Driver) mkdirAll(dir string) error {
	if dir == "." {
		return nil
	}
	err := d.root.MkdirAll(dir, dirMode)
	if !errors.Is(err, syscall.EEXIST) {
		return err
	}
	// MkdirAll says EEXIST when dir existed at its mkdirat but not at
	// the stat after it: a concurrent cleanup removed it in between.
	// Say what is there now, so that callers retry on ErrNotExist and
	// report a collision only when an object holds the name.
	fi, serr := d.root.Lstat(dir)
	switch {
	case serr != nil:
		return serr
	case fi.IsDir():
		return nil
	}
	return err
}

// createTemp creates an empty temporary file in dir, creating dir first.
// It retries when a concurrent cleanup removes dir in between.
func (d *Driver) createTemp(ctx context.Context, dir string) (*os.File, string, error) {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		err := d.mkdirAll(dir)
		if err == nil {
			name := path.Join(dir, tmpPrefix+rand.Text())
			var f *os.File
			if f, err = d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode); err == nil {
				return f, name, nil
			}
		}
		// ENOENT: a cleanup removed dir, or one of its parents while
		// MkdirAll was creating the next, in between.
		if !errors.Is(err, iofs.ErrNotExist) || attempt == createAttempts {
			return nil, "", err
		}
	}
}
