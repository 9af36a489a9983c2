package content

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
)

// Writer writes one blob. Only one Writer exists for a digest across all
// processes: a second one waits until the first commits (then gets
// ErrAlreadyExists) or gives up (then takes over).
type Writer struct {
	s        *Store
	expected digest.Digest
	size     int64
	name     string
	f        *os.File
	h        hash.Hash
	algo     digest.Algorithm
	n        int64
	lock     *flock.Lock
	done     bool
}

// Writer starts writing the blob with digest d and size (-1 when unknown).
// An empty d means the digest is not known in advance (an uncompressed
// layer from an old archive); Commit then returns the computed digest. It
// returns an errdefs.ErrAlreadyExists error when the blob is already stored.
func (s *Store) Writer(ctx context.Context, d digest.Digest, size int64) (*Writer, error) {
	name, err := ingestName(d)
	if err != nil {
		return nil, err
	}
	if d != "" && s.Has(d) {
		return nil, errdefs.AlreadyExists("blob %s already exists", d)
	}
	lock, err := s.lockIngest(ctx, name)
	if err != nil {
		return nil, err
	}
	// Whoever held the lock before us may have committed the blob.
	if d != "" && s.Has(d) {
		_ = os.Remove(filepath.Join(s.root, "ingest", name+".lock"))
		_ = lock.Unlock()
		return nil, errdefs.AlreadyExists("blob %s already exists", d)
	}
	f, err := os.OpenFile(s.dataPath(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		_ = lock.Unlock()
		return nil, fmt.Errorf("ingest %s: %w", name, err)
	}
	algo := digest.Canonical
	if d != "" {
		algo = d.Algorithm()
	}
	return &Writer{s: s, expected: d, size: size, name: name, f: f, h: algo.Hash(), algo: algo, lock: lock}, nil
}

func ingestName(d digest.Digest) (string, error) {
	if d == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("ingest name: %w", err)
		}
		return "tmp-" + hex.EncodeToString(b[:]), nil
	}
	if err := d.Validate(); err != nil {
		return "", errdefs.Invalid("blob %q: %v", d, err)
	}
	if !d.Algorithm().Available() {
		return "", errdefs.Invalid("blob %s: digest algorithm not supported", d)
	}
	return d.Algorithm().String() + "-" + d.Encoded(), nil
}

func (s *Store) dataPath(name string) string {
	return filepath.Join(s.root, "ingest", name+".data")
}

// lockIngest takes the blob's ingest lock, retrying when a sweep removed the
// lock file between our open and our flock (we would then hold a lock on a
// file nobody else can find).
func (s *Store) lockIngest(ctx context.Context, name string) (*flock.Lock, error) {
	path := filepath.Join(s.root, "ingest", name+".lock")
	for range 10 {
		l, err := flock.Exclusive(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("ingest %s: %w", name, err)
		}
		if sameFile(l, path) {
			return l, nil
		}
		_ = l.Unlock()
	}
	return nil, fmt.Errorf("ingest %s: lock file keeps changing", name)
}

func sameFile(l *flock.Lock, path string) bool {
	held, err := l.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	if err != nil {
		return false
	}
	return os.SameFile(held, now)
}

// Write appends to the blob, refusing to grow past the announced size.
func (w *Writer) Write(p []byte) (int, error) {
	if w.size >= 0 && w.n+int64(len(p)) > w.size {
		return 0, errdefs.Invalid("blob %s: more than the expected %d bytes", w.expected, w.size)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("ingest %s: %w", w.name, err)
	}
	return n, nil
}

// Written is the number of bytes written so far.
func (w *Writer) Written() int64 { return w.n }

// Commit verifies size and digest and moves the blob into place.
func (w *Writer) Commit() (digest.Digest, error) {
	if w.done {
		return "", errors.New("blob writer already closed")
	}
	got := digest.NewDigestFromBytes(w.algo, w.h.Sum(nil))
	if w.size >= 0 && w.n != w.size {
		w.abort()
		return "", errdefs.Invalid("blob %s: size %d, expected %d", w.expected, w.n, w.size)
	}
	if w.expected != "" && got != w.expected {
		w.abort()
		return "", errdefs.Invalid("blob digest mismatch: got %s, expected %s", got, w.expected)
	}
	if err := w.f.Close(); err != nil {
		w.abort()
		return "", fmt.Errorf("ingest %s: %w", w.name, err)
	}
	if err := w.install(got); err != nil {
		w.abort()
		return "", err
	}
	w.finish()
	return got, nil
}

// install makes the verified file the stored blob. Blobs are read-only so a
// stray writer cannot change content under its digest.
func (w *Writer) install(d digest.Digest) error {
	data := w.s.dataPath(w.name)
	if err := os.Chmod(data, 0o444); err != nil {
		return fmt.Errorf("ingest %s: %w", w.name, err)
	}
	dst := w.s.Path(d)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("ingest %s: %w", w.name, err)
	}
	if err := os.Rename(data, dst); err != nil {
		return fmt.Errorf("commit blob %s: %w", d, err)
	}
	return nil
}

// Close abandons an uncommitted write; after Commit it does nothing.
func (w *Writer) Close() error {
	if !w.done {
		w.abort()
	}
	return nil
}

func (w *Writer) abort() {
	_ = w.f.Close()
	_ = os.Remove(w.s.dataPath(w.name))
	w.finish()
}

func (w *Writer) finish() {
	w.done = true
	_ = os.Remove(filepath.Join(w.s.root, "ingest", w.name+".lock"))
	_ = w.lock.Unlock()
}
