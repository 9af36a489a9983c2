package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

func descOf(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func TestWriteAndRead(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	data := []byte("hello blob")
	d := descOf(data)
	require.False(t, s.Has(d.Digest))
	require.NoError(t, s.WriteBlob(ctx, d, bytes.NewReader(data)))
	require.True(t, s.Has(d.Digest))

	got, err := s.ReadBlob(ctx, d.Digest, 100)
	require.NoError(t, err)
	require.Equal(t, data, got)
	_, err = s.ReadBlob(ctx, d.Digest, 3)
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)

	replace := func(b []byte) {
		require.NoError(t, os.Remove(s.Path(d.Digest)))
		require.NoError(t, os.WriteFile(s.Path(d.Digest), b, 0o444))
	}
	replace([]byte("hellO blob"))
	_, err = s.ReadBlob(ctx, d.Digest, 100)
	require.ErrorContains(t, err, "damaged")
	replace(data)

	info, err := s.Info(ctx, d.Digest)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), info.Size)

	// Writing it again is a no-op, and a Writer says it exists.
	require.NoError(t, s.WriteBlob(ctx, d, bytes.NewReader(data)))
	_, err = s.Writer(ctx, d.Digest, d.Size)
	require.ErrorIs(t, err, errdefs.ErrAlreadyExists)

	var seen []digest.Digest
	require.NoError(t, s.Walk(func(i Info) error { seen = append(seen, i.Digest); return nil }))
	require.Equal(t, []digest.Digest{d.Digest}, seen)

	require.NoError(t, s.Delete(ctx, d.Digest))
	require.NoError(t, s.Delete(ctx, d.Digest), "deleting twice is fine")
	_, err = s.OpenBlob(ctx, d.Digest)
	require.ErrorIs(t, err, errdefs.ErrNotFound)
}

func TestVerification(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	data := []byte("the real content")
	d := descOf(data)

	err = s.WriteBlob(ctx, d, bytes.NewReader([]byte("the fake content")))
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
	require.Contains(t, err.Error(), "digest mismatch")
	require.False(t, s.Has(d.Digest))

	err = s.WriteBlob(ctx, d, bytes.NewReader(data[:4]))
	require.ErrorContains(t, err, "size 4")
	err = s.WriteBlob(ctx, d, bytes.NewReader(append(data, 'x')))
	require.ErrorContains(t, err, "more than the expected")
	require.False(t, s.Has(d.Digest))

	_, err = s.Writer(ctx, "sha256:nothex", 1)
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
	assertIngestEmpty(t, s)
}

func TestUnknownDigest(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	w, err := s.Writer(ctx, "", -1)
	require.NoError(t, err)
	_, err = io.WriteString(w, "layer")
	require.NoError(t, err)
	d, err := w.Commit()
	require.NoError(t, err)
	require.Equal(t, digest.FromString("layer"), d)
	require.True(t, s.Has(d))
	assertIngestEmpty(t, s)
}

// A writer killed mid-blob leaves a partial file; nothing under blobs/
// names it, the next Open sweeps it, and the next write succeeds.
func TestPartialWriteIsNeverVisible(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	require.NoError(t, err)
	data := bytes.Repeat([]byte("x"), 1<<16)
	d := descOf(data)
	w, err := s.Writer(ctx, d.Digest, d.Size)
	require.NoError(t, err)
	_, err = w.Write(data[:100])
	require.NoError(t, err)
	require.False(t, s.Has(d.Digest))
	// Simulate the process dying: drop the lock without cleaning up.
	require.NoError(t, w.lock.Unlock())

	s2, err := Open(root)
	require.NoError(t, err)
	assertIngestEmpty(t, s2)
	require.NoError(t, s2.WriteBlob(ctx, d, bytes.NewReader(data)))
	require.True(t, s2.Has(d.Digest))
}

// Concurrent writers of one blob: exactly one writes, the rest see it.
func TestConcurrentWritersWriteOnce(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	data := bytes.Repeat([]byte("y"), 1<<20)
	d := descOf(data)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrote, existed := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Writer(ctx, d.Digest, d.Size)
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, errdefs.ErrAlreadyExists) {
				existed++
				return
			}
			require.NoError(t, err)
			_, err = w.Write(data)
			require.NoError(t, err)
			_, err = w.Commit()
			require.NoError(t, err)
			wrote++
		}()
	}
	wg.Wait()
	require.Equal(t, 1, wrote)
	require.Equal(t, 7, existed)
	assertIngestEmpty(t, s)
}

func assertIngestEmpty(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), "ingest"))
	require.NoError(t, err)
	require.Empty(t, entries)
}
