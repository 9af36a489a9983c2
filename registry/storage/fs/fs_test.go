package fs

import (
	"bytes"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
	"github.com/berth-containers/berth/registry/storage/storagetest"
)

// backend gives each test a temporary root; every driver the test opens
// on it is closed before the root is removed.
func backend(noSync bool) storagetest.Backend {
	return func(tb testing.TB) func() storage.Driver {
		root := tb.TempDir()
		return func() storage.Driver { return open(tb, root, noSync) }
	}
}

// open opens a driver on root, closed at the test's end.
func open(tb testing.TB, root string, noSync bool) *Driver {
	tb.Helper()
	d, err := New(root)
	require.NoError(tb, err)
	d.noSync = noSync
	tb.Cleanup(func() { d.Close() })
	return d
}

func TestSuite(t *testing.T) {
	storagetest.Run(t, backend(false))
}

// BenchmarkDriver measures the driver as the registry runs it, fsync
// included.
func BenchmarkDriver(b *testing.B) {
	storagetest.Bench(b, backend(false))
}

// BenchmarkDriverNoSync measures it without fsync, to show what
// durability costs.
func BenchmarkDriverNoSync(b *testing.B) {
	storagetest.Bench(b, backend(true))
}

func TestNewCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	d := open(t, root, false)
	fi, err := os.Stat(root)
	require.NoError(t, err)
	require.True(t, fi.IsDir())
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	_, err = d.Put(t.Context(), "obj", strings.NewReader("x"))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(root, "obj"))
	require.NoError(t, err)
	require.Equal(t, "x", string(got))
}

func TestNewOnAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err := New(file)
	require.Error(t, err)
}

// TestSymlinksStayInside plants links that point out of the root: no
// operation reads, writes or lists through them.
func TestSymlinksStayInside(t *testing.T) {
	tmp := t.TempDir()
	root, outside := filepath.Join(tmp, "root"), filepath.Join(tmp, "outside")
	require.NoError(t, os.MkdirAll(outside, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
	d := open(t, root, false)
	ctx := t.Context()
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "abs")))
	require.NoError(t, os.Symlink("../outside", filepath.Join(root, "rel")))
	require.NoError(t, os.Symlink("../outside/secret", filepath.Join(root, "file")))

	for _, p := range []string{"abs/secret", "rel/secret", "file"} {
		_, err := d.Reader(ctx, p, 0)
		require.Error(t, err, "reader %s", p)
		_, err = d.Stat(ctx, p)
		require.Error(t, err, "stat %s", p)
	}
	for _, p := range []string{"abs/new", "rel/new", "rel/sub/new"} {
		_, err := d.Put(ctx, p, strings.NewReader("x"))
		require.Error(t, err, "put %s", p)
		_, err = d.Writer(ctx, p, false)
		require.Error(t, err, "writer %s", p)
	}
	_, err := d.Writer(ctx, "file", true)
	require.Error(t, err, "resume through a link")
	for _, p := range []string{"abs", "rel"} {
		_, err = d.List(ctx, p)
		require.Error(t, err, "list %s", p)
		require.Error(t, d.Walk(ctx, p, func(storage.Info) error { return nil }), "walk %s", p)
		require.Error(t, d.Move(ctx, p+"/secret", "stolen"), "move %s/secret", p)
	}

	// Links are not objects: List and Walk of the root's content leave
	// them out, and Delete removes the link, not what it points to.
	_, err = d.Put(ctx, "real/obj", strings.NewReader("x"))
	require.NoError(t, err)
	require.NoError(t, os.Symlink("../../outside", filepath.Join(root, "real", "link")))
	list, err := d.List(ctx, "real")
	require.NoError(t, err)
	require.Equal(t, []string{"real/obj"}, list)
	var walked []string
	require.NoError(t, d.Walk(ctx, "real", func(info storage.Info) error {
		walked = append(walked, info.Path)
		return nil
	}))
	require.Equal(t, []string{"real/obj"}, walked)
	require.NoError(t, d.Delete(ctx, "abs"))
	require.NoError(t, d.Delete(ctx, "real"))

	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing written outside the root")
	got, err := os.ReadFile(filepath.Join(outside, "secret"))
	require.NoError(t, err)
	require.Equal(t, "secret", string(got))
}

func TestReservedNames(t *testing.T) {
	root := t.TempDir()
	d := open(t, root, false)
	ctx := t.Context()
	for _, p := range []string{tmpPrefix + "x", "a/" + tmpPrefix + "x", tmpPrefix + "x/a"} {
		_, err := d.Put(ctx, p, strings.NewReader("x"))
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, "put %s", p)
		_, err = d.Stat(ctx, p)
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, "stat %s", p)
	}
	// A temporary file a crash left behind is nobody's object.
	_, err := d.Put(ctx, "dir/obj", strings.NewReader("x"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "dir", tmpPrefix+"crashed"), []byte("partial"), 0o644))
	list, err := d.List(ctx, "dir")
	require.NoError(t, err)
	require.Equal(t, []string{"dir/obj"}, list)
	var walked []string
	require.NoError(t, d.Walk(ctx, "dir", func(info storage.Info) error {
		walked = append(walked, info.Path)
		return nil
	}))
	require.Equal(t, []string{"dir/obj"}, walked)
}

func TestInvalidBytes(t *testing.T) {
	d := open(t, t.TempDir(), false)
	for _, p := range []string{"a\x00b", strings.Repeat("n", 300), "a/" + strings.Repeat("n", 300) + "/b"} {
		_, err := d.Put(t.Context(), p, strings.NewReader("x"))
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, "put %q", p)
		_, err = d.Stat(t.Context(), p)
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, "stat %q", p)
	}
}

// TestObjectDirectoryCollision: a file cannot also be a directory on a
// filesystem, and the driver says so with a class of its own.
func TestObjectDirectoryCollision(t *testing.T) {
	d := open(t, t.TempDir(), false)
	ctx := t.Context()
	_, err := d.Put(ctx, "a/b", strings.NewReader("x"))
	require.NoError(t, err)
	_, err = d.Put(ctx, "a/b/c", strings.NewReader("x"))
	require.ErrorIs(t, err, errdefs.ErrFailedPrecondition)
	_, err = d.Put(ctx, "a", strings.NewReader("x"))
	require.ErrorIs(t, err, errdefs.ErrFailedPrecondition)
	_, err = d.Writer(ctx, "a", false)
	require.ErrorIs(t, err, errdefs.ErrFailedPrecondition)
	_, err = d.Writer(ctx, "a/b/c", false)
	require.ErrorIs(t, err, errdefs.ErrFailedPrecondition)
	_, err = d.Put(ctx, "x", strings.NewReader("x"))
	require.NoError(t, err)
	require.ErrorIs(t, d.Move(ctx, "x", "a"), errdefs.ErrFailedPrecondition)
	list, err := d.List(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, []string{"a/b"}, list, "no temporary file left behind")
}

// TestUploadOnDisk pins the layout other processes resume from: the
// upload is the file at its path, its size the upload's.
func TestUploadOnDisk(t *testing.T) {
	root := t.TempDir()
	d := open(t, root, false)
	w, err := d.Writer(t.Context(), "uploads/u1/data", false)
	require.NoError(t, err)
	_, err = w.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	got, err := os.ReadFile(filepath.Join(root, "uploads", "u1", "data"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))

	entries, err := os.ReadDir(filepath.Join(root, "uploads", "u1"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing beside the upload's file")
}

// TestNewUploadKeepsReaders: a new upload over an object does not
// truncate the file an open reader holds.
func TestNewUploadKeepsReaders(t *testing.T) {
	d := open(t, t.TempDir(), false)
	ctx := t.Context()
	want := bytes.Repeat([]byte("x"), 100000)
	_, err := d.Put(ctx, "obj", bytes.NewReader(want))
	require.NoError(t, err)
	rc, err := d.Reader(ctx, "obj", 0)
	require.NoError(t, err)
	defer rc.Close()
	w, err := d.Writer(ctx, "obj", false)
	require.NoError(t, err)
	_, err = w.Write([]byte("new"))
	require.NoError(t, err)
	require.NoError(t, w.Commit(ctx))
	got := new(bytes.Buffer)
	_, err = got.ReadFrom(rc)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got.Bytes()), "reader saw %d bytes", got.Len())
}

// TestNoEmptyDirectories runs every operation that removes something and
// then checks the tree on disk for empty directories.
func TestNoEmptyDirectories(t *testing.T) {
	root := t.TempDir()
	d := open(t, root, false)
	ctx := t.Context()
	for _, p := range []string{"a/b/c/1", "a/b/c/2", "a/b/d/3", "m/n/o/4", "keep/5"} {
		_, err := d.Put(ctx, p, strings.NewReader(p))
		require.NoError(t, err)
	}
	require.NoError(t, d.Delete(ctx, "a/b/c/1"))
	require.NoError(t, d.Delete(ctx, "a/b/c"))
	require.NoError(t, d.Delete(ctx, "a/b/d/3"))
	require.NoError(t, d.Move(ctx, "m/n/o/4", "keep/4"))
	w, err := d.Writer(ctx, "u/v/w/data", false)
	require.NoError(t, err)
	require.NoError(t, w.Cancel(ctx))

	var dirs []string
	require.NoError(t, filepath.WalkDir(root, func(p string, e iofs.DirEntry, err error) error {
		if err != nil || !e.IsDir() || p == root {
			return err
		}
		dirs = append(dirs, p)
		entries, err := os.ReadDir(p)
		if err == nil && len(entries) == 0 {
			return errors.New(p + " is empty")
		}
		return err
	}))
	require.Equal(t, []string{filepath.Join(root, "keep")}, dirs)
}

// TestPutRacesPrune: Puts into a directory that concurrent Deletes keep
// emptying and removing all succeed, retrying when their directory goes.
func TestPutRacesPrune(t *testing.T) {
	const rounds = 300
	root := t.TempDir()
	putter, deleter := open(t, root, true), open(t, root, true)
	ctx := t.Context()
	var (
		wg      sync.WaitGroup
		delErrs []error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range rounds {
			if err := deleter.Delete(ctx, "a/b/c/obj"); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				delErrs = append(delErrs, err)
			}
		}
	}()
	var putErrs []error
	for range rounds {
		if _, err := putter.Put(ctx, "a/b/c/obj", strings.NewReader("x")); err != nil {
			putErrs = append(putErrs, err)
		}
		w, err := putter.Writer(ctx, "a/b/u/data", false)
		if err != nil {
			putErrs = append(putErrs, err)
			continue
		}
		if err := w.Cancel(ctx); err != nil {
			putErrs = append(putErrs, err)
		}
	}
	wg.Wait()
	require.Empty(t, putErrs)
	require.Empty(t, delErrs)
}
