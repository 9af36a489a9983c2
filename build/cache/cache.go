// Package cache keeps what build steps produced, by cache key, so that a
// build with nothing changed does no work but lookups. One small JSON
// file per entry, replaced by rename: processes building at once see an
// entry whole or not at all, and no lookup reads more than its own file.
//
// A record's modification time is when it was last used: a hit moves it
// forward with one utimes call instead of rewriting the record.
package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	// touchEvery bounds how often a hit moves an entry's LastUsed.
	touchEvery = time.Minute
	// maxRecord bounds what is read of one record: an image config with
	// a long history is some hundred kilobytes, never this.
	maxRecord = 16 << 20
	// recordExt names record files; temporary files never end with it.
	recordExt = ".json"
	// tempPrefix names the files a Put writes before renaming them.
	tempPrefix = ".tmp-"
)

// Entry is what one cached build step produced.
type Entry struct {
	// Key is the step's cache key.
	Key digest.Digest `json:"key"`
	// Layer is the layer blob the step added; nil when it changed no file.
	Layer *ocispec.Descriptor `json:"layer,omitempty"`
	// DiffID is the uncompressed layer's digest ("" with Layer nil).
	DiffID digest.Digest `json:"diffID,omitempty"`
	// Config is the image config after the step, opaque here.
	Config json.RawMessage `json:"config,omitempty"`
	// Created is when the step ran.
	Created time.Time `json:"created"`
	// LastUsed is when a build last used the entry, to a minute.
	LastUsed time.Time `json:"lastUsed"`
	// Size is the layer blob's size (0 without one), for prune reports.
	Size int64 `json:"size,omitempty"`
}

// Store is a cache directory. It keeps no state of its own, so any number
// of Stores, in any number of processes, may share one directory.
type Store struct {
	dir string
}

// Open opens (creating) a cache under dir. It reads no entry.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open build cache: %w", err)
	}
	return &Store{dir: dir}, nil
}

// path is key's record: <dir>/<algorithm>/<hex>.json. Validating the key
// first keeps a malformed one from naming a path outside dir.
func (s *Store) path(key digest.Digest) (string, error) {
	if err := key.Validate(); err != nil {
		return "", fmt.Errorf("cache key %q: %w", key, err)
	}
	return filepath.Join(s.dir, key.Algorithm().String(), key.Encoded()+recordExt), nil
}

// Get returns the entry for key; ok is false on a miss. A missing record
// is a miss, and so is a truncated or unparseable one, which is removed.
func (s *Store) Get(key digest.Digest) (Entry, bool, error) {
	p, err := s.path(key)
	if err != nil {
		return Entry{}, false, err
	}
	e, fi, err := readRecord(p)
	if errors.Is(err, os.ErrNotExist) {
		return Entry{}, false, nil
	}
	var bad *badRecordError
	if errors.As(err, &bad) || (err == nil && e.Key != key) {
		discard(p, fi)
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("read cache entry %s: %w", key, err)
	}
	if now := time.Now().UTC(); now.Sub(e.LastUsed) >= touchEvery {
		// Best effort: a cache on a read-only file system still serves
		// hits, it only forgets that they happened.
		if os.Chtimes(p, now, now) == nil {
			e.LastUsed = now
		}
	}
	return e, true, nil
}

// badRecordError is a record that exists but cannot be used.
type badRecordError struct{ err error }

func (e *badRecordError) Error() string { return "bad cache record: " + e.err.Error() }
func (e *badRecordError) Unwrap() error { return e.err }

// readRecord reads and decodes the record at p. Its LastUsed is the later
// of the recorded time and the file's modification time, which hits move.
func readRecord(p string) (Entry, os.FileInfo, error) {
	f, err := os.Open(p)
	if err != nil {
		return Entry{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Entry{}, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return Entry{}, fi, err
	}
	if len(data) > maxRecord {
		return Entry{}, fi, &badRecordError{errors.New("record too large")}
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, fi, &badRecordError{err}
	}
	if mt := fi.ModTime().UTC(); mt.After(e.LastUsed) {
		e.LastUsed = mt
	}
	return e, fi, nil
}

// discard removes a bad record, unless another process replaced it with
// a good one since it was read.
func discard(p string, read os.FileInfo) {
	cur, err := os.Stat(p)
	if err == nil && read != nil && os.SameFile(cur, read) {
		_ = os.Remove(p)
	}
}

// Put stores e, replacing any entry of its key. The record is written to
// a temporary file beside it and renamed over it, so readers in other
// processes see the old record or the new one, never part of one. A zero
// LastUsed means now; Size defaults to the layer's.
func (s *Store) Put(e Entry) error {
	p, err := s.path(e.Key)
	if err != nil {
		return err
	}
	if e.LastUsed.IsZero() {
		e.LastUsed = time.Now()
	}
	e.LastUsed = e.LastUsed.UTC()
	if e.Size == 0 && e.Layer != nil {
		e.Size = e.Layer.Size
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode cache entry %s: %w", e.Key, err)
	}
	if err := writeRecord(p, data, e.LastUsed); err != nil {
		return fmt.Errorf("write cache entry %s: %w", e.Key, err)
	}
	return nil
}

// writeRecord writes data to p by rename, with used as its modification
// time. No fsync: after a crash a record may be empty, which reads as a
// miss.
func writeRecord(p string, data []byte, used time.Time) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(f.Name(), used, used)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// Remove deletes one entry; a missing one is no error.
func (s *Store) Remove(key digest.Digest) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove cache entry %s: %w", key, err)
	}
	return nil
}
