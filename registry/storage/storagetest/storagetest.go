// Package storagetest is the test suite every storage.Driver passes, so
// the registry behaves the same on each backend: Run checks the contract
// storage.go documents, case by case, and Bench measures the operations
// the registry leans on.
//
// Where storage.go leaves a choice open, the suite fixes it the way an
// object store behaves by nature, so a filesystem driver and an S3 driver
// agree:
//
//   - The empty path is invalid everywhere, List and Walk included.
//   - Reader, Stat, List and Walk report a missing path, and a path under
//     an object ("obj/child"), as ErrNotFound. Reader and Move report a
//     directory as ErrNotFound: there is no object at that path.
//   - List returns full paths ("a/b", not "b"), sorted as strings; a
//     directory appears once, without a trailing slash.
//   - Walk of a missing prefix, or of an object, is ErrNotFound. Walk
//     returns fn's error itself, unwrapped. fn may Delete the object it
//     is given.
//   - Info.Path is the full path. A directory's Info has IsDir set; its
//     Size and ModTime are not checked.
//   - A directory exists while an object lies under it: after Delete,
//     Move or Cancel takes away its last object, Stat and List of it are
//     ErrNotFound.
//   - Delete of a missing path is ErrNotFound. Move of a path onto itself
//     keeps the object.
//   - Put takes a reader of unknown length; a Put whose reader fails, or
//     whose context is canceled (errors.Is(err, context.Canceled)), leaves
//     the earlier object as it was.
//   - Writer without resume starts a new upload at size 0, discarding one
//     left at that path. Write, Commit and Cancel fail on a Writer that
//     was closed, committed or canceled. Commit of an upload with nothing
//     written makes an empty object.
//
// The suite asserts nothing about an upload's path before Commit (whether
// Stat, Reader, List or Walk see it), nor about resuming an upload after
// its Commit: drivers differ there, and the registry relies on neither.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// Backend makes a fresh, empty backend for one test (a temporary
// directory, a bucket or a prefix in one), removed by tb.Cleanup, and
// returns a function that opens a new driver over it. Tests call the
// function more than once to check that a second driver instance, as in
// another process, sees what the first wrote. Run calls Backend from
// parallel tests, so it must be safe for concurrent use.
type Backend func(tb testing.TB) (newDriver func() storage.Driver)

// suiteTest is one case of the suite, given the driver factory over a
// backend of its own.
type suiteTest struct {
	name string
	fn   func(t *testing.T, newDriver func() storage.Driver)
}

// Run runs the whole suite against the driver backend makes, each case
// as a parallel subtest on a backend of its own.
func Run(t *testing.T, backend Backend) {
	t.Helper()
	var tests []suiteTest
	tests = append(tests, objectTests()...)
	tests = append(tests, treeTests()...)
	tests = append(tests, uploadTests()...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, backend(t))
		})
	}
}

// content is n bytes of deterministic noise: a chunk written at the wrong
// offset, or twice, shows up where runs of one byte would hide it.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// opaque hides everything but Read, as a request body of unknown length
// does.
type opaque struct{ r io.Reader }

func (o opaque) Read(p []byte) (int, error) { return o.r.Read(p) }

// put writes b at p and checks the count Put reports.
func put(t *testing.T, d storage.Driver, p string, b []byte) {
	t.Helper()
	n, err := d.Put(t.Context(), p, bytes.NewReader(b))
	require.NoError(t, err, "put %s", p)
	require.Equal(t, int64(len(b)), n, "put %s: count", p)
}

// read returns the object at p from offset on.
func read(t *testing.T, d storage.Driver, p string, offset int64) []byte {
	t.Helper()
	rc, err := d.Reader(t.Context(), p, offset)
	require.NoError(t, err, "reader %s at %d", p, offset)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err, "read %s at %d", p, offset)
	return b
}

// requireContent checks that the object at p holds want, as Reader and
// Stat see it. It compares without printing megabytes on a mismatch.
func requireContent(t *testing.T, d storage.Driver, p string, want []byte) {
	t.Helper()
	got := read(t, d, p, 0)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: read %d bytes (sha256 %x), want %d bytes (sha256 %x)",
			p, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
	info, err := d.Stat(t.Context(), p)
	require.NoError(t, err, "stat %s", p)
	require.Equal(t, p, info.Path, "stat %s: path", p)
	require.Equal(t, int64(len(want)), info.Size, "stat %s: size", p)
	require.False(t, info.IsDir, "stat %s: object reported as directory", p)
	// A generous window: a remote backend's clock may differ from ours.
	require.WithinDuration(t, time.Now(), info.ModTime, time.Hour, "stat %s: modification time", p)
}

// requireClass checks that err is of the errdefs class.
func requireClass(t *testing.T, err error, class error, what string) {
	t.Helper()
	require.Error(t, err, "%s: want %v", what, class)
	require.ErrorIs(t, err, class, "%s", what)
}

// requireGone checks that nothing, object or directory, is at p.
func requireGone(t *testing.T, d storage.Driver, p string) {
	t.Helper()
	_, err := d.Stat(t.Context(), p)
	requireClass(t, err, errdefs.ErrNotFound, "stat "+p)
	_, err = d.List(t.Context(), p)
	requireClass(t, err, errdefs.ErrNotFound, "list "+p)
}

// requireDir checks that Stat reports p as a directory.
func requireDir(t *testing.T, d storage.Driver, p string) {
	t.Helper()
	info, err := d.Stat(t.Context(), p)
	require.NoError(t, err, "stat %s", p)
	require.True(t, info.IsDir, "stat %s: want a directory", p)
	require.Equal(t, p, info.Path, "stat %s: path", p)
}

// canceledContext returns a context that is already canceled.
func canceledContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// errReader fails after the bytes it holds.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, e.err
	}
	return n, err
}
