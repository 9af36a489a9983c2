package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/testutil"
)

// mountOverlay mounts lower/upper/work at merged and unmounts it when the
// test ends; it returns a function to unmount early.
func mountOverlay(t *testing.T, lower, upper, work, merged string) func() {
	t.Helper()
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",index=off,redirect_dir=off,metacopy=off"
	require.NoError(t, unix.Mount("overlay", merged, "overlay", 0, opts))
	mounted := true
	unmount := func() {
		if mounted {
			require.NoError(t, unix.Unmount(merged, 0))
			mounted = false
		}
	}
	t.Cleanup(func() {
		if mounted {
			_ = unix.Unmount(merged, unix.MNT_DETACH)
		}
	})
	return unmount
}

func TestDiffRoundTrip(t *testing.T) {
	testutil.RequiresRoot(t)
	base := t.TempDir()
	lower, upper, work, merged, fresh := filepath.Join(base, "lower"), filepath.Join(base, "upper"),
		filepath.Join(base, "work"), filepath.Join(base, "merged"), filepath.Join(base, "fresh")
	for _, d := range []string{lower, upper, work, merged, fresh} {
		require.NoError(t, os.Mkdir(d, 0o755))
	}
	_, err := Apply(context.Background(), lower, bytes.NewReader(tarOf(t,
		dir("a/", 0o755), file("a/f1", "one"), file("a/f2", "two"),
		dir("b/", 0o755), file("b/x", "x"), file("b/y", "y"),
		file("t", "top"), dir("c/", 0o755), file("c/keep", "k"),
	)))
	require.NoError(t, err)

	unmount := mountOverlay(t, lower, upper, work, merged)
	m := func(p string) string { return filepath.Join(merged, p) }
	require.NoError(t, os.Remove(m("a/f1")))
	require.NoError(t, os.RemoveAll(m("b")))
	require.NoError(t, os.Mkdir(m("b"), 0o700))
	require.NoError(t, os.WriteFile(m("b/new"), []byte("fresh"), 0o644))
	require.NoError(t, os.WriteFile(m("n"), []byte("new file"), 0o644))
	require.NoError(t, os.Chown(m("n"), 12, 34))
	require.NoError(t, os.Chmod(m("n"), 0o4711))
	require.NoError(t, unix.Setxattr(m("n"), "user.k", []byte("v"), 0))
	require.NoError(t, os.Link(m("n"), m("n2")))
	require.NoError(t, os.Symlink("n", m("s")))
	require.NoError(t, unix.Mkfifo(m("p"), 0o600))
	require.NoError(t, unix.Mknod(m("cdev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	require.NoError(t, os.Chmod(m("t"), 0o600))
	mt := time.Unix(1700000000, 0)
	require.NoError(t, os.Chtimes(m("n"), mt, mt))
	require.NoError(t, os.RemoveAll(m("c")))
	unmount()

	var one, two bytes.Buffer
	require.NoError(t, Diff(context.Background(), &one, upper, DiffOptions{}))
	require.NoError(t, Diff(context.Background(), &two, upper, DiffOptions{}))
	require.Equal(t, one.Bytes(), two.Bytes(), "two diffs of one tree are identical")

	hdrs := map[string]*tar.Header{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(one.Bytes()))
	for range 1000 {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		hdrs[h.Name] = h
		order = append(order, h.Name)
	}
	require.Contains(t, hdrs, "a/.wh.f1")
	require.Contains(t, hdrs, "b/.wh..wh..opq")
	require.Contains(t, hdrs, ".wh.c")
	require.Equal(t, byte(tar.TypeLink), hdrs["n2"].Typeflag)
	require.Equal(t, "n", hdrs["n2"].Linkname)
	require.Equal(t, "v", hdrs["n"].PAXRecords["SCHILY.xattr.user.k"])
	require.True(t, mt.Equal(hdrs["n"].ModTime))
	require.Empty(t, hdrs["n"].Uname)
	require.NotContains(t, hdrs, "b/x", "the opaque dir carries only its new contents")
	require.Less(t, indexOf(order, "b/"), indexOf(order, "b/.wh..wh..opq"))

	_, err = Apply(context.Background(), fresh, bytes.NewReader(one.Bytes()))
	require.NoError(t, err)
	require.Equal(t, describeTree(t, upper), describeTree(t, fresh))
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// describeTree renders what a layer keeps of a tree, one line per entry:
// type, mode, owner, size, whole-second mtime, device, symlink target,
// content, kept xattrs and hardlink group.
func describeTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	groups := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		st := lstat(t, p)
		line := []string{rel, fmtOct(st.Mode), fmtInt(int64(st.Uid)), fmtInt(int64(st.Gid)), fmtInt(int64(st.Rdev))}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			line = append(line, fmtInt(st.Mtim.Sec)) // directory times move as children are made
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			line = append(line, string(b))
			if st.Nlink > 1 {
				if first, ok := groups[st.Ino]; ok {
					line = append(line, "link:"+first)
				} else {
					groups[st.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			line = append(line, target)
		}
		xs, err := listXattrs(p)
		require.NoError(t, err)
		kept, opaque, err := filterXattrs(xs)
		require.NoError(t, err)
		var keys []string
		for k, v := range kept {
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		line = append(line, strings.Join(keys, ";"))
		if opaque {
			line = append(line, "opaque")
		}
		out = append(out, strings.Join(line, " "))
		return nil
	})
	require.NoError(t, err)
	return out
}

func fmtOct(m uint32) string { return "0" + strconv.FormatInt(int64(m), 8) }
func fmtInt(v int64) string  { return strconv.FormatInt(v, 10) }

func TestDiffExclude(t *testing.T) {
	testutil.RequiresRoot(t)
	upper := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(upper, "etc"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(upper, "proc/1"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(upper, "etc/hosts"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(upper, "etc/app.conf"), []byte("x"), 0o644))
	var buf bytes.Buffer
	skip := map[string]bool{"etc/hosts": true, "proc": true}
	err := Diff(context.Background(), &buf, upper, DiffOptions{Exclude: func(p string) bool { return skip[p] }})
	require.NoError(t, err)
	var names []string
	tr := tar.NewReader(&buf)
	for range 100 {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
	}
	require.Equal(t, []string{"etc/", "etc/app.conf"}, names)
}
