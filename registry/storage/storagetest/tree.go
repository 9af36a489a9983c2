package storagetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// treeTests are the cases on the namespace: List, Walk, Move and Delete.
func treeTests() []suiteTest {
	return []suiteTest{
		{"List", testList},
		{"ListNotADirectory", testListNotADirectory},
		{"Walk", testWalk},
		{"WalkStops", testWalkStops},
		{"WalkNotADirectory", testWalkNotADirectory},
		{"WalkDeleting", testWalkDeleting},
		{"Move", testMove},
		{"MoveNotAnObject", testMoveNotAnObject},
		{"MoveOntoItself", testMoveOntoItself},
		{"DeleteObject", testDeleteObject},
		{"DeleteDirectory", testDeleteDirectory},
		{"DeleteMissing", testDeleteMissing},
		{"DeletePrunesEmptyDirectories", testDeletePrunes},
	}
}

// trickyNames sort differently as path strings ('-' < '.' < '/') than
// as directory entries visited depth first: "t/a/x" comes after
// "t/a.txt" in lexical order, though "a" sorts before "a.txt".
var trickyNames = []string{"t/a/x", "t/a/y", "t/a/sub/z", "t/a-c", "t/a.txt", "t/b"}

func testList(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	for i, p := range trickyNames {
		put(t, d, p, content(uint64(i), i))
	}
	for _, d := range []storage.Driver{d, newDriver()} {
		list, err := d.List(t.Context(), "t")
		require.NoError(t, err)
		// Direct children only, each directory once, full paths sorted
		// as strings.
		require.Equal(t, []string{"t/a", "t/a-c", "t/a.txt", "t/b"}, list)
		list, err = d.List(t.Context(), "t/a")
		require.NoError(t, err)
		require.Equal(t, []string{"t/a/sub", "t/a/x", "t/a/y"}, list)
		list, err = d.List(t.Context(), "t/a/sub")
		require.NoError(t, err)
		require.Equal(t, []string{"t/a/sub/z"}, list)
	}
}

func testListNotADirectory(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "l/sub/obj", []byte("x"))
	put(t, d, "l/object", []byte("x"))
	// "l/su" is a prefix of a directory's name; "l/object" is an object.
	for _, p := range []string{"missing", "l/missing", "l/su", "l/object", "l/sub/obj", "l/object/child"} {
		_, err := d.List(t.Context(), p)
		requireClass(t, err, errdefs.ErrNotFound, "list "+p)
	}
}

func testWalk(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	sizes := map[string]int64{}
	for i, p := range trickyNames {
		put(t, d, p, content(uint64(i), 10*i))
		sizes[p] = int64(10 * i)
	}
	put(t, d, "u/outside", []byte("x"))
	want := slices.Clone(trickyNames)
	slices.Sort(want)

	for _, d := range []storage.Driver{d, newDriver()} {
		var got []string
		err := d.Walk(t.Context(), "t", func(info storage.Info) error {
			require.False(t, info.IsDir, "walk gave directory %s", info.Path)
			require.Equal(t, sizes[info.Path], info.Size, "walk: size of %s", info.Path)
			require.False(t, info.ModTime.IsZero(), "walk: modification time of %s", info.Path)
			got = append(got, info.Path)
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, want, got, "objects in lexical order of path")

		got = nil
		err = d.Walk(t.Context(), "t/a", func(info storage.Info) error {
			got = append(got, info.Path)
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, []string{"t/a/sub/z", "t/a/x", "t/a/y"}, got)
	}
}

func testWalkStops(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	for i, p := range trickyNames {
		put(t, d, p, content(uint64(i), i))
	}
	stop := errors.New("enough")
	var got []string
	err := d.Walk(t.Context(), "t", func(info storage.Info) error {
		got = append(got, info.Path)
		if len(got) == 2 {
			return stop
		}
		return nil
	})
	require.Equal(t, stop, err, "walk returns fn's error itself")
	require.Equal(t, []string{"t/a-c", "t/a.txt"}, got, "walk stops at fn's error")
}

func testWalkNotADirectory(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "w/sub/obj", []byte("x"))
	for _, p := range []string{"missing", "w/missing", "w/su", "w/sub/obj", "w/sub/obj/child"} {
		called := false
		err := d.Walk(t.Context(), p, func(storage.Info) error {
			called = true
			return nil
		})
		requireClass(t, err, errdefs.ErrNotFound, "walk "+p)
		require.False(t, called, "walk %s called fn", p)
	}
}

// testWalkDeleting deletes each object as Walk gives it, as a garbage
// collector does.
func testWalkDeleting(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	for i, p := range trickyNames {
		put(t, d, p, content(uint64(i), i))
	}
	put(t, d, "keep", []byte("x"))
	var got []string
	err := d.Walk(t.Context(), "t", func(info storage.Info) error {
		got = append(got, info.Path)
		return d.Delete(t.Context(), info.Path)
	})
	require.NoError(t, err)
	require.Len(t, got, len(trickyNames))
	requireGone(t, d, "t")
	requireContent(t, d, "keep", []byte("x"))
}

func testMove(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	src, old := content(1, 4000), content(2, 9000)
	put(t, d, "m/src/obj", src)
	put(t, d, "m/dst/obj", old)
	put(t, d, "m/keep", []byte("x"))

	require.NoError(t, d.Move(t.Context(), "m/src/obj", "m/dst/obj"))
	requireContent(t, d, "m/dst/obj", src)
	_, err := d.Stat(t.Context(), "m/src/obj")
	requireClass(t, err, errdefs.ErrNotFound, "stat of moved object")
	// The source's directory held nothing else, so it is gone too.
	requireGone(t, d, "m/src")

	// Moving creates the destination's directories; another instance
	// sees the result.
	require.NoError(t, d.Move(t.Context(), "m/dst/obj", "m/new/deep/obj"))
	requireContent(t, newDriver(), "m/new/deep/obj", src)
	requireGone(t, d, "m/dst")
	list, err := d.List(t.Context(), "m")
	require.NoError(t, err)
	require.Equal(t, []string{"m/keep", "m/new"}, list)
}

func testMoveNotAnObject(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "mv/dir/obj", []byte("x"))
	for _, p := range []string{"missing", "mv/missing", "mv/dir", "mv/di", "mv/dir/obj/child"} {
		err := d.Move(t.Context(), p, "mv/dst")
		requireClass(t, err, errdefs.ErrNotFound, "move "+p)
	}
	_, err := d.Stat(t.Context(), "mv/dst")
	requireClass(t, err, errdefs.ErrNotFound, "stat of a failed move's destination")
	requireContent(t, d, "mv/dir/obj", []byte("x"))
}

func testMoveOntoItself(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	want := content(1, 100)
	put(t, d, "self/obj", want)
	require.NoError(t, d.Move(t.Context(), "self/obj", "self/obj"))
	requireContent(t, d, "self/obj", want)
}

func testDeleteObject(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "del/obj", []byte("x"))
	put(t, d, "del/obj2", []byte("y"))
	require.NoError(t, d.Delete(t.Context(), "del/obj"))
	_, err := d.Stat(t.Context(), "del/obj")
	requireClass(t, err, errdefs.ErrNotFound, "stat of deleted object")
	requireContent(t, newDriver(), "del/obj2", []byte("y"))
}

func testDeleteDirectory(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	for _, p := range []string{"dd/a/1", "dd/a/sub/2", "dd/a/sub/deeper/3", "dd/ab", "dd/a-b/4"} {
		put(t, d, p, []byte(p))
	}
	require.NoError(t, d.Delete(t.Context(), "dd/a"))
	for _, p := range []string{"dd/a", "dd/a/1", "dd/a/sub", "dd/a/sub/deeper/3"} {
		_, err := d.Stat(t.Context(), p)
		requireClass(t, err, errdefs.ErrNotFound, "stat "+p+" after deleting its directory")
	}
	// Names that merely begin with the deleted directory's name stay.
	requireContent(t, d, "dd/ab", []byte("dd/ab"))
	requireContent(t, d, "dd/a-b/4", []byte("dd/a-b/4"))
	list, err := d.List(t.Context(), "dd")
	require.NoError(t, err)
	require.Equal(t, []string{"dd/a-b", "dd/ab"}, list)
}

func testDeleteMissing(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "dm/obj", []byte("x"))
	for _, p := range []string{"missing", "dm/missing", "dm/ob", "dm/obj/child", "dm/missing/deeper"} {
		requireClass(t, d.Delete(t.Context(), p), errdefs.ErrNotFound, "delete "+p)
	}
	require.NoError(t, d.Delete(t.Context(), "dm/obj"))
	requireClass(t, d.Delete(t.Context(), "dm/obj"), errdefs.ErrNotFound, "second delete")
}

func testDeletePrunes(t *testing.T, newDriver func() storage.Driver) {
	d := newDriver()
	put(t, d, "p/q/r/obj", []byte("x"))
	put(t, d, "p2/keep", []byte("x"))
	put(t, d, "p2/q/r/obj", []byte("x"))
	require.NoError(t, d.Delete(t.Context(), "p/q/r/obj"))
	requireGone(t, d, "p/q/r")
	requireGone(t, d, "p")
	require.NoError(t, d.Delete(t.Context(), "p2/q/r/obj"))
	requireGone(t, d, "p2/q")
	requireDir(t, d, "p2")
	require.NoError(t, d.Delete(t.Context(), "p2"))
	requireGone(t, d, "p2")
}
