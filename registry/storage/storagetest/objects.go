package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// objectTests are the cases on whole objects: Put, Reader, Stat and the
// paths drivers refuse.
func objectTests() []suiteTest {
	return []suiteTest{
		{"PutReadStat", testPutReadStat},
		{"ReaderOffsets", testReaderOffsets},
		{"ReaderNotAnObject", testReaderNotAnObject},
		{"PutReplaces", testPutReplaces},
		{"PutFailedReaderKeepsOld", testPutFailedReader},
		{"PutCanceledKeepsOld", testPutCanceled},
		{"PutConcurrentSamePath", testPutConcurrent},
		{"StatDirectory", testStatDirectory},
		{"StatMissing", testStatMissing},
		{"InvalidPaths", testInvalidPaths},
	}
}

func testPutReadStat(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	cases := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one-byte", 1},
		{"several-mib", 5<<20 + 3},
	}
	for i, tc := range cases {
		p := "objects/" + tc.name + "/data"
		want := content(uint64(i), tc.size)
		// A reader of unknown length, as a request body is.
		n, err := d.Put(t.Context(), p, opaque{bytes.NewReader(want)})
		require.NoError(t, err, "put %s", p)
		require.Equal(t, int64(tc.size), n, "put %s: count", p)
		requireContent(t, d, p, want)
		// Another instance on the same backend sees the same object.
		requireContent(t, newDriver(), p, want)
	}
}

func testReaderOffsets(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	want := content(1, 1000)
	put(t, d, "offsets/obj", want)
	for _, off := range []int64{0, 1, 500, 999, 1000} {
		got := read(t, d, "offsets/obj", off)
		require.True(t, bytes.Equal(want[off:], got), "read at %d: got %d bytes, want %d", off, len(got), len(want)-int(off))
	}
	for _, off := range []int64{1001, 1 << 40, -1} {
		rc, err := d.Reader(t.Context(), "offsets/obj", off)
		if err == nil {
			rc.Close()
		}
		requireClass(t, err, errdefs.ErrInvalidArgument, fmt.Sprintf("reader at %d of 1000", off))
	}
	// The end of an empty object is offset 0.
	put(t, d, "offsets/empty", nil)
	require.Empty(t, read(t, d, "offsets/empty", 0))
	_, err := d.Reader(t.Context(), "offsets/empty", 1)
	requireClass(t, err, errdefs.ErrInvalidArgument, "reader at 1 of 0")
}

func testReaderNotAnObject(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "dir/obj", []byte("x"))
	for _, p := range []string{"missing", "dir", "dir/ob", "dir/obj/child", "dir/missing/deeper"} {
		rc, err := d.Reader(t.Context(), p, 0)
		if err == nil {
			rc.Close()
		}
		requireClass(t, err, errdefs.ErrNotFound, "reader "+p)
	}
}

func testPutReplaces(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "replace/obj", content(1, 3000))
	smaller := content(2, 10)
	put(t, d, "replace/obj", smaller)
	requireContent(t, d, "replace/obj", smaller)
	larger := content(3, 70000)
	put(t, newDriver(), "replace/obj", larger)
	requireContent(t, d, "replace/obj", larger)
	put(t, d, "replace/obj", nil)
	requireContent(t, d, "replace/obj", nil)
}

func testPutFailedReader(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	old := content(1, 2000)
	put(t, d, "failed/obj", old)
	boom := errors.New("connection reset")
	_, err := d.Put(t.Context(), "failed/obj", &errReader{r: bytes.NewReader(content(2, 5000)), err: boom})
	require.Error(t, err, "put from a failing reader")
	requireContent(t, d, "failed/obj", old)
	// Nothing is left behind beside the object, and a new path that
	// failed does not appear.
	_, err = d.Put(t.Context(), "failed/new", &errReader{r: bytes.NewReader(content(3, 10)), err: boom})
	require.Error(t, err, "put from a failing reader")
	list, err := d.List(t.Context(), "failed")
	require.NoError(t, err)
	require.Equal(t, []string{"failed/obj"}, list)
}

func testPutCanceled(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	old := content(1, 100)
	put(t, d, "canceled/obj", old)
	_, err := d.Put(canceledContext(t), "canceled/obj", bytes.NewReader(content(2, 1<<20)))
	require.ErrorIs(t, err, context.Canceled, "put with a canceled context")
	requireContent(t, d, "canceled/obj", old)
}

// testPutConcurrent races whole Puts of one path, from separate driver
// instances, against readers: every read must be one version whole. A
// version is recognisable by its length and its fill byte.
func testPutConcurrent(t *testing.T, newDriver func() storage.Driver) {
	const (
		writers = 4
		rounds  = 4
		base    = 256 << 10
		maxRead = 200
	)
	version := func(v int) []byte { return bytes.Repeat([]byte{byte(v)}, base+v*1000) }
	put(t, newDriver(), "race/obj", version(0))

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		done    = make(chan struct{})
		timeout = time.After(60 * time.Second)
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var writing sync.WaitGroup
	for w := range writers {
		writing.Add(1)
		go func() {
			defer writing.Done()
			d := newDriver()
			for r := range rounds {
				v := 1 + w*rounds + r
				if _, err := d.Put(t.Context(), "race/obj", bytes.NewReader(version(v))); err != nil {
					fail(fmt.Errorf("put version %d: %w", v, err))
				}
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := newDriver()
			for range maxRead {
				select {
				case <-done:
					return
				case <-timeout:
					fail(errors.New("readers ran past their time limit"))
					return
				default:
				}
				if err := checkWhole(t, d, base); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	writing.Wait()
	close(done)
	wg.Wait()
	require.Empty(t, errs)
	require.NoError(t, checkWhole(t, newDriver(), base))
}

// checkWhole reads race/obj and checks that it is one version whole.
func checkWhole(t *testing.T, d storage.Driver, base int) error {
	rc, err := d.Reader(t.Context(), "race/obj", 0)
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(b) == 0 {
		return errors.New("read an empty object")
	}
	v := int(b[0])
	if len(b) != base+v*1000 || bytes.Count(b, b[:1]) != len(b) {
		return fmt.Errorf("read a mix: %d bytes starting with version %d", len(b), v)
	}
	return nil
}

func testStatDirectory(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "top/mid/obj", []byte("x"))
	requireDir(t, d, "top")
	requireDir(t, d, "top/mid")
	requireDir(t, newDriver(), "top/mid")
}

func testStatMissing(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "stat/object", []byte("x"))
	put(t, d, "stat/dirx/obj", []byte("x"))
	// "stat/obj" and "stat/dir" are prefixes of names that exist, not
	// names themselves.
	for _, p := range []string{"missing", "stat/missing", "stat/obj", "stat/dir", "stat/object/child", "stat/missing/deeper"} {
		_, err := d.Stat(t.Context(), p)
		requireClass(t, err, errdefs.ErrNotFound, "stat "+p)
	}
}

// invalidPaths breaks each rule storage.go sets on paths.
var invalidPaths = []string{
	"", "/", "//", "/abs", "trailing/", "/both/", "a//b",
	".", "..", "./a", "a/.", "a/./b", "../a", "a/..", "a/../b", "a/b/../../..",
}

func testInvalidPaths(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	ctx := t.Context()
	put(t, d, "valid/obj", []byte("x"))
	for _, p := range invalidPaths {
		what := func(op string) string { return fmt.Sprintf("%s %q", op, p) }
		rc, err := d.Reader(ctx, p, 0)
		if err == nil {
			rc.Close()
		}
		requireClass(t, err, errdefs.ErrInvalidArgument, what("reader"))
		_, err = d.Stat(ctx, p)
		requireClass(t, err, errdefs.ErrInvalidArgument, what("stat"))
		_, err = d.Put(ctx, p, bytes.NewReader([]byte("x")))
		requireClass(t, err, errdefs.ErrInvalidArgument, what("put"))
		for _, resume := range []bool{false, true} {
			w, err := d.Writer(ctx, p, resume)
			if err == nil {
				_ = w.Cancel(ctx) // the assertion below reports the failure
			}
			requireClass(t, err, errdefs.ErrInvalidArgument, what(fmt.Sprintf("writer (resume %v)", resume)))
		}
		_, err = d.List(ctx, p)
		requireClass(t, err, errdefs.ErrInvalidArgument, what("list"))
		err = d.Walk(ctx, p, func(storage.Info) error { return nil })
		requireClass(t, err, errdefs.ErrInvalidArgument, what("walk"))
		err = d.Move(ctx, p, "valid/dst")
		requireClass(t, err, errdefs.ErrInvalidArgument, what("move from"))
		err = d.Move(ctx, "valid/obj", p)
		requireClass(t, err, errdefs.ErrInvalidArgument, what("move to"))
		err = d.Delete(ctx, p)
		requireClass(t, err, errdefs.ErrInvalidArgument, what("delete"))
	}
	// Nothing was moved, created or removed on the way.
	requireContent(t, d, "valid/obj", []byte("x"))
	list, err := d.List(ctx, "valid")
	require.NoError(t, err)
	require.Equal(t, []string{"valid/obj"}, list)
}
