package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"syscall"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// Writer opens the upload at p. A new upload is an empty file renamed
// over whatever was at p; a resumed one is the file at p opened for
// append, its size the upload's size so far.
func (d *Driver) Writer(ctx context.Context, p string, resume bool) (storage.Writer, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("upload %s: %w", p, err)
	}
	if resume {
		return d.resume(p)
	}
	dir := path.Dir(p)
	f, tmp, err := d.createTemp(ctx, dir)
	if err != nil {
		return nil, writeErr("upload", p, err)
	}
	if err := d.root.Rename(tmp, p); err != nil {
		f.Close()
		_ = d.root.Remove(tmp) // best effort, as in Put
		return nil, writeErr("upload", p, err)
	}
	return &writer{d: d, f: f, path: p}, nil
}

// resume opens the upload at p for append.
func (d *Driver) resume(p string) (storage.Writer, error) {
	f, err := d.root.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, syscall.EISDIR) {
		return nil, errdefs.NotFound("resume upload %s: a directory, not an upload", p)
	}
	if err != nil {
		return nil, readErr("resume upload", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("resume upload %s: %w", p, bare(err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errdefs.NotFound("resume upload %s: not an upload", p)
	}
	return &writer{d: d, f: f, path: p, size: fi.Size()}, nil
}

// writer appends to the file of one upload.
type writer struct {
	d    *Driver
	f    *os.File
	path string
	size int64
	// done is set once Close, Commit or Cancel ran: the file is closed.
	done bool
}

// errDone is the error of a writer used after Close, Commit or Cancel.
func (w *writer) errDone(op string) error {
	return errdefs.Precondition("%s upload %s: writer already closed", op, w.path)
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
	return n, nil
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
