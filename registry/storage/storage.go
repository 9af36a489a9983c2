// Package storage is what the registry keeps its content in: a driver
// over a flat namespace of objects named by slash-separated paths, that
// objects are written to whole or appended to in chunks, and read whole
// or from an offset. Drivers keep no state outside their backend, so
// several registry replicas on one backend serve the same content, and an
// upload appended to by one replica is continued and committed by another.
//
// Paths are relative ("blobs/sha256/ab/abcd.../data"), never start or end
// with "/", and hold no "." or ".." element; drivers refuse other paths
// with an errdefs.ErrInvalidArgument error. A missing object is an
// errdefs.ErrNotFound error.
package storage

import (
	"context"
	"io"
	"time"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Driver is a storage backend.
type Driver interface {
	// Name names the backend for logs and metrics ("filesystem", "s3").
	Name() string
	// Reader reads the object at path from offset on. An offset past the
	// end is an errdefs.ErrInvalidArgument error.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)
	// Stat describes the object, or the directory, at path.
	Stat(ctx context.Context, path string) (Info, error)
	// Put writes the object at path whole, replacing any earlier one.
	// Readers see the old content or the new, never a part.
	Put(ctx context.Context, path string, r io.Reader) (int64, error)
	// Writer opens the upload at path: a new one, or with resume the one
	// a writer (of this or another process) closed earlier, appended to
	// after the content it holds. Resuming a missing upload is an
	// errdefs.ErrNotFound error.
	Writer(ctx context.Context, path string, resume bool) (Writer, error)
	// List returns the paths of the objects and directories directly
	// under the directory prefix, sorted. A missing directory is an
	// errdefs.ErrNotFound error.
	List(ctx context.Context, prefix string) ([]string, error)
	// Walk calls fn for every object (not directory) under prefix, in
	// lexical order of path. An error from fn stops the walk and is
	// returned.
	Walk(ctx context.Context, prefix string, fn func(Info) error) error
	// Move renames the object at src to dst, replacing any object there.
	Move(ctx context.Context, src, dst string) error
	// Delete removes the object at path, or everything under it when it
	// is a directory.
	Delete(ctx context.Context, path string) error
}

// ErrClosed is what a Writer returns once it was closed, committed or
// canceled (wrapped with the upload's path by drivers that know it).
var ErrClosed = errdefs.Precondition("storage writer is closed")

// Writer appends to an upload. Close keeps what was written, for a later
// Writer with resume; Commit makes it a readable object at the upload's
// path; Cancel removes it.
type Writer interface {
	io.WriteCloser
	// Size is the upload's length so far, earlier writers' included.
	Size() int64
	// Commit flushes the upload and makes it a readable object at the
	// upload's path. The Writer is closed afterwards.
	Commit(ctx context.Context) error
	// Cancel removes the upload and everything written to it. The Writer
	// is closed afterwards.
	Cancel(ctx context.Context) error
}

// ExclusiveWriter is a Writer that holds its upload alone: from Writer
// until Close, Commit, CommitTo or Cancel, no other Writer of the same
// path, in this process or another, appends to it (it waits instead),
// and Reader reads the upload at its path as written so far. What one
// holder has hashed is therefore exactly what the upload holds, and the
// registry may keep the hash state beside the upload instead of reading
// it back at the end.
type ExclusiveWriter interface {
	Writer
	// CommitTo commits the upload and moves it to dst, replacing any
	// object there, before it lets go of it: no writer appends to it
	// between its last check and its new name. The Writer is closed
	// afterwards.
	CommitTo(ctx context.Context, dst string) error
}

// Info describes an object or a directory.
type Info struct {
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
}
