// Package cache keeps what build steps produced, by cache key, so that a
// build with nothing changed does no work but lookups. One small JSON
// file per entry, replaced by rename: processes building at once see an
// entry whole or not at all, and no lookup reads more than its own file.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// touchEvery bounds how often a hit rewrites an entry's LastUsed.
const touchEvery = time.Minute

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
	// LastUsed is when a build last used the entry (to a minute).
	LastUsed time.Time `json:"lastUsed"`
	// Size is the layer blob's size, for prune reports.
	Size int64 `json:"size,omitempty"`
}

// Store is a cache directory.
type Store struct {
	dir string
}

// Open opens (creating) a cache under dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open build cache: %w", err)
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(key digest.Digest) (string, error) {
	if err := key.Validate(); err != nil {
		return "", fmt.Errorf("cache key %q: %w", key, err)
	}
	return filepath.Join(s.dir, key.Algorithm().String(), key.Encoded()+".json"), nil
}

// Get returns the entry for key; ok is false on a miss. An unreadable
// record is a miss, and is removed.
func (s *Store) Get(key digest.Digest) (Entry, bool, error) {
	p, err := s.path(key)
	if err != nil {
		return Entry{}, false, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("read cache entry: %w", err)
	}
	var e Entry
	if json.Unmarshal(data, &e) != nil || e.Key != key {
		_ = os.Remove(p)
		return Entry{}, false, nil
	}
	if now := time.Now().UTC(); now.Sub(e.LastUsed) >= touchEvery {
		e.LastUsed = now
		if err := s.Put(e); err != nil {
			return Entry{}, false, err
		}
	}
	return e, true, nil
}

// Put stores e, replacing any entry of its key.
func (s *Store) Put(e Entry) error {
	p, err := s.path(e.Key)
	if err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode cache entry: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("write cache entry: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return fmt.Errorf("write cache entry: %w", err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), p)
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write cache entry: %w", werr)
	}
	return nil
}

// Remove deletes one entry; a missing one is fine.
func (s *Store) Remove(key digest.Digest) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove cache entry: %w", err)
	}
	return nil
}

// Entries lists every readable entry, most recently used first.
func (s *Store) Entries(ctx context.Context) ([]Entry, error) {
	algos, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list build cache: %w", err)
	}
	var out []Entry
	for _, a := range algos {
		files, err := os.ReadDir(filepath.Join(s.dir, a.Name()))
		if err != nil {
			continue // not a directory of entries
		}
		for _, f := range files {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			name, ok := strings.CutSuffix(f.Name(), ".json")
			if !ok || strings.HasPrefix(name, ".") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(s.dir, a.Name(), f.Name()))
			var e Entry
			if err != nil || json.Unmarshal(data, &e) != nil {
				continue // removed meanwhile, or half-written by a crash
			}
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// PruneOptions say which entries prune removes.
type PruneOptions struct {
	// All removes every entry.
	All bool
	// Until removes entries not used for at least this long.
	Until time.Duration
	// KeepBytes, after the rest, removes the least recently used entries
	// until their sizes sum to at most this.
	KeepBytes int64
	// Filter, when set, must accept an entry for it to be removed.
	Filter func(Entry) bool
}

// PruneReport says what prune removed.
type PruneReport struct {
	Removed   []Entry
	Reclaimed int64
}

// Prune removes entries as o asks; the blobs they named are the caller's
// to collect.
func (s *Store) Prune(ctx context.Context, o PruneOptions) (PruneReport, error) {
	entries, err := s.Entries(ctx)
	if err != nil {
		return PruneReport{}, err
	}
	var rep PruneReport
	remove := func(e Entry) error {
		if err := s.Remove(e.Key); err != nil {
			return err
		}
		rep.Removed = append(rep.Removed, e)
		rep.Reclaimed += e.Size
		return nil
	}
	now := time.Now()
	var kept []Entry
	for _, e := range entries {
		old := o.All || (o.Until > 0 && now.Sub(e.LastUsed) >= o.Until)
		if old && (o.Filter == nil || o.Filter(e)) {
			if err := remove(e); err != nil {
				return rep, err
			}
			continue
		}
		kept = append(kept, e)
	}
	if o.KeepBytes <= 0 {
		return rep, nil
	}
	var total int64
	for _, e := range kept {
		total += e.Size
	}
	// kept is most recent first: drop from its end.
	for i := len(kept) - 1; i >= 0 && total > o.KeepBytes; i-- {
		if o.Filter != nil && !o.Filter(kept[i]) {
			continue
		}
		if err := remove(kept[i]); err != nil {
			return rep, err
		}
		total -= kept[i].Size
	}
	return rep, nil
}
