package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

const (
	// lockWait bounds how long a Writer waits for another to let go of
	// the same upload, and lockPoll is how often it looks.
	lockWait = 5 * time.Minute
	lockPoll = 5 * time.Millisecond
	// lockAttempts bounds the retries of a Writer whose upload is
	// replaced while it waits for its lock.
	lockAttempts = 8
	// writebackChunk is how much an upload accumulates before its
	// writeback to disk is started, so that Commit's fsync finds little
	// left to write.
	writebackChunk = 8 << 20
)

// Writer opens the upload at p. A new upload is an empty file renamed
// over whatever was at p; a resumed one is the file at p opened for
// append, its size the upload's size so far. Either way the writer holds
// the upload alone (an exclusive flock) until Close, Commit or Cancel:
// another Writer of the same path, in any process on this root, waits.
func (d *Driver) Writer(ctx context.Context, p string, resume bool) (storage.Writer, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("upload %s: %w", p, err)
	}
	if resume {
		return d.resume(ctx, p)
	}
	return d.create(ctx, p)
}

// create makes a new, empty upload at p. The new file is locked before
// it takes the name, and a writer still holding the old file is waited
// for first, so no writer ever appends to a file that has lost its name.
func (d *Driver) create(ctx context.Context, p string) (storage.Writer, error) {
	f, tmp, err := d.createTemp(ctx, path.Dir(p))
	if err != nil {
		return nil, writeErr("upload", p, err)
	}
	err = lockFile(ctx, f)
	var old *os.File
	if err == nil {
		old, err = d.lockExisting(ctx, p)
	}
	if err == nil {
		err = d.root.Rename(tmp, p)
	}
	if old != nil {
		old.Close()
	}
	if err != nil {
		f.Close()
		_ = d.root.Remove(tmp) // best effort, as in Put
		return nil, writeErr("upload", p, err)
	}
	return &writer{d: d, f: f, path: p}, nil
}

// lockExisting locks the file at p, if there is one, and returns it. Like
// resume, it makes sure the file it locked still is the one at p.
func (d *Driver) lockExisting(ctx context.Context, p string) (*os.File, error) {
	for attempt := 1; attempt <= lockAttempts; attempt++ {
		f, err := d.root.OpenFile(p, os.O_RDONLY, 0)
		if missing(err) || errors.Is(err, syscall.EISDIR) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		same, err := d.lockedIsAt(ctx, f, p)
		if err != nil || same {
			if err != nil {
				f.Close()
			}
			return f, err
		}
		f.Close()
	}
	return nil, errdefs.Precondition("upload %s: replaced %d times while waiting for it", p, lockAttempts)
}

// lockedIsAt locks f, then reports whether it still is the file at p.
func (d *Driver) lockedIsAt(ctx context.Context, f *os.File, p string) (bool, error) {
	if err := lockFile(ctx, f); err != nil {
		return false, err
	}
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := d.root.Stat(p)
	if missing(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, now), nil
}

// resume opens the upload at p for append and locks it. A writer that
// waited for the lock checks that the file still is the one at p: a new
// upload may have replaced it meanwhile.
func (d *Driver) resume(ctx context.Context, p string) (storage.Writer, error) {
	for attempt := 1; ; attempt++ {
		f, size, err := d.openLocked(ctx, p)
		if err != nil {
			return nil, err
		}
		if f != nil {
			return &writer{d: d, f: f, path: p, size: size, flushed: size}, nil
		}
		if attempt == lockAttempts {
			return nil, errdefs.Precondition("resume upload %s: replaced %d times while waiting for it", p, attempt)
		}
	}
}

// openLocked opens and locks the file at p. It returns a nil file, and
// no error, when the file lost its name while the lock was awaited.
func (d *Driver) openLocked(ctx context.Context, p string) (*os.File, int64, error) {
	f, err := d.root.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, syscall.EISDIR) {
		return nil, 0, errdefs.NotFound("resume upload %s: a directory, not an upload", p)
	}
	if err != nil {
		return nil, 0, readErr("resume upload", p, err)
	}
	same, err := d.lockedIsAt(ctx, f, p)
	var fi os.FileInfo
	if err == nil && same {
		// After the lock: the size the last writer left.
		fi, err = f.Stat()
	}
	if err == nil && same && !fi.Mode().IsRegular() {
		err = errdefs.NotFound("resume upload %s: not an upload", p)
	}
	if err != nil || !same {
		f.Close()
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			err = fmt.Errorf("resume upload %s: %w", p, bare(err))
		}
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// lockFile takes f's exclusive flock, waiting while another holds it, up
// to lockWait or the end of ctx.
func lockFile(ctx context.Context, f *os.File) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			if err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return errdefs.Precondition("another writer has held the upload for %s", lockWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

var _ storage.ExclusiveWriter = (*writer)(nil)

// writer appends to the file of one upload, which it holds locked.
type writer struct {
	d    *Driver
	f    *os.File
	path string
	size int64
	// flushed is the offset up to which writeback has been started.
	flushed int64
	// done is set once Close, Commit or Cancel ran: the file is closed.
	done bool
}

// errDone is the error of a writer used after Close, Commit or Cancel.
func (w *writer) errDone(op string) error {
	return fmt.Errorf("%s upload %s: %w", op, w.path, storage.ErrClosed)
}

// Write appends b to the upload.
func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, w.errDone("write")
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("write upload %s: %w", w.path, bare(err))
	}
	w.startWriteback()
	return n, nil
}

// startWriteback starts the disk writes of what accumulated since the
// last call, once that is writebackChunk or more, without waiting for
// them. A large upload is then mostly on disk when Commit fsyncs it,
// instead of all of it being written then. It is only a hint: where it
// fails, Commit's fsync does the whole work.
func (w *writer) startWriteback() {
	if w.d.noSync || w.size-w.flushed < writebackChunk {
		return
	}
	_ = unix.SyncFileRange(int(w.f.Fd()), w.flushed, w.size-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
	w.flushed = w.size
}

// Size is the upload's length, earlier writers' included.
func (w *writer) Size() int64 { return w.size }

// Close keeps the upload, without fsync, for a later Writer to resume.
func (w *writer) Close() error {
	if w.done {
		return w.errDone("close")
	}
	w.done = true
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close upload %s: %w", w.path, bare(err))
	}
	return nil
}

// Commit fsyncs the upload's file and directory. The file already is the
// object at the upload's path; Commit makes it durable.
func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return w.errDone("commit")
	}
	w.done = true
	err := ctx.Err()
	if err == nil {
		err = w.d.syncFile(w.f)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.d.syncDir(path.Dir(w.path))
	}
	if err != nil {
		return fmt.Errorf("commit upload %s: %w", w.path, bare(err))
	}
	return nil
}

// CommitTo makes the upload durable and renames it to dst while it still
// holds the lock, so no writer waiting for the upload appends to the
// object at dst: it finds the upload's name gone and gives up.
func (w *writer) CommitTo(ctx context.Context, dst string) error {
	if w.done {
		return w.errDone("commit")
	}
	w.done = true
	defer w.f.Close()
	err := ctx.Err()
	if err == nil {
		err = w.d.syncFile(w.f)
	}
	if err != nil {
		return fmt.Errorf("commit upload %s: %w", w.path, bare(err))
	}
	return w.d.Move(ctx, w.path, dst)
}

// Cancel removes the upload's file and the directories that leaves
// empty.
func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return w.errDone("cancel")
	}
	w.done = true
	w.f.Close()
	if err := w.d.root.Remove(w.path); err != nil && !missing(err) {
		return fmt.Errorf("cancel upload %s: %w", w.path, bare(err))
	}
	w.d.prune(path.Dir(w.path))
	return nil
}
