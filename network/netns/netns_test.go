package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/testutil"
)

// nsIno is the inode of the network namespace of the calling thread.
func nsIno(t testing.TB) uint64 {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var st unix.Stat_t
	require.NoError(t, unix.Stat(threadNetNS(), &st))
	return st.Ino
}

func fileIno(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Stat(path, &st))
	return st.Ino
}

func newNS(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, Create(p))
	t.Cleanup(func() { assert.NoError(t, Remove(p)) })
	return p
}

func TestCreateDoRemove(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := filepath.Join(t.TempDir(), "netns") // parent made by Create
	host := nsIno(t)
	p := newNS(t, dir, "a")

	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	mounted, err := isMounted(p)
	require.NoError(t, err)
	assert.True(t, mounted)
	assert.NotEqual(t, host, fileIno(t, p), "a new namespace")

	// Inside: the namespace's own inode, lo up, nothing else.
	var inside uint64
	var ifaces []net.Interface
	require.NoError(t, Do(p, func() error {
		var st unix.Stat_t
		if err := unix.Stat(threadNetNS(), &st); err != nil {
			return err
		}
		inside = st.Ino
		ifaces, err = net.Interfaces()
		return err
	}))
	assert.Equal(t, fileIno(t, p), inside)
	require.Len(t, ifaces, 1)
	assert.Equal(t, "lo", ifaces[0].Name)
	assert.NotZero(t, ifaces[0].Flags&net.FlagUp, "lo is up")

	// fn's error comes back as it is.
	sentinel := errors.New("boom")
	assert.ErrorIs(t, Do(p, func() error { return sentinel }), sentinel)

	// Threads go back where they were: many Do calls later, every thread
	// of the pool is still in the test's namespace.
	for range 50 {
		require.NoError(t, Do(p, func() error { return nil }))
		assert.Equal(t, host, nsIno(t))
	}

	// Creating over a live namespace is a conflict.
	err = Create(p)
	assert.True(t, errors.Is(err, errdefs.ErrAlreadyExists), "%v", err)

	// Remove, then remove again: both fine; the path is gone.
	require.NoError(t, Remove(p))
	require.NoError(t, Remove(p))
	_, err = os.Stat(p)
	assert.True(t, errors.Is(err, os.ErrNotExist))
	err = Do(p, func() error { return nil })
	assert.True(t, errors.Is(err, errdefs.ErrNotFound), "%v", err)
}

func TestLeftovers(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	a := newNS(t, dir, "a")
	b := newNS(t, dir, "b")

	// A crash between unmount and delete leaves a plain file; one before
	// the mount leaves the same. Both are listed, removable, reusable.
	stale := filepath.Join(dir, "stale")
	require.NoError(t, os.WriteFile(stale, nil, 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "subdir"), 0o700))

	got, err := List(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{a, b, stale}, got)

	err = Do(stale, func() error { return nil })
	assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument), "%v", err)
	require.NoError(t, Remove(stale))

	// A leftover mount point file is reused by Create.
	require.NoError(t, os.WriteFile(stale, nil, 0o600))
	require.NoError(t, Create(stale))
	t.Cleanup(func() { assert.NoError(t, Remove(stale)) })
	mounted, err := isMounted(stale)
	require.NoError(t, err)
	assert.True(t, mounted)

	none, err := List(filepath.Join(dir, "missing"))
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestChildProcessInheritsNamespace(t *testing.T) {
	testutil.RequiresRoot(t)
	bb := testutil.RequiresBusybox(t)
	p := newNS(t, t.TempDir(), "child")
	// A process started inside Do is born in the namespace; Wait can
	// happen outside.
	var out bytes.Buffer
	cmd := exec.Command(bb, "readlink", "/proc/self/ns/net")
	cmd.Stdout = &out
	require.NoError(t, Do(p, cmd.Start))
	require.NoError(t, cmd.Wait())
	assert.Equal(t, fmt.Sprintf("net:[%d]", fileIno(t, p)), strings.TrimSpace(out.String()))
}

func BenchmarkCreateRemove(b *testing.B) {
	testutil.RequiresRoot(b)
	dir := b.TempDir()
	p := filepath.Join(dir, "bench")
	for b.Loop() {
		if err := Create(p); err != nil {
			b.Fatal(err)
		}
		if err := Remove(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDo(b *testing.B) {
	testutil.RequiresRoot(b)
	p := filepath.Join(b.TempDir(), "bench")
	require.NoError(b, Create(p))
	defer func() { _ = Remove(p) }()
	for b.Loop() {
		if err := Do(p, func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
