package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"

	"github.com/berth-containers/berth/internal/ctxio"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// copyBufferSize is the buffer Put copies through: large enough that a
// layer costs few system calls.
const copyBufferSize = 128 << 10

// Reader opens the object at p and seeks to offset.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, errdefs.Invalid("read %s: negative offset %d", p, offset)
	}
	f, err := d.root.Open(p)
	if err != nil {
		return nil, readErr("read", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", p, bare(err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errdefs.NotFound("read %s: not an object", p)
	}
	if offset > fi.Size() {
		f.Close()
		return nil, errdefs.Invalid("read %s: offset %d is past the end (%d bytes)", p, offset, fi.Size())
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("read %s: %w", p, bare(err))
		}
	}
	return f, nil
}

// Stat describes the object or directory at p. A directory's size is 0,
// as an object store's prefix has none.
func (d *Driver) Stat(ctx context.Context, p string) (storage.Info, error) {
	if err := checkPath(p); err != nil {
		return storage.Info{}, err
	}
	fi, err := d.root.Stat(p)
	if err != nil {
		return storage.Info{}, readErr("stat", p, err)
	}
	switch {
	case fi.IsDir():
		return storage.Info{Path: p, ModTime: fi.ModTime(), IsDir: true}, nil
	case fi.Mode().IsRegular():
		return storage.Info{Path: p, Size: fi.Size(), ModTime: fi.ModTime()}, nil
	}
	return storage.Info{}, errdefs.NotFound("stat %s: not an object or a directory", p)
}

// Put writes r to a temporary file beside p, fsyncs it, renames it over
// p and fsyncs the directory.
func (d *Driver) Put(ctx context.Context, p string, r io.Reader) (int64, error) {
	if err := checkPath(p); err != nil {
		return 0, err
	}
	dir := path.Dir(p)
	f, tmp, err := d.createTemp(ctx, dir)
	if err != nil {
		return 0, writeErr("put", p, err)
	}
	n, err := d.fill(ctx, f, r)
	if err == nil {
		err = d.root.Rename(tmp, p)
	}
	if err != nil {
		// Best effort: the error that matters is the one returned, and
		// List and Walk skip a temporary file left behind.
		_ = d.root.Remove(tmp)
		return n, writeErr("put", p, err)
	}
	if err := d.syncDir(dir); err != nil {
		return n, fmt.Errorf("put %s: sync directory: %w", p, bare(err))
	}
	return n, nil
}

// fill copies r into f, makes it durable and closes f.
func (d *Driver) fill(ctx context.Context, f *os.File, r io.Reader) (int64, error) {
	// Hiding f's ReadFrom makes the copy use the larger buffer.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, ctxio.Reader(ctx, r), make([]byte, copyBufferSize))
	if err == nil {
		err = d.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// Move renames src to dst, creating dst's directories, and removes the
// directories src leaves empty.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	if err := checkPath(src); err != nil {
		return err
	}
	if err := checkPath(dst); err != nil {
		return err
	}
	if err := d.isObject("move", src); err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	dir := path.Dir(dst)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("move %s: %w", src, err)
		}
		if err := d.mkdirAll(dir); err != nil {
			return writeErr("move to", dst, err)
		}
		err := d.root.Rename(src, dst)
		if err == nil {
			break
		}
		if !errors.Is(err, iofs.ErrNotExist) || attempt == createAttempts {
			return writeErr("move to", dst, err)
		}
		// Either src went (a concurrent Move or Delete) or a cleanup
		// removed dst's directory after it was made: try again unless
		// src is gone.
		if err := d.isObject("move", src); err != nil {
			return err
		}
	}
	// One directory's sync commits the rename: on a journaling
	// filesystem both entries change in one transaction.
	if err := d.syncDir(dir); err != nil {
		return fmt.Errorf("move to %s: sync directory: %w", dst, bare(err))
	}
	d.prune(path.Dir(src))
	return nil
}

// isObject checks that p is an object, not missing or a directory.
func (d *Driver) isObject(op, p string) error {
	fi, err := d.root.Lstat(p)
	if err != nil {
		return readErr(op, p, err)
	}
	if !fi.Mode().IsRegular() {
		return errdefs.NotFound("%s %s: not an object", op, p)
	}
	return nil
}

// Delete removes the object at p, or the directory at p with everything
// in it, and then the directories that leaves empty.
func (d *Driver) Delete(ctx context.Context, p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	fi, err := d.root.Lstat(p)
	if err != nil {
		return readErr("delete", p, err)
	}
	if fi.IsDir() {
		err = d.root.RemoveAll(p)
	} else {
		err = d.root.Remove(p)
	}
	if err != nil {
		return readErr("delete", p, err)
	}
	d.prune(path.Dir(p))
	return nil
}
