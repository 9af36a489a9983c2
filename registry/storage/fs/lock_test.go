package fs

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// opened is the result of a Writer call made on another goroutine.
type opened struct {
	w   storage.Writer
	err error
}

// openAsync calls Writer on another goroutine and returns where its
// result arrives.
func openAsync(ctx context.Context, d *Driver, p string, resume bool) <-chan opened {
	ch := make(chan opened, 1)
	go func() {
		w, err := d.Writer(ctx, p, resume)
		ch <- opened{w, err}
	}()
	return ch
}

// notYet checks that nothing arrives on ch for a while: the call waits.
func notYet(t *testing.T, ch <-chan opened) {
	t.Helper()
	select {
	case o := <-ch:
		if o.w != nil {
			o.w.Close()
		}
		t.Fatalf("Writer returned (err %v) while another writer held the upload", o.err)
	case <-time.After(100 * time.Millisecond):
	}
}

// arrived waits, up to 10 s, for the result on ch.
func arrived(t *testing.T, ch <-chan opened) opened {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("Writer still waiting 10 s after the upload was let go")
		return opened{}
	}
}

func TestWriterHoldsUploadAlone(t *testing.T) {
	root := t.TempDir()
	a, b := open(t, root, false), open(t, root, false)
	ctx := context.Background()
	w, err := a.Writer(ctx, "u/data", false)
	require.NoError(t, err)
	_, err = w.Write([]byte("first"))
	require.NoError(t, err)

	// Another driver on the root (as another replica would) waits to
	// resume, then sees everything the first wrote.
	ch := openAsync(ctx, b, "u/data", true)
	notYet(t, ch)
	require.NoError(t, w.Close())
	o := arrived(t, ch)
	require.NoError(t, o.err)
	require.Equal(t, int64(5), o.w.Size())

	// A waiter gives up when its context ends.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = a.Writer(short, "u/data", true)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, o.w.Close())
}

func TestNewUploadWaitsForHolder(t *testing.T) {
	d := open(t, t.TempDir(), false)
	ctx := context.Background()
	old, err := d.Writer(ctx, "u/data", false)
	require.NoError(t, err)

	// A new upload at the same path replaces the old one only once its
	// holder lets go, so the holder never writes to a file without a
	// name.
	ch := openAsync(ctx, d, "u/data", false)
	notYet(t, ch)
	_, err = old.Write([]byte("old"))
	require.NoError(t, err)
	require.NoError(t, old.Close())
	o := arrived(t, ch)
	require.NoError(t, o.err)
	require.Equal(t, int64(0), o.w.Size())
	_, err = o.w.Write([]byte("new"))
	require.NoError(t, err)
	require.NoError(t, o.w.Commit(ctx))
	requireObject(t, d, "u/data", "new")
}

func TestResumeAfterReplaceFindsNewUpload(t *testing.T) {
	d := open(t, t.TempDir(), false)
	ctx := context.Background()
	w, err := d.Writer(ctx, "u/data", false)
	require.NoError(t, err)
	_, err = w.Write([]byte("0123"))
	require.NoError(t, err)

	// A resumer that waits while the holder moves the upload away finds
	// no upload rather than appending to the moved object.
	ch := openAsync(ctx, d, "u/data", true)
	notYet(t, ch)
	ex, ok := w.(storage.ExclusiveWriter)
	require.True(t, ok, "the filesystem driver's writers hold their uploads alone")
	require.NoError(t, ex.CommitTo(ctx, "blobs/x/data"))
	o := arrived(t, ch)
	require.True(t, errors.Is(o.err, errdefs.ErrNotFound), "resume after the move: %v", o.err)
	requireObject(t, d, "blobs/x/data", "0123")
	_, err = d.Stat(ctx, "u/data")
	require.ErrorIs(t, err, errdefs.ErrNotFound)
}

func requireObject(t *testing.T, d *Driver, p, want string) {
	t.Helper()
	rc, err := d.Reader(context.Background(), p, 0)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, want, string(got))
}
