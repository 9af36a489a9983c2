// Package content is berth's content-addressed blob store: manifests,
// configs and layers, each stored once under its digest and verified as it
// is written.
//
// Layout under the root:
//
//	blobs/<algorithm>/<hex>   complete, verified blobs (read-only files)
//	ingest/<name>.lock        one lock per blob being written
//	ingest/<name>.data        the partial write, renamed into blobs/ once verified
//
// A blob appears under blobs/ only through rename(2) after its size and
// digest were checked, so a process killed mid-write leaves at most a
// partial file in ingest/, which the next writer of that blob truncates and
// Open sweeps when no one holds its lock.
package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
)

// Store is a content store rooted at one directory. It is safe for use by
// several goroutines and several processes at once.
type Store struct {
	root string
}

// Info describes one stored blob.
type Info struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
}

// Open opens (creating if needed) the store at root and removes partial
// writes that no live process owns.
func Open(root string) (*Store, error) {
	for _, dir := range []string{"blobs", "ingest"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	s := &Store{root: root}
	if err := s.sweepIngest(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

// Path is where a complete blob lives; the file exists only once the blob
// is committed.
func (s *Store) Path(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

// Info returns the size of a stored blob, or an errdefs.ErrNotFound error.
func (s *Store) Info(_ context.Context, d digest.Digest) (Info, error) {
	if err := d.Validate(); err != nil {
		return Info{}, errdefs.Invalid("blob %q: %v", d, err)
	}
	st, err := os.Stat(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, errdefs.NotFound("blob %s not found", d)
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	return Info{Digest: d, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Has reports whether a blob is stored.
func (s *Store) Has(d digest.Digest) bool {
	_, err := s.Info(context.Background(), d)
	return err == nil
}

// OpenBlob opens a stored blob for reading.
func (s *Store) OpenBlob(_ context.Context, d digest.Digest) (io.ReadCloser, error) {
	return s.open(d)
}

func (s *Store) open(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, errdefs.Invalid("blob %q: %v", d, err)
	}
	f, err := os.Open(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("blob %s not found", d)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return f, nil
}

// ReadBlob reads a whole blob of at most limit bytes: manifests and configs,
// never layers. The content is checked against its digest, so a blob
// damaged on disk (say by a power loss; blobs are not fsynced) is an error,
// not a wrong manifest.
func (s *Store) ReadBlob(_ context.Context, d digest.Digest, limit int64) ([]byte, error) {
	f, err := s.open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if int64(len(b)) > limit {
		return nil, errdefs.Invalid("blob %s is larger than %d bytes", d, limit)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s is damaged: its content has digest %s", d, got)
	}
	return b, nil
}

// WriteBlob stores r as the blob desc names, verifying size and digest. A
// blob that is already stored is not written again.
//
// An empty desc.Digest stores the blob under the sha256 of what r yields.
func (s *Store) WriteBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	size := desc.Size
	if desc.Digest == "" {
		size = -1
	}
	w, err := s.Writer(ctx, desc.Digest, size)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("write blob %s: %w", desc.Digest, err)
	}
	_, err = w.Commit()
	return err
}

// WriteBytes stores b and returns its descriptor with the given media type.
func (s *Store) WriteBytes(ctx context.Context, mediaType string, b []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	return desc, s.WriteBlob(ctx, desc, strings.NewReader(string(b)))
}

// Delete removes a blob. Deleting a missing blob is not an error, so an
// interrupted prune can simply run again.
func (s *Store) Delete(_ context.Context, d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return errdefs.Invalid("blob %q: %v", d, err)
	}
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every stored blob.
func (s *Store) Walk(fn func(Info) error) error {
	algos, err := os.ReadDir(filepath.Join(s.root, "blobs"))
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, a := range algos {
		entries, err := os.ReadDir(filepath.Join(s.root, "blobs", a.Name()))
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		for _, e := range entries {
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name())
			if d.Validate() != nil {
				continue // not a blob berth wrote; leave it alone
			}
			fi, err := e.Info()
			if err != nil {
				continue // removed while walking
			}
			if err := fn(Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// sweepIngest removes partial writes whose lock no process holds.
func (s *Store) sweepIngest() error {
	dir := filepath.Join(s.root, "ingest")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok {
			continue
		}
		l, got, err := flock.TryExclusive(filepath.Join(dir, e.Name()))
		if err != nil || !got {
			continue // a live writer owns it
		}
		_ = os.Remove(filepath.Join(dir, name+".data"))
		_ = os.Remove(filepath.Join(dir, e.Name()))
		_ = l.Unlock()
	}
	return nil
}

// OpenFile opens a stored blob as a file, for callers that seek or read at
// offsets (chunked uploads, archives).
func (s *Store) OpenFile(_ context.Context, d digest.Digest) (*os.File, error) {
	return s.open(d)
}
