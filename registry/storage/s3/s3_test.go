package s3

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"

	"github.com/berth-containers/berth/registry/storage"
	"github.com/berth-containers/berth/registry/storage/storagetest"
)

// TestSuite runs the shared driver suite, each case on a bucket of its
// own, with a new Driver instance at every call of the factory.
func TestSuite(t *testing.T) {
	s := startServer(t)
	storagetest.Run(t, func(tb testing.TB) func() storage.Driver {
		cfg := s.newBucket(tb)
		return func() storage.Driver { return open(tb, cfg) }
	})
}

// smallParts opens a driver on cfg whose parts are S3's minimum.
func smallParts(tb testing.TB, cfg Config) *Driver {
	cfg.PartSize = MinPartSize
	return open(tb, cfg)
}

// noise is n bytes that differ at every offset that matters.
func noise(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// readAll reads the object at p whole.
func readAll(t *testing.T, d *Driver, p string) []byte {
	t.Helper()
	rc, err := d.Reader(t.Context(), p, 0)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// requireClean checks that no upload, part or tail is left in the bucket.
func requireClean(t *testing.T, d *Driver) {
	t.Helper()
	ups, err := d.c.listUploads(t.Context(), "")
	require.NoError(t, err)
	require.Empty(t, ups, "multipart uploads left behind")
	var tails []string
	require.NoError(t, d.c.list(t.Context(), d.root+reserved+"/", "", 0, func(res *listResult) (bool, error) {
		for _, e := range res.Contents {
			tails = append(tails, e.Key)
		}
		return true, nil
	}))
	require.Empty(t, tails, "upload tails left behind")
}

// TestUploadParts writes three full parts and a tail across three
// driver instances, closing with tails smaller than a part, and checks
// what S3 holds in between.
func TestUploadParts(t *testing.T) {
	s := startServer(t)
	cfg := s.newBucket(t)
	const p = "uploads/parts/data"
	want := noise(1, 3*MinPartSize+12345)

	w, err := smallParts(t, cfg).Writer(t.Context(), p, false)
	require.NoError(t, err)
	_, err = w.Write(want[:MinPartSize+100]) // one part and a tail of 100
	require.NoError(t, err)
	require.NoError(t, w.Close())

	d2 := smallParts(t, cfg)
	wr, err := d2.Writer(t.Context(), p, true)
	require.NoError(t, err)
	require.Equal(t, int64(MinPartSize+100), wr.Size())
	st := wr.(*writer)
	require.Len(t, st.parts, 1, "parts on S3 after the first session")
	require.Len(t, st.buf, 100, "the tail comes back into the buffer")
	// Small writes that stay under a part, then a close.
	for off := MinPartSize + 100; off < MinPartSize+100+4096; off += 1024 {
		_, err = wr.Write(want[off : off+1024])
		require.NoError(t, err)
	}
	require.NoError(t, wr.Close())

	wr, err = open(t, cfg).Writer(t.Context(), p, true) // default part size now
	require.NoError(t, err)
	require.Equal(t, int64(MinPartSize+100+4096), wr.Size())
	_, err = wr.Write(want[MinPartSize+100+4096:])
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), wr.Size())
	require.NoError(t, wr.Commit(t.Context()))

	d := open(t, cfg)
	require.Equal(t, want, readAll(t, d, p))
	info, err := d.Stat(t.Context(), p)
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), info.Size)
	requireClean(t, d)
}

// TestUploadWriterDied resumes an upload whose previous writer sent the
// tail on in a part and died without closing: the parts are the upload.
func TestUploadWriterDied(t *testing.T) {
	s := startServer(t)
	cfg := s.newBucket(t)
	const p = "uploads/died/data"
	want := noise(2, 2*MinPartSize+10)

	w, err := smallParts(t, cfg).Writer(t.Context(), p, false)
	require.NoError(t, err)
	_, err = w.Write(want[:MinPartSize+10])
	require.NoError(t, err)
	require.NoError(t, w.Close())

	w, err = smallParts(t, cfg).Writer(t.Context(), p, true)
	require.NoError(t, err)
	_, err = w.Write(want[MinPartSize+10 : 2*MinPartSize+10]) // sends part 2 (tail + new)
	require.NoError(t, err)
	// The writer is dropped here without Close, as by a crash.

	w, err = smallParts(t, cfg).Writer(t.Context(), p, true)
	require.NoError(t, err)
	require.Equal(t, int64(2*MinPartSize), w.Size(), "the parts that reached S3")
	require.NoError(t, w.Commit(t.Context()))
	d := open(t, cfg)
	require.Equal(t, want[:2*MinPartSize], readAll(t, d, p))
	requireClean(t, d)
}

// TestUploadCancelCleans checks that Cancel after parts leaves nothing.
func TestUploadCancelCleans(t *testing.T) {
	s := startServer(t)
	cfg := s.newBucket(t)
	const p = "uploads/cancel/data"
	w, err := smallParts(t, cfg).Writer(t.Context(), p, false)
	require.NoError(t, err)
	_, err = w.Write(noise(3, MinPartSize+5))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	w, err = smallParts(t, cfg).Writer(t.Context(), p, true)
	require.NoError(t, err)
	require.NoError(t, w.Cancel(t.Context()))
	d := open(t, cfg)
	requireClean(t, d)
	_, err = d.Writer(t.Context(), p, true)
	require.ErrorIs(t, err, errdefs.ErrNotFound)
}

// TestDeleteDropsUploads checks that deleting a directory takes the
// uploads under it with it, closed or left open.
func TestDeleteDropsUploads(t *testing.T) {
	s := startServer(t)
	cfg := s.newBucket(t)
	d := smallParts(t, cfg)
	_, err := d.Put(t.Context(), "repo/x/obj", strings.NewReader("x"))
	require.NoError(t, err)
	closed, err := d.Writer(t.Context(), "repo/x/uploads/a", false)
	require.NoError(t, err)
	_, err = closed.Write(noise(4, MinPartSize+1))
	require.NoError(t, err)
	require.NoError(t, closed.Close())
	open, err := d.Writer(t.Context(), "repo/x/uploads/b", false)
	require.NoError(t, err)
	_, err = open.Write(noise(5, MinPartSize)) // a part, never closed
	require.NoError(t, err)

	require.NoError(t, d.Delete(t.Context(), "repo/x"))
	requireClean(t, d)
	_, err = d.Writer(t.Context(), "repo/x/uploads/a", true)
	require.ErrorIs(t, err, errdefs.ErrNotFound)
}

// TestPutMultipart puts objects larger than a part, from readers of
// unknown length, and one whose reader fails midway.
func TestPutMultipart(t *testing.T) {
	s := startServer(t)
	cfg := s.newBucket(t)
	d := smallParts(t, cfg)
	for _, n := range []int{MinPartSize, 2*MinPartSize + 7} {
		want := noise(byte(n), n)
		got, err := d.Put(t.Context(), "big/obj", struct{ io.Reader }{bytes.NewReader(want)})
		require.NoError(t, err)
		require.Equal(t, int64(n), got)
		require.Equal(t, want, readAll(t, open(t, cfg), "big/obj"))
	}
	old := readAll(t, d, "big/obj")
	failing := io.MultiReader(bytes.NewReader(noise(9, 2*MinPartSize)), iotest.ErrReader(errors.New("reset")))
	_, err := d.Put(t.Context(), "big/obj", failing)
	require.Error(t, err)
	require.Equal(t, old, readAll(t, d, "big/obj"), "a failed Put keeps the old object")
	requireClean(t, d)
}

// TestMoveMultipartCopy moves an object above the single-copy limit,
// lowered for the test, so it is copied in parts.
func TestMoveMultipartCopy(t *testing.T) {
	s := startServer(t)
	cfg := s.newBucket(t)
	d := open(t, cfg)
	d.copyLimit, d.copyPartSize = MinPartSize, MinPartSize
	want := noise(6, 2*MinPartSize+99)
	_, err := d.Put(t.Context(), "mv/src", bytes.NewReader(want))
	require.NoError(t, err)
	require.NoError(t, d.Move(t.Context(), "mv/src", "mv/dst/obj"))
	require.Equal(t, want, readAll(t, d, "mv/dst/obj"))
	_, err = d.Stat(t.Context(), "mv/src")
	require.ErrorIs(t, err, errdefs.ErrNotFound)
	requireClean(t, d)
}

// TestOddNames round-trips keys that need escaping in URLs, signatures
// and copy headers.
func TestOddNames(t *testing.T) {
	s := startServer(t)
	d := open(t, s.newBucket(t))
	names := []string{"odd/a b", "odd/plus+sign", "odd/per%cent", "odd/é~!*'()", "odd/q?x=1&y", "odd/semi;colon,comma"}
	for _, p := range names {
		_, err := d.Put(t.Context(), p, strings.NewReader(p))
		require.NoError(t, err, "put %q", p)
		require.Equal(t, []byte(p), readAll(t, d, p))
	}
	list, err := d.List(t.Context(), "odd")
	require.NoError(t, err)
	want := slices.Clone(names)
	slices.Sort(want)
	require.Equal(t, want, list)
	require.NoError(t, d.Move(t.Context(), "odd/a b", "odd/moved a+b"))
	require.Equal(t, []byte("odd/a b"), readAll(t, d, "odd/moved a+b"))
	require.NoError(t, d.Delete(t.Context(), "odd"))
	_, err = d.List(t.Context(), "odd")
	require.ErrorIs(t, err, errdefs.ErrNotFound)
}

// TestReservedPath checks that the uploads' directory is not a path.
func TestReservedPath(t *testing.T) {
	d, err := newDriver(Config{Bucket: "b"})
	require.NoError(t, err)
	for _, p := range []string{reserved, reserved + "/x"} {
		_, err := d.Stat(t.Context(), p)
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, p)
	}
	require.NoError(t, checkPath("x/"+reserved), "reserved only at the top")
}

// TestConfig checks what New refuses.
func TestConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no bucket":       {Endpoint: "http://127.0.0.1:1"},
		"small parts":     {Bucket: "b", PartSize: MinPartSize - 1},
		"huge parts":      {Bucket: "b", PartSize: MaxPartSize + 1},
		"bad endpoint":    {Bucket: "b", Endpoint: "ftp://x"},
		"half a key pair": {Bucket: "b", AccessKey: "a"},
		"bad prefix":      {Bucket: "b", Prefix: "a/../b"},
	} {
		_, err := New(t.Context(), cfg)
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, name)
	}
	d, err := newDriver(Config{Bucket: "b", Prefix: "/reg/"})
	require.NoError(t, err)
	require.Equal(t, "reg/x", d.key("x"))
	require.Equal(t, int64(DefaultPartSize), d.partSize)
}

// TestNewChecksBucket checks that New reaches the bucket with the
// credentials given.
func TestNewChecksBucket(t *testing.T) {
	s := startServer(t)
	cfg := s.newBucket(t)
	_, err := New(t.Context(), cfg)
	require.NoError(t, err)

	missing := cfg
	missing.Bucket = "missing"
	_, err = New(t.Context(), missing)
	require.ErrorIs(t, err, errdefs.ErrNotFound)

	wrong := cfg
	wrong.SecretKey = "wrong-secret"
	_, err = New(t.Context(), wrong)
	require.Error(t, err)
	require.NotErrorIs(t, err, errdefs.ErrNotFound)
}
