package storagetest

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// uploadTests are the cases on Writer: uploads written in chunks, closed,
// resumed by another driver instance, committed or canceled.
func uploadTests() []suiteTest {
	return []suiteTest{
		{"UploadCommit", testUploadCommit},
		{"UploadResumeAcrossInstances", testUploadResume},
		{"UploadResumeThenCommit", testUploadResumeCommit},
		{"UploadEmpty", testUploadEmpty},
		{"UploadCancel", testUploadCancel},
		{"UploadResumeMissing", testUploadResumeMissing},
		{"UploadNewDiscardsOld", testUploadNewDiscardsOld},
		{"UploadClosedWriterRefuses", testUploadClosed},
		{"UploadLarge", testUploadLarge},
	}
}

// open opens the upload at p and checks its size.
func open(t *testing.T, d storage.Driver, p string, resume bool, size int64) storage.Writer {
	t.Helper()
	w, err := d.Writer(t.Context(), p, resume)
	require.NoError(t, err, "writer %s (resume %v)", p, resume)
	require.Equal(t, size, w.Size(), "writer %s (resume %v): size", p, resume)
	return w
}

// write appends b and checks the count and the size after.
func write(t *testing.T, w storage.Writer, b []byte) {
	t.Helper()
	before := w.Size()
	n, err := w.Write(b)
	require.NoError(t, err, "write %d bytes", len(b))
	require.Equal(t, len(b), n, "write: count")
	require.Equal(t, before+int64(len(b)), w.Size(), "size after write")
}

func testUploadCommit(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	w := open(t, d, "up/one/data", false, 0)
	write(t, w, []byte("hello "))
	write(t, w, []byte("world"))
	require.NoError(t, w.Commit(t.Context()))
	requireContent(t, d, "up/one/data", []byte("hello world"))
	requireContent(t, newDriver(), "up/one/data", []byte("hello world"))
}

// testUploadResume writes an upload in three sessions, each on its own
// driver instance as on three replicas.
func testUploadResume(t *testing.T, newDriver func() storage.Driver) {
	p := "up/resume/data"
	c1, c2, c3 := content(1, 1000), content(2, 3), content(3, 70001)

	w := open(t, newDriver(), p, false, 0)
	write(t, w, c1)
	require.NoError(t, w.Close())

	w = open(t, newDriver(), p, true, 1000)
	write(t, w, c2)
	require.NoError(t, w.Close())

	w = open(t, newDriver(), p, true, 1003)
	write(t, w, c3)
	require.NoError(t, w.Commit(t.Context()))

	want := append(append(append([]byte(nil), c1...), c2...), c3...)
	requireContent(t, newDriver(), p, want)
}

func testUploadResumeCommit(t *testing.T, newDriver func() storage.Driver) {
	p := "up/late/data"
	want := content(1, 5000)
	w := open(t, newDriver(), p, false, 0)
	write(t, w, want)
	require.NoError(t, w.Close())
	// The commit comes later, elsewhere, with nothing more written.
	w = open(t, newDriver(), p, true, 5000)
	require.NoError(t, w.Commit(t.Context()))
	requireContent(t, newDriver(), p, want)
}

func testUploadEmpty(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	w := open(t, d, "up/empty/data", false, 0)
	require.NoError(t, w.Commit(t.Context()))
	requireContent(t, d, "up/empty/data", nil)

	w = open(t, d, "up/empty2/data", false, 0)
	require.NoError(t, w.Close())
	w = open(t, newDriver(), "up/empty2/data", true, 0)
	require.NoError(t, w.Commit(t.Context()))
	requireContent(t, d, "up/empty2/data", nil)
}

func testUploadCancel(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "up/keep", []byte("x"))

	// Canceled by the writer that wrote it.
	w := open(t, d, "up/c1/data", false, 0)
	write(t, w, content(1, 100))
	require.NoError(t, w.Cancel(t.Context()))
	_, err := d.Writer(t.Context(), "up/c1/data", true)
	requireClass(t, err, errdefs.ErrNotFound, "resume of a canceled upload")
	requireGone(t, d, "up/c1")

	// Canceled by a writer on another instance that resumed it.
	w = open(t, d, "up/c2/data", false, 0)
	write(t, w, content(2, 100))
	require.NoError(t, w.Close())
	w = open(t, newDriver(), "up/c2/data", true, 100)
	require.NoError(t, w.Cancel(t.Context()))
	_, err = newDriver().Writer(t.Context(), "up/c2/data", true)
	requireClass(t, err, errdefs.ErrNotFound, "resume of a canceled upload")
	requireGone(t, d, "up/c2")

	list, err := d.List(t.Context(), "up")
	require.NoError(t, err)
	require.Equal(t, []string{"up/keep"}, list)
}

func testUploadResumeMissing(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "up/dir/obj", []byte("x"))
	for _, p := range []string{"up/missing/data", "missing", "up/dir", "up/dir/obj/child"} {
		_, err := d.Writer(t.Context(), p, true)
		requireClass(t, err, errdefs.ErrNotFound, "resume "+p)
	}
}

func testUploadNewDiscardsOld(t *testing.T, newDriver func() storage.Driver) {
	p := "up/restart/data"
	w := open(t, newDriver(), p, false, 0)
	write(t, w, []byte("abc"))
	require.NoError(t, w.Close())

	w = open(t, newDriver(), p, false, 0)
	write(t, w, []byte("xy"))
	require.NoError(t, w.Close())

	w = open(t, newDriver(), p, true, 2)
	require.NoError(t, w.Commit(t.Context()))
	requireContent(t, newDriver(), p, []byte("xy"))
}

func testUploadClosed(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	ctx := t.Context()

	w := open(t, d, "up/closed/data", false, 0)
	write(t, w, []byte("abc"))
	require.NoError(t, w.Close())
	_, err := w.Write([]byte("more"))
	require.Error(t, err, "write after close")
	require.Error(t, w.Commit(ctx), "commit after close")

	w = open(t, d, "up/closed/data", true, 3)
	require.NoError(t, w.Commit(ctx))
	_, err = w.Write([]byte("more"))
	require.Error(t, err, "write after commit")
	require.Error(t, w.Commit(ctx), "commit after commit")
	require.Error(t, w.Cancel(ctx), "cancel after commit")
	requireContent(t, d, "up/closed/data", []byte("abc"))

	w = open(t, d, "up/canceled/data", false, 0)
	write(t, w, []byte("abc"))
	require.NoError(t, w.Cancel(ctx))
	_, err = w.Write([]byte("more"))
	require.Error(t, err, "write after cancel")
	require.Error(t, w.Commit(ctx), "commit after cancel")
	_, err = d.Stat(ctx, "up/canceled/data")
	requireClass(t, err, errdefs.ErrNotFound, "stat of a canceled upload")
}

// testUploadLarge writes 20 chunks of 1 MiB and an odd tail, closing and
// resuming on another instance every few chunks: a backend that buffers
// chunks into parts of its own (S3's 5 MiB minimum) meets every boundary.
func testUploadLarge(t *testing.T, newDriver func() storage.Driver) {
	const (
		chunk  = 1 << 20
		chunks = 20
		tail   = 12345
		every  = 7
	)
	p := "up/large/data"
	want := content(42, chunks*chunk+tail)
	w := open(t, newDriver(), p, false, 0)
	for i := range chunks {
		if i > 0 && i%every == 0 {
			require.NoError(t, w.Close())
			w = open(t, newDriver(), p, true, int64(i*chunk))
		}
		write(t, w, want[i*chunk:(i+1)*chunk])
	}
	write(t, w, want[chunks*chunk:])
	require.NoError(t, w.Commit(t.Context()))
	requireContent(t, newDriver(), p, want)
	// An offset inside the last chunk.
	got := read(t, newDriver(), p, int64(len(want)-tail-10))
	require.True(t, bytes.Equal(want[len(want)-tail-10:], got), "read near the end")
}
