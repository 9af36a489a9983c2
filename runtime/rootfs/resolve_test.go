package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// withResolvers runs fn with the openat2 resolver and with the fallback.
func withResolvers(t *testing.T, fn func(t *testing.T)) {
	t.Run("openat2", func(t *testing.T) {
		if !haveOpenat2() {
			t.Skip("openat2 is not available on this kernel")
		}
		fn(t)
	})
	t.Run("fallback", func(t *testing.T) {
		saved := haveOpenat2
		haveOpenat2 = func() bool { return false }
		t.Cleanup(func() { haveOpenat2 = saved })
		fn(t)
	})
}

// resolveRoot is a root with a directory, a file, a symlink that leaves
// the root and one that climbs with "..".
func resolveRoot(t *testing.T) (string, *os.File) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc/file"), nil, 0o644))
	require.NoError(t, os.Symlink("/etc", filepath.Join(dir, "abs")))
	require.NoError(t, os.Symlink("../../../../etc", filepath.Join(dir, "etc/up")))
	root, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { root.Close() })
	return dir, root
}

// handlePath says where a handle lies on the host.
func handlePath(t *testing.T, f *os.File) string {
	t.Helper()
	p, err := os.Readlink(fdPath(f))
	require.NoError(t, err)
	return p
}

func TestMkdirAllInStaysInRoot(t *testing.T) {
	withResolvers(t, func(t *testing.T) {
		dir, root := resolveRoot(t)
		for in, want := range map[string]string{
			"/a/b/c":      "a/b/c",
			"a//b/./d":    "a/b/d",
			"/abs/new":    "etc/new", // the absolute link means the root's /etc
			"/etc/up/two": "etc/two", // so does the one that climbs
			"/etc/../x/y": "x/y",     // ".." goes to the general resolver
			"/":           "",        // the root itself
			"/etc":        "etc",     // exists already
			"/a/b/c/":     "a/b/c",   // made above, trailing slash
		} {
			f, err := mkdirAllIn(root, in, 0o755)
			require.NoError(t, err, in)
			require.Equal(t, filepath.Join(dir, want), handlePath(t, f), in)
			f.Close()
			fi, err := os.Stat(filepath.Join(dir, want))
			require.NoError(t, err, in)
			require.True(t, fi.IsDir(), in)
		}
		_, err := os.Lstat("/etc/new")
		require.True(t, os.IsNotExist(err), "a directory was made outside the root")
	})
}

func TestMkdirAllInRefusesFiles(t *testing.T) {
	withResolvers(t, func(t *testing.T) {
		_, root := resolveRoot(t)
		for _, in := range []string{"/etc/file", "/etc/file/below"} {
			_, err := mkdirAllIn(root, in, 0o755)
			require.Error(t, err, in)
			require.True(t, strings.Contains(err.Error(), "not a directory"), "%s: %v", in, err)
		}
	})
}

func TestOpenIn(t *testing.T) {
	withResolvers(t, func(t *testing.T) {
		dir, root := resolveRoot(t)
		f, err := openIn(root, "/abs/file")
		require.NoError(t, err)
		require.Equal(t, filepath.Join(dir, "etc/file"), handlePath(t, f))
		f.Close()
		_, err = openIn(root, "/etc/missing")
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}
