package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// staleTemp is how old a temporary file must be before prune takes it
// for the leftover of a crashed Put rather than one being written.
const staleTemp = time.Hour

// Entries lists every readable entry, most recently used first. Records
// removed while it runs are left out.
func (s *Store) Entries(ctx context.Context) ([]Entry, error) {
	l, err := s.scan(ctx)
	if err != nil {
		return nil, err
	}
	return l.entries, nil
}

// listing is what a scan of the directory found.
type listing struct {
	entries []Entry  // most recently used first
	junk    []string // bad records and stale temporary files
}

// scan reads every record under the store's directory.
func (s *Store) scan(ctx context.Context) (listing, error) {
	var l listing
	algos, err := os.ReadDir(s.dir)
	if err != nil {
		return l, fmt.Errorf("list build cache: %w", err)
	}
	for _, a := range algos {
		if !a.IsDir() || !digest.Algorithm(a.Name()).Available() {
			continue
		}
		if err := s.scanAlgorithm(ctx, digest.Algorithm(a.Name()), &l); err != nil {
			return listing{}, err
		}
	}
	sort.SliceStable(l.entries, func(i, j int) bool { return l.entries[i].LastUsed.After(l.entries[j].LastUsed) })
	return l, nil
}

// scanAlgorithm reads the records of keys of one algorithm.
func (s *Store) scanAlgorithm(ctx context.Context, algo digest.Algorithm, l *listing) error {
	dir := filepath.Join(s.dir, algo.String())
	files, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list build cache: %w", err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(dir, f.Name())
		if strings.HasPrefix(f.Name(), tempPrefix) {
			if info, err := f.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
				l.junk = append(l.junk, p)
			}
			continue
		}
		hex, ok := strings.CutSuffix(f.Name(), recordExt)
		key := digest.NewDigestFromEncoded(algo, hex)
		if !ok || key.Validate() != nil {
			continue // not a record of this store's
		}
		e, _, err := readRecord(p)
		var bad *badRecordError
		switch {
		case errors.As(err, &bad) || (err == nil && e.Key != key):
			l.junk = append(l.junk, p)
		case err == nil:
			l.entries = append(l.entries, e)
		}
		// Any other error is a record removed meanwhile: left out.
	}
	return nil
}

// PruneOptions say which entries prune removes.
type PruneOptions struct {
	// All removes every entry.
	All bool
	// Until removes entries not used for at least this long (0: ignored).
	Until time.Duration
	// KeepBytes, after the above, removes the least recently used entries
	// until the sum of their Size is at most this (0: ignored).
	KeepBytes int64
	// Filter, when set, must accept an entry for it to be removed.
	Filter func(Entry) bool
}

// PruneReport says what prune removed.
type PruneReport struct {
	// Removed are the entries that went.
	Removed []Entry
	// Reclaimed is the sum of their Size.
	Reclaimed int64
}

// Prune removes entries as o asks and returns what went; the blobs they
// name are the caller's to collect. It also clears bad records and the
// leftovers of crashed writes. An entry another process used or removed
// while prune ran is left alone and not reported.
func (s *Store) Prune(ctx context.Context, o PruneOptions) (PruneReport, error) {
	l, err := s.scan(ctx)
	if err != nil {
		return PruneReport{}, err
	}
	for _, p := range l.junk {
		_ = os.Remove(p)
	}
	var rep PruneReport
	now := time.Now()
	var kept []Entry
	for _, e := range l.entries {
		expired := o.All || (o.Until > 0 && now.Sub(e.LastUsed) >= o.Until)
		if expired && o.accepts(e) {
			removed, err := s.removeListed(e)
			if err != nil {
				return rep, err
			}
			if removed {
				rep.add(e)
				continue
			}
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
	// kept is most recently used first: the least recent go first.
	for i := len(kept) - 1; i >= 0 && total > o.KeepBytes; i-- {
		e := kept[i]
		if !o.accepts(e) {
			continue
		}
		removed, err := s.removeListed(e)
		if err != nil {
			return rep, err
		}
		if removed {
			rep.add(e)
			total -= e.Size
		}
	}
	return rep, nil
}

func (o PruneOptions) accepts(e Entry) bool { return o.Filter == nil || o.Filter(e) }

func (r *PruneReport) add(e Entry) {
	r.Removed = append(r.Removed, e)
	r.Reclaimed += e.Size
}

// removeListed removes e's record if it is still as it was listed: a
// build in another process that used the entry since (moving its
// modification time) or replaced it keeps it. It reports whether the
// record went.
func (s *Store) removeListed(e Entry) (bool, error) {
	p, err := s.path(e.Key)
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("prune cache entry %s: %w", e.Key, err)
	}
	if fi.ModTime().After(e.LastUsed) {
		return false, nil
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("prune cache entry %s: %w", e.Key, err)
	}
	return true, nil
}
