package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func key(n int) digest.Digest { return digest.FromString(fmt.Sprintf("step %d", n)) }

func layer(size int64) *ocispec.Descriptor {
	return &ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest:    digest.FromString(fmt.Sprintf("blob %d", size)),
		Size:      size,
	}
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	require.NoError(t, err)
	return s
}

func recordPath(dir string, k digest.Digest) string {
	return filepath.Join(dir, k.Algorithm().String(), k.Encoded()+".json")
}

func keys(entries []Entry) []digest.Digest {
	out := make([]digest.Digest, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Key)
	}
	return out
}

func TestPutGet(t *testing.T) {
	created := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		in       Entry
		wantSize int64
	}{
		{
			name:     "a step that added a layer",
			in:       Entry{Key: key(1), Layer: layer(1234), DiffID: digest.FromString("diff"), Config: json.RawMessage(`{"architecture":"amd64"}`), Created: created},
			wantSize: 1234,
		},
		{
			name: "a step that changed no file",
			in:   Entry{Key: key(2), Config: json.RawMessage(`{"config":{"Env":["A=1"]}}`), Created: created},
		},
		{
			name:     "size given",
			in:       Entry{Key: key(3), Layer: layer(10), Size: 10, Created: created},
			wantSize: 10,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			before := time.Now().UTC().Add(-time.Second)
			require.NoError(t, s.Put(tc.in))
			got, ok, err := s.Get(tc.in.Key)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, tc.in.Key, got.Key)
			assert.Equal(t, tc.in.Layer, got.Layer)
			assert.Equal(t, tc.in.DiffID, got.DiffID)
			if tc.in.Config == nil {
				assert.Nil(t, got.Config)
			} else {
				assert.JSONEq(t, string(tc.in.Config), string(got.Config))
			}
			assert.True(t, got.Created.Equal(created))
			assert.True(t, got.LastUsed.After(before), "a zero LastUsed is now")
			assert.Equal(t, tc.wantSize, got.Size)
		})
	}
}

func TestGetMiss(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	good, err := json.Marshal(Entry{Key: key(1)})
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		content []byte // nil: no record
	}{
		{"missing", nil},
		{"empty after a crash", []byte{}},
		{"truncated", good[:len(good)/2]},
		{"garbage", []byte("\x00\x01 not json")},
		{"another key's record", good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := key(2)
			p := recordPath(dir, k)
			if tc.content != nil {
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
				require.NoError(t, os.WriteFile(p, tc.content, 0o600))
			}
			e, ok, err := s.Get(k)
			require.NoError(t, err)
			assert.False(t, ok)
			assert.Equal(t, Entry{}, e)
			assert.NoFileExists(t, p, "a bad record is removed")
		})
	}
}

func TestBadKeys(t *testing.T) {
	s := open(t, t.TempDir())
	for _, k := range []digest.Digest{"", "sha256:../../etc/passwd", "md5:abc", "sha256:abc"} {
		_, _, err := s.Get(k)
		assert.Error(t, err, "get %q", k)
		assert.Error(t, s.Put(Entry{Key: k}), "put %q", k)
		assert.Error(t, s.Remove(k), "remove %q", k)
	}
}

// TestGetTouch checks a hit moves LastUsed forward at most once a minute,
// by the record's modification time, and that every Store sees it.
func TestGetTouch(t *testing.T) {
	dir := t.TempDir()
	a, b := open(t, dir), open(t, dir)
	old := time.Now().Add(-2 * time.Hour).UTC()
	require.NoError(t, a.Put(Entry{Key: key(1), LastUsed: old}))
	p := recordPath(dir, key(1))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(old), "a record's mtime is its LastUsed")

	e, ok, err := a.Get(key(1))
	require.NoError(t, err)
	require.True(t, ok)
	assert.WithinDuration(t, time.Now(), e.LastUsed, 5*time.Second)

	// Used 30 seconds ago: a hit now writes nothing.
	recent := time.Now().Add(-30 * time.Second)
	require.NoError(t, os.Chtimes(p, recent, recent))
	e, ok, err = b.Get(key(1))
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, e.LastUsed.Equal(recent.UTC()), "got %v want %v", e.LastUsed, recent)
	fi, err = os.Stat(p)
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(recent))

	entries, err := b.Entries(context.Background())
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.True(t, entries[0].LastUsed.Equal(recent.UTC()))
}

// TestTwoStores opens one directory twice, as two processes would.
func TestTwoStores(t *testing.T) {
	dir := t.TempDir()
	a, b := open(t, dir), open(t, dir)
	require.NoError(t, a.Put(Entry{Key: key(1), Layer: layer(5)}))
	require.NoError(t, b.Put(Entry{Key: key(2)}))

	for _, s := range []*Store{a, b} {
		for _, k := range []digest.Digest{key(1), key(2)} {
			_, ok, err := s.Get(k)
			require.NoError(t, err)
			assert.True(t, ok)
		}
		entries, err := s.Entries(context.Background())
		require.NoError(t, err)
		assert.ElementsMatch(t, []digest.Digest{key(1), key(2)}, keys(entries))
	}

	require.NoError(t, b.Remove(key(1)))
	require.NoError(t, b.Remove(key(1)), "removing a missing entry is fine")
	_, ok, err := a.Get(key(1))
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestOtherProcess writes an entry from a child process and reads it
// here, and the other way round.
func TestOtherProcess(t *testing.T) {
	if dir := os.Getenv("BERTH_CACHE_TEST_CHILD"); dir != "" {
		s, err := Open(dir)
		require.NoError(t, err)
		_, ok, err := s.Get(key(1))
		require.NoError(t, err)
		require.True(t, ok, "the parent's entry")
		require.NoError(t, s.Put(Entry{Key: key(2), Layer: layer(7)}))
		return
	}
	dir := t.TempDir()
	s := open(t, dir)
	require.NoError(t, s.Put(Entry{Key: key(1)}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestOtherProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BERTH_CACHE_TEST_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	e, ok, err := s.Get(key(2))
	require.NoError(t, err)
	require.True(t, ok, "the child's entry")
	assert.Equal(t, int64(7), e.Size)
}

func TestEntriesOrder(t *testing.T) {
	s := open(t, t.TempDir())
	now := time.Now()
	for i, age := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour} {
		require.NoError(t, s.Put(Entry{Key: key(i), LastUsed: now.Add(-age)}))
	}
	entries, err := s.Entries(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []digest.Digest{key(1), key(2), key(0)}, keys(entries), "most recently used first")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Entries(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestPrune(t *testing.T) {
	// Entries 0..5: used 0..5 hours ago, of 100, 200, ... 600 bytes
	// (2100 in all).
	const n = 6
	size := func(i int) int64 { return int64(i+1) * 100 }
	for _, tc := range []struct {
		name    string
		o       PruneOptions
		removed []int
	}{
		{name: "nothing asked", o: PruneOptions{}, removed: nil},
		{name: "all", o: PruneOptions{All: true}, removed: []int{0, 1, 2, 3, 4, 5}},
		{name: "unused for 3h", o: PruneOptions{Until: 3*time.Hour - time.Minute}, removed: []int{3, 4, 5}},
		{name: "unused for 10h", o: PruneOptions{Until: 10 * time.Hour}, removed: nil},
		// Dropping 5 and 4 leaves 1000.
		{name: "keep 1000 bytes", o: PruneOptions{KeepBytes: 1000}, removed: []int{4, 5}},
		{name: "keep 999 bytes", o: PruneOptions{KeepBytes: 999}, removed: []int{3, 4, 5}},
		{name: "keep 2100 bytes", o: PruneOptions{KeepBytes: 2100}, removed: nil},
		{name: "keep 1 byte", o: PruneOptions{KeepBytes: 1}, removed: []int{0, 1, 2, 3, 4, 5}},
		// Until takes 4 and 5; 1000 bytes are left, and 0 and 1 fit in 400.
		{name: "until then keep", o: PruneOptions{Until: 4*time.Hour - time.Minute, KeepBytes: 400}, removed: []int{2, 3, 4, 5}},
		{
			name:    "filter on all",
			o:       PruneOptions{All: true, Filter: func(e Entry) bool { return e.Size >= 400 }},
			removed: []int{3, 4, 5},
		},
		{
			// 5 is kept by the filter: 4 and 3 go (1200 left), then 2 (900).
			name:    "filter on keep bytes",
			o:       PruneOptions{KeepBytes: 1000, Filter: func(e Entry) bool { return e.Size != 600 }},
			removed: []int{2, 3, 4},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			now := time.Now()
			for i := range n {
				e := Entry{Key: key(i), LastUsed: now.Add(-time.Duration(i) * time.Hour)}
				if i%2 == 0 {
					e.Layer = layer(size(i))
				} else {
					e.Size = size(i)
				}
				require.NoError(t, s.Put(e))
			}
			rep, err := s.Prune(context.Background(), tc.o)
			require.NoError(t, err)

			var want []digest.Digest
			var reclaimed int64
			removed := map[int]bool{}
			for _, i := range tc.removed {
				want = append(want, key(i))
				reclaimed += size(i)
				removed[i] = true
			}
			assert.ElementsMatch(t, want, keys(rep.Removed))
			assert.Equal(t, reclaimed, rep.Reclaimed)

			// What is left, seen from a second Store.
			left, err := open(t, dir).Entries(context.Background())
			require.NoError(t, err)
			var wantLeft []digest.Digest
			for i := range n {
				if !removed[i] {
					wantLeft = append(wantLeft, key(i))
				}
			}
			assert.ElementsMatch(t, wantLeft, keys(left))
			for _, k := range want {
				_, ok, err := s.Get(k)
				require.NoError(t, err)
				assert.False(t, ok)
			}
		})
	}
}

// TestPruneKeepsUsedMeanwhile: an entry another process used after prune
// listed it stays.
func TestPruneKeepsUsedMeanwhile(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	require.NoError(t, s.Put(Entry{Key: key(1), LastUsed: time.Now().Add(-time.Hour)}))
	l, err := s.scan(context.Background())
	require.NoError(t, err)
	require.Len(t, l.entries, 1)
	_, ok, err := open(t, dir).Get(key(1)) // the other process's hit
	require.NoError(t, err)
	require.True(t, ok)
	removed, err := s.removeListed(l.entries[0])
	require.NoError(t, err)
	assert.False(t, removed)
	_, ok, err = s.Get(key(1))
	require.NoError(t, err)
	assert.True(t, ok)
}

// TestPruneClearsJunk: bad records and old temporary files go; a fresh
// temporary file (a Put under way) and foreign files stay.
func TestPruneClearsJunk(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	require.NoError(t, s.Put(Entry{Key: key(1)}))
	algo := filepath.Join(dir, "sha256")
	bad := recordPath(dir, key(2))
	require.NoError(t, os.WriteFile(bad, []byte("{"), 0o600))
	staleTmp := filepath.Join(algo, ".tmp-1")
	freshTmp := filepath.Join(algo, ".tmp-2")
	for _, p := range []string{staleTmp, freshTmp} {
		require.NoError(t, os.WriteFile(p, []byte("{"), 0o600))
	}
	old := time.Now().Add(-2 * staleTemp)
	require.NoError(t, os.Chtimes(staleTmp, old, old))
	other := filepath.Join(algo, "README")
	require.NoError(t, os.WriteFile(other, nil, 0o600))

	entries, err := s.Entries(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []digest.Digest{key(1)}, keys(entries), "junk is not listed")

	rep, err := s.Prune(context.Background(), PruneOptions{})
	require.NoError(t, err)
	assert.Empty(t, rep.Removed)
	assert.NoFileExists(t, bad)
	assert.NoFileExists(t, staleTmp)
	assert.FileExists(t, freshTmp)
	assert.FileExists(t, other)
	assert.FileExists(t, recordPath(dir, key(1)))
}

// TestConcurrent runs writers, readers and a pruner on one directory: a
// reader sees a whole entry or a miss, never an error or half a record.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	config := json.RawMessage(`{"pad":"` + strings.Repeat("a", 64<<10) + `"}`)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir)
			if err != nil {
				fail(err)
				return
			}
			for i := range 50 {
				k := key(i % 5)
				if w%2 == 0 {
					if err := s.Put(Entry{Key: k, Config: config, Layer: layer(int64(i))}); err != nil {
						fail(err)
					}
					continue
				}
				e, ok, err := s.Get(k)
				if err != nil {
					fail(err)
				} else if ok && (e.Key != k || len(e.Config) != len(config)) {
					fail(fmt.Errorf("half an entry for %s", k))
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s, err := Open(dir)
		if err != nil {
			fail(err)
			return
		}
		for range 10 {
			if _, err := s.Prune(context.Background(), PruneOptions{All: true}); err != nil {
				fail(err)
			}
		}
	}()
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	// No temporary file is left behind.
	files, err := os.ReadDir(filepath.Join(dir, "sha256"))
	require.NoError(t, err)
	for _, f := range files {
		assert.Regexp(t, `^[0-9a-f]{64}\.json$`, f.Name())
	}
}
