package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
	"github.com/berth-containers/berth/internal/testutil"
	"github.com/berth-containers/berth/snapshot/layer"
)

func newSnapshotter(t *testing.T) *Snapshotter {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "snapshots"))
	require.NoError(t, err)
	return s
}

// mountAt mounts ms on a fresh directory and unmounts it when the test
// ends, whatever happens.
func mountAt(t *testing.T, ms []Mount) string {
	t.Helper()
	target := t.TempDir()
	require.NoError(t, MountAll(ms, target))
	t.Cleanup(func() {
		for range 4 {
			if ok, _ := mountinfo.Mounted(target); !ok {
				return
			}
			_ = unix.Unmount(target, unix.MNT_DETACH)
		}
	})
	return target
}

func apply(t *testing.T, s *Snapshotter, data []byte, id digest.Digest) {
	t.Helper()
	res, err := s.ApplyLayer(context.Background(), id, bytes.NewReader(data))
	require.NoError(t, err)
	require.False(t, res.Existed)
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func TestOverlayStack(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s := newSnapshotter(t)
	l1, id1 := layerTar(t, d("etc"), f("etc/passwd", "root"), f("etc/gone", "bye"),
		d("opt"), f("opt/old1", "1"), d("opt/sub"), f("opt/sub/old2", "2"), f("keep", "kept"))
	l2, id2 := layerTar(t, d("etc"), wh("etc", "gone"), f("etc/hosts", "h"),
		d("opt"), opq("opt"), f("opt/new", "n"), f("keep", "kept2"))
	apply(t, s, l1, id1)
	apply(t, s, l2, id2)
	require.True(t, s.HasLayer(id1))
	again, err := s.ApplyLayer(ctx, id1, bytes.NewReader(l1))
	require.NoError(t, err)
	require.True(t, again.Existed)

	infos, err := s.Layers(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 2)
	for _, in := range infos {
		require.Positive(t, in.Size, in.DiffID)
		require.Positive(t, in.Inodes)
		require.DirExists(t, in.Path)
	}

	ms, err := s.Prepare(ctx, "c1", []digest.Digest{id1, id2}, false)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, "overlay", ms[0].Type)
	p2, _ := s.LayerPath(id2)
	p1, _ := s.LayerPath(id1)
	require.Equal(t, "lowerdir="+p2+":"+p1, ms[0].Options[0], "lowerdirs are top first")
	again2, err := s.Mounts("c1")
	require.NoError(t, err)
	require.Equal(t, ms, again2)

	target := mountAt(t, ms)
	require.Equal(t, "root", readString(t, filepath.Join(target, "etc/passwd")))
	require.Equal(t, "h", readString(t, filepath.Join(target, "etc/hosts")))
	require.NoFileExists(t, filepath.Join(target, "etc/gone"), "deleted by the upper layer's whiteout")
	entries, err := os.ReadDir(filepath.Join(target, "opt"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "the opaque dir hides the lower contents")
	require.Equal(t, "new", entries[0].Name())
	require.Equal(t, "kept2", readString(t, filepath.Join(target, "keep")))

	require.NoError(t, os.WriteFile(filepath.Join(target, "written"), []byte("by container"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(target, "etc/passwd")))
	u, err := s.Usage(ctx, "c1")
	require.NoError(t, err)
	require.Positive(t, u.Size)

	err = s.Remove(ctx, "c1")
	require.ErrorIs(t, err, errdefs.ErrFailedPrecondition, "removing a mounted snapshot")
	err = s.RemoveLayer(ctx, id1)
	require.ErrorIs(t, err, errdefs.ErrFailedPrecondition, "removing a used layer")

	require.NoError(t, Unmount(target))
	upper, err := s.UpperDir("c1")
	require.NoError(t, err)
	var diff bytes.Buffer
	require.NoError(t, layer.Diff(ctx, &diff, upper, layer.DiffOptions{}))
	require.Contains(t, diff.String(), "written")
	require.Contains(t, diff.String(), "etc/.wh.passwd")

	snaps, err := s.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	require.Equal(t, []digest.Digest{id1, id2}, snaps[0].Layers)

	require.NoError(t, s.Remove(ctx, "c1"))
	_, err = s.Mounts("c1")
	require.ErrorIs(t, err, errdefs.ErrNotFound)
	require.NoError(t, s.RemoveLayer(ctx, id1))
	require.False(t, s.HasLayer(id1))
	require.ErrorIs(t, s.RemoveLayer(ctx, id1), errdefs.ErrNotFound)
}

func TestReadonlyAndEmptySnapshots(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s := newSnapshotter(t)
	l1, id1 := layerTar(t, f("a", "1"))
	l2, id2 := layerTar(t, f("b", "2"))
	apply(t, s, l1, id1)
	apply(t, s, l2, id2)

	one, err := s.Prepare(ctx, "ro1", []digest.Digest{id1}, true)
	require.NoError(t, err)
	require.Equal(t, "bind", one[0].Type)
	target := mountAt(t, one)
	require.Equal(t, "1", readString(t, filepath.Join(target, "a")))
	err = os.WriteFile(filepath.Join(target, "x"), nil, 0o644)
	require.ErrorIs(t, err, unix.EROFS)
	require.NoError(t, Unmount(target))

	two, err := s.Prepare(ctx, "ro2", []digest.Digest{id1, id2}, true)
	require.NoError(t, err)
	require.Equal(t, "overlay", two[0].Type)
	target = mountAt(t, two)
	require.Equal(t, "2", readString(t, filepath.Join(target, "b")))
	err = os.WriteFile(filepath.Join(target, "x"), nil, 0o644)
	require.ErrorIs(t, err, unix.EROFS)
	require.NoError(t, Unmount(target))
	_, err = s.UpperDir("ro2")
	require.ErrorIs(t, err, errdefs.ErrFailedPrecondition)

	empty, err := s.Prepare(ctx, "scratch", nil, false)
	require.NoError(t, err)
	target = mountAt(t, empty)
	require.NoError(t, os.WriteFile(filepath.Join(target, "x"), []byte("x"), 0o644))
	require.NoError(t, Unmount(target))
	upper, err := s.UpperDir("scratch")
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(upper, "x"))

	// An image may list one layer twice; overlayfs refuses a repeated
	// lowerdir, so the repeat must not reach it.
	dup, err := s.Prepare(ctx, "dup", []digest.Digest{id1, id2, id1}, false)
	require.NoError(t, err)
	target = mountAt(t, dup)
	require.Equal(t, "1", readString(t, filepath.Join(target, "a")))
	require.Equal(t, "2", readString(t, filepath.Join(target, "b")))
	require.NoError(t, Unmount(target))

	for _, k := range []string{"ro1", "ro2", "scratch", "dup"} {
		require.NoError(t, s.Remove(ctx, k))
	}
}

func TestPrepareErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s := newSnapshotter(t)
	l1, id1 := layerTar(t, f("a", "1"))
	apply(t, s, l1, id1)
	_, err := s.Prepare(ctx, "k", []digest.Digest{digest.FromString("missing")}, false)
	require.ErrorIs(t, err, errdefs.ErrNotFound)
	_, err = s.Prepare(ctx, "../k", []digest.Digest{id1}, false)
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
	_, err = s.Prepare(ctx, "k", []digest.Digest{id1}, false)
	require.NoError(t, err)
	_, err = s.Prepare(ctx, "k", []digest.Digest{id1}, false)
	require.ErrorIs(t, err, errdefs.ErrAlreadyExists)
	require.ErrorIs(t, s.Remove(ctx, "nope"), errdefs.ErrNotFound)
	require.NoError(t, s.Remove(ctx, "k"))
	_, err = s.ApplyLayer(ctx, "sha256:zz", bytes.NewReader(l1))
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
}

// slowReader delays its first read so a second ApplyLayer arrives while
// the first is unpacking, and counts what it hands out.
type slowReader struct {
	r     io.Reader
	delay time.Duration
	once  sync.Once
	n     *atomic.Int64
}

func (s *slowReader) Read(p []byte) (int, error) {
	s.once.Do(func() { time.Sleep(s.delay) })
	n, err := s.r.Read(p)
	s.n.Add(int64(n))
	return n, err
}

func TestApplyLayerConcurrent(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newSnapshotter(t)
	data, id := layerTar(t, d("x"), f("x/y", strings.Repeat("z", 1<<16)))
	var wg sync.WaitGroup
	var read [2]atomic.Int64
	results := make([]ApplyResult, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(50 * time.Millisecond) // arrive while the other unpacks
			}
			r := &slowReader{r: bytes.NewReader(data), delay: 300 * time.Millisecond, n: &read[i]}
			results[i], errs[i] = s.ApplyLayer(context.Background(), id, r)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.NotEqual(t, results[0].Existed, results[1].Existed, "exactly one caller unpacks")
	worker, waiter := 0, 1
	if results[0].Existed {
		worker, waiter = 1, 0
	}
	require.Equal(t, int64(len(data)), read[worker].Load())
	require.Zero(t, read[waiter].Load(), "the other stream is never read")
	require.Positive(t, results[worker].Stats.Entries)
	require.True(t, s.HasLayer(id))
}

func TestApplyLayerRejectsBadContent(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s := newSnapshotter(t)
	data, _ := layerTar(t, f("a", "1"))
	wrong := digest.FromString("something else")
	_, err := s.ApplyLayer(ctx, wrong, bytes.NewReader(data))
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
	require.False(t, s.HasLayer(wrong))

	hostile, id := layerTar(t, f("../escape", "x"))
	_, err = s.ApplyLayer(ctx, id, bytes.NewReader(hostile))
	require.ErrorIs(t, err, layer.ErrUnsafe)
	require.False(t, s.HasLayer(id))
	left, err := os.ReadDir(filepath.Join(s.Root(), "layers", "sha256"))
	require.NoError(t, err)
	require.Empty(t, left, "no temporary directory left behind")
	require.NoFileExists(t, filepath.Join(s.Root(), "layers", "escape"))
}

func TestNewCleansLeftovers(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newSnapshotter(t)
	dir := filepath.Join(s.Root(), "layers", "sha256")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	dead := digest.FromString("dead")
	live := digest.FromString("live")
	crashed := filepath.Join(dir, ".tmp-"+dead.Encoded()+"-123")
	inflight := filepath.Join(dir, ".tmp-"+live.Encoded()+"-456")
	removing := filepath.Join(dir, ".rm-"+dead.Encoded()+"-789")
	snap := filepath.Join(s.Root(), "active", ".tmp-c1-1")
	for _, p := range []string{crashed, inflight, removing, snap} {
		require.NoError(t, os.MkdirAll(filepath.Join(p, "half/way"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(p, "half/way/file"), []byte("x"), 0o644))
	}
	// Another process is still unpacking "live": it holds the lock.
	l, err := flock.Exclusive(context.Background(), s.layerLockPath("sha256", live.Encoded()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Unlock() })

	s2, err := New(s.Root())
	require.NoError(t, err)
	require.NoDirExists(t, crashed)
	require.NoDirExists(t, removing)
	require.NoDirExists(t, snap)
	require.DirExists(t, inflight, "an unpack in progress is left alone")
	require.False(t, s2.HasLayer(dead))
	infos, err := s2.Layers(context.Background())
	require.NoError(t, err)
	require.Empty(t, infos)
}

// helperEnv names the snapshot root of the helper process.
const helperEnv = "BERTH_SNAPSHOT_TEST_HELPER"

// TestMain lets the test binary double as a process that unpacks a layer
// from its stdin, for TestKilledUnpackIsCleaned to kill.
func TestMain(m *testing.M) {
	if root := os.Getenv(helperEnv); root != "" {
		os.Exit(helperUnpack(root, digest.Digest(os.Getenv(helperEnv+"_ID"))))
	}
	os.Exit(m.Run())
}

func helperUnpack(root string, id digest.Digest) int {
	s, err := New(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_, err = s.ApplyLayer(context.Background(), id, os.Stdin)
	fmt.Fprintf(os.Stderr, "helper should have been killed; got %v\n", err)
	return 1
}

func TestKilledUnpackIsCleaned(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newSnapshotter(t)
	data, id := layerTar(t, d("a"), f("a/one", "1"), f("a/two", strings.Repeat("2", 1<<20)))

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+s.Root(), helperEnv+"_ID="+id.String())
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Half the layer, then silence: the helper is mid-unpack.
	_, err = stdin.Write(data[:len(data)/2])
	require.NoError(t, err)
	dir := filepath.Join(s.Root(), "layers", "sha256")
	var tmp string
	deadline := time.Now().Add(20 * time.Second)
	for tmp == "" && time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
		for _, m := range matches {
			if _, err := os.Stat(filepath.Join(m, "a/one")); err == nil {
				tmp = m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NotEmpty(t, tmp, "the helper never started unpacking")
	require.False(t, s.HasLayer(id), "a half layer does not look complete")

	require.NoError(t, cmd.Process.Signal(unix.SIGKILL))
	_ = cmd.Wait()
	require.DirExists(t, tmp, "the kill left a half layer")

	s2, err := New(s.Root())
	require.NoError(t, err)
	require.NoDirExists(t, tmp)
	require.False(t, s2.HasLayer(id))
	apply(t, s2, data, id)
	require.Equal(t, "1", readString(t, filepath.Join(dir, id.Encoded(), "a/one")))
}

func TestManyLayersUseFsconfig(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	// A long root makes the lowerdir option exceed one page.
	root := filepath.Join(t.TempDir(), strings.Repeat("long-path-", 12), "snapshots")
	s, err := New(root)
	require.NoError(t, err)
	const n = 60
	var ids []digest.Digest
	for i := range n {
		data, id := layerTar(t, f(fmt.Sprintf("file%02d", i), fmt.Sprint(i)), f("top", fmt.Sprint(i)))
		apply(t, s, data, id)
		ids = append(ids, id)
	}
	ms, err := s.Prepare(ctx, "many", ids, false)
	require.NoError(t, err)
	require.Greater(t, len(strings.Join(ms[0].Options, ",")), maxMountData, "the options do not fit mount(2)")
	target := mountAt(t, ms)
	require.Equal(t, "0", readString(t, filepath.Join(target, "file00")))
	require.Equal(t, fmt.Sprint(n-1), readString(t, filepath.Join(target, "top")), "the last layer is on top")
	entries, err := os.ReadDir(target)
	require.NoError(t, err)
	require.Len(t, entries, n+1)
	require.NoError(t, Unmount(target))
	require.NoError(t, s.Remove(ctx, "many"))
}

// A layer's size is measured once and read from its cache afterwards; the
// cache goes with the layer.
func TestLayerUsageIsCached(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newSnapshotter(t)
	l, id := layerTar(t, f("a", strings.Repeat("x", 10000)))
	apply(t, s, l, id)
	first, err := s.Layers(context.Background())
	require.NoError(t, err)
	require.Len(t, first, 1)
	require.Positive(t, first[0].Size)
	cache := usagePath(first[0].Path)
	require.FileExists(t, cache)

	// Growing the layer behind the store's back does not change the
	// answer: the size comes from the cache, not from a walk.
	require.NoError(t, os.WriteFile(filepath.Join(first[0].Path, "extra"), make([]byte, 1<<20), 0o644))
	again, err := s.Layers(context.Background())
	require.NoError(t, err)
	require.Equal(t, first, again)

	require.NoError(t, s.RemoveLayer(context.Background(), id))
	require.NoFileExists(t, cache)
	left, err := s.Layers(context.Background())
	require.NoError(t, err)
	require.Empty(t, left)
}

// TestVolatileRemount: a writable overlay marked volatile is mounted with
// the option, and its layer mounts again after a clean unmount (the
// kernel's mark would refuse that), plain or volatile, keeping what was
// written.
func TestVolatileRemount(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s := newSnapshotter(t)
	l1, id1 := layerTar(t, d("etc"), f("etc/passwd", "root"))
	apply(t, s, l1, id1)
	ms, err := s.Prepare(ctx, "v", []digest.Digest{id1}, false)
	require.NoError(t, err)
	vol := Volatile(ms)
	require.Contains(t, vol[0].Options, "volatile")
	require.NotContains(t, ms[0].Options, "volatile", "Volatile must not change its argument")

	target := mountAt(t, vol)
	opts := mountOptions(t, target)
	require.Contains(t, opts, "volatile")
	require.NoError(t, os.WriteFile(filepath.Join(target, "kept"), []byte("x"), 0o644))
	require.NoError(t, Unmount(target))

	for _, again := range [][]Mount{ms, vol} {
		require.NoError(t, MountAll(again, target))
		require.Equal(t, "x", readString(t, filepath.Join(target, "kept")))
		require.NoError(t, Unmount(target))
	}
}

// TestVolatileLeavesReadonlyAlone: only a writable overlay has an upper
// directory whose syncs could be skipped.
func TestVolatileLeavesReadonlyAlone(t *testing.T) {
	for _, m := range []Mount{
		{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/a:/b", "ro"}},
		{Type: "bind", Source: "/a", Options: []string{"bind", "ro"}},
	} {
		require.Equal(t, []Mount{m}, Volatile([]Mount{m}))
	}
}

// mountOptions returns the superblock options of the mount at target.
func mountOptions(t *testing.T, target string) string {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(target))
	require.NoError(t, err)
	require.Len(t, infos, 1)
	return infos[0].VFSOptions
}
