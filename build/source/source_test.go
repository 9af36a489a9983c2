package source

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/testutil"
)

func rels(ms []Match) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Rel)
	}
	return out
}

// walked lists what Walk yields for each match, as root-relative paths.
func walked(t *testing.T, c *Context, ms []Match) []string {
	t.Helper()
	var out []string
	for _, m := range ms {
		require.NoError(t, c.Walk(m, func(rel, _ string, _ fs.FileInfo) error {
			out = append(out, filepath.ToSlash(filepath.Join(m.Rel, rel)))
			return nil
		}))
	}
	return out
}

func TestMatch(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		"a.txt": "a", "b.txt": "b", "c.md": "c",
		"dir/x": "x", "dir/sub/y": "y", "other/sub/y": "y2",
		"star*":   "literal star",
		"link-in": "->a.txt", "link-dir": "->dir", "abs-in": "->" + filepath.Join(dir, "b.txt"),
		"link-out": "->/etc/passwd", "rel-out": "->../outside", "deep/up": "->../../x",
	})
	c, err := FromDir(dir, "")
	require.NoError(t, err)
	tests := []struct {
		name     string
		sources  []string
		want     []string
		wildcard bool
		class    error
		msg      string
	}{
		{name: "file", sources: []string{"a.txt"}, want: []string{"a.txt"}},
		{name: "leading slash", sources: []string{"/a.txt"}, want: []string{"a.txt"}},
		{name: "leading dot slash", sources: []string{"./dir/x"}, want: []string{"dir/x"}},
		{name: "root", sources: []string{"."}, want: []string{"."}},
		{name: "star", sources: []string{"*.txt"}, want: []string{"a.txt", "b.txt"}, wildcard: true},
		{name: "question mark dir", sources: []string{"d?r"}, want: []string{"dir"}, wildcard: true},
		{name: "glob in the middle", sources: []string{"*/sub/y"}, want: []string{"dir/sub/y", "link-dir/sub/y", "other/sub/y"}, wildcard: true},
		{name: "glob naming a symlink out", sources: []string{"link-o*"}, class: errdefs.ErrInvalidArgument, msg: "pointing outside"},
		{name: "class", sources: []string{"[ab].txt"}, want: []string{"a.txt", "b.txt"}, wildcard: true},
		{name: "escaped star", sources: []string{`star\*`}, want: []string{"star*"}, wildcard: true},
		{name: "each once", sources: []string{"a.txt", "*.txt"}, want: []string{"a.txt", "b.txt"}},
		{name: "through a symlinked dir", sources: []string{"link-dir/x"}, want: []string{"link-dir/x"}},
		{name: "missing", sources: []string{"nope"}, class: errdefs.ErrNotFound, msg: "source nope: no such file or directory in the build context"},
		{name: "glob matching nothing", sources: []string{"*.go"}, class: errdefs.ErrNotFound, msg: "*.go"},
		{name: "through a file", sources: []string{"a.txt/x"}, class: errdefs.ErrNotFound},
		{name: "leaves the context", sources: []string{"../x"}, class: errdefs.ErrInvalidArgument, msg: "../x"},
		{name: "leaves after cleaning", sources: []string{"dir/../../x"}, class: errdefs.ErrInvalidArgument},
		{name: "absolute symlink out", sources: []string{"link-out"}, class: errdefs.ErrInvalidArgument, msg: "link-out is a symlink pointing outside the build context"},
		{name: "relative symlink out", sources: []string{"rel-out"}, class: errdefs.ErrInvalidArgument, msg: "symlink pointing outside"},
		{name: "nested symlink out", sources: []string{"deep/up"}, class: errdefs.ErrInvalidArgument},
		{name: "bad pattern", sources: []string{"[a"}, class: errdefs.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := c.Match(tc.sources)
			if tc.class != nil {
				require.Error(t, err)
				require.True(t, errors.Is(err, tc.class), "error class of %v", err)
				require.Contains(t, err.Error(), tc.msg)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, rels(ms))
			if len(tc.sources) == 1 {
				for _, m := range ms {
					require.Equal(t, tc.wildcard, m.Wildcard)
					require.Equal(t, tc.sources[0], m.Source)
				}
			}
		})
	}
}

func TestMatchFollowsTopLevelSymlink(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"a.txt": "a", "b.txt": "b", "link-in": "->a.txt", "abs-in": "->" + filepath.Join(dir, "b.txt")})
	c, err := FromDir(dir, "")
	require.NoError(t, err)
	for name, target := range map[string]string{"link-in": "a.txt", "abs-in": "b.txt"} {
		ms, err := c.Match([]string{name})
		require.NoError(t, err)
		require.Len(t, ms, 1)
		require.Equal(t, name, ms[0].Rel)
		require.Equal(t, filepath.Join(c.Dir(), target), ms[0].Abs)
		require.True(t, ms[0].Info.Mode().IsRegular())
	}
}

func TestFromRootResolvesInside(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		"etc/hosts": "inside", "bin/": "", "abs": "->/etc/hosts", "up": "->../../../etc/hosts",
		"usr/lib/libx": "x", "lib": "->usr/lib",
	})
	c := FromRoot(dir)
	for _, tc := range []struct{ src, abs string }{
		{"abs", "etc/hosts"}, {"up", "etc/hosts"}, {"lib/libx", "usr/lib/libx"}, {"/lib/*", "usr/lib/libx"},
	} {
		ms, err := c.Match([]string{tc.src})
		require.NoError(t, err, tc.src)
		require.Len(t, ms, 1)
		require.Equal(t, filepath.Join(dir, tc.abs), ms[0].Abs, tc.src)
	}
	_, err := c.Match([]string{"nope"})
	require.ErrorIs(t, err, errdefs.ErrNotFound)
	require.NotContains(t, err.Error(), "build context")
}

func TestIgnoreRules(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		".dockerignore": "*.log\n!keep.log\nsecret\n!secret/ok.txt\nbuild/\n# a comment\n",
		"a.log":         "a", "keep.log": "k", "main.go": "m",
		"secret/ok.txt": "ok", "secret/key": "k", "secret/deep/x": "x",
		"build/out": "o", "src/z.log": "z", "src/keep.go": "g",
	})
	c, err := FromDir(dir, "")
	require.NoError(t, err)

	for rel, want := range map[string]bool{
		"a.log": true, "keep.log": false, "main.go": false, "secret": true, "secret/key": true,
		"secret/ok.txt": false, "build": true, "build/out": true, "src/z.log": false, "./a.log": true, "/a.log": true,
	} {
		require.Equal(t, want, c.Ignored(rel), rel)
	}

	ms, err := c.Match([]string{"."})
	require.NoError(t, err)
	require.Equal(t, []string{
		".", ".dockerignore", "keep.log", "main.go", "secret", "secret/ok.txt",
		"src", "src/keep.go", "src/z.log",
	}, walked(t, c, ms))

	ms, err = c.Match([]string{"*.log"})
	require.NoError(t, err)
	require.Equal(t, []string{"keep.log"}, rels(ms))

	// An excluded directory with a re-included file is matched, holding
	// only that file.
	ms, err = c.Match([]string{"secret"})
	require.NoError(t, err)
	require.Equal(t, []string{"secret", "secret/ok.txt"}, walked(t, c, ms))

	for _, src := range []string{"a.log", "build", "build/out", "secret/key"} {
		_, err = c.Match([]string{src})
		require.ErrorIs(t, err, errdefs.ErrNotFound, src)
	}

	// The Dockerfile reads even when ignored.
	data, err := c.ReadFile(".dockerignore")
	require.NoError(t, err)
	require.Contains(t, string(data), "*.log")
}

func TestDockerfileIgnoreFileWins(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		".dockerignore": "a.txt\n", "app.Dockerfile.dockerignore": "b.txt\n", "a.txt": "a", "b.txt": "b",
	})
	for _, tc := range []struct {
		ignoreFile       string
		aIgnored, bIgnrd bool
	}{
		{"", true, false},
		{"app.Dockerfile.dockerignore", false, true},
		{filepath.Join(dir, "app.Dockerfile.dockerignore"), false, true},
		{"missing.Dockerfile.dockerignore", true, false},
	} {
		c, err := FromDir(dir, tc.ignoreFile)
		require.NoError(t, err)
		require.Equal(t, tc.aIgnored, c.Ignored("a.txt"), tc.ignoreFile)
		require.Equal(t, tc.bIgnrd, c.Ignored("b.txt"), tc.ignoreFile)
	}
}

func TestFromDirErrors(t *testing.T) {
	_, err := FromDir(filepath.Join(t.TempDir(), "nope"), "")
	require.ErrorIs(t, err, errdefs.ErrNotFound)
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	_, err = FromDir(f, "")
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"Dockerfile": "FROM x", "df-link": "->Dockerfile", "out": "->/etc/passwd"})
	c, err := FromDir(dir, "")
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		want  string
		class error
	}{
		{"Dockerfile", "FROM x", nil},
		{"/Dockerfile", "FROM x", nil},
		{"df-link", "FROM x", nil},
		{"out", "", errdefs.ErrInvalidArgument},
		{"../Dockerfile", "", errdefs.ErrInvalidArgument},
		{"nope", "", errdefs.ErrNotFound},
	} {
		data, err := c.ReadFile(tc.name)
		if tc.class != nil {
			require.ErrorIs(t, err, tc.class, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, string(data))
	}
}

// compressors turn a plain tar into each compression FromTar reads; the
// ones needing a tool are skipped when it is missing.
func compressors(t *testing.T) map[string]func([]byte) []byte {
	t.Helper()
	viaTool := func(tool string) func([]byte) []byte {
		return func(b []byte) []byte {
			if _, err := exec.LookPath(tool); err != nil {
				return nil
			}
			cmd := exec.Command(tool, "-c")
			cmd.Stdin = bytes.NewReader(b)
			out, err := cmd.Output()
			require.NoError(t, err)
			return out
		}
	}
	return map[string]func([]byte) []byte{
		"plain": func(b []byte) []byte { return b },
		"gzip": func(b []byte) []byte {
			var buf bytes.Buffer
			zw := pgzip.NewWriter(&buf)
			_, err := zw.Write(b)
			require.NoError(t, err)
			require.NoError(t, zw.Close())
			return buf.Bytes()
		},
		"zstd": func(b []byte) []byte {
			zw, err := zstd.NewWriter(nil)
			require.NoError(t, err)
			defer zw.Close()
			return zw.EncodeAll(b, nil)
		},
		"bzip2": viaTool("bzip2"),
		"xz":    viaTool("xz"),
	}
}

func TestFromTar(t *testing.T) {
	plain := testutil.Tar(t, []testutil.TarEntry{
		{Name: "Dockerfile", Body: "FROM scratch"},
		{Name: ".dockerignore", Body: "**/*.log\n"},
		{Name: "app/", Type: tar.TypeDir},
		{Name: "app/main.go", Body: "package main"},
		{Name: "app/debug.log", Body: "noise"},
		{Name: "app/link", Link: "main.go", Type: tar.TypeSymlink},
		{Name: "implicit/parent/f", Body: "f"},
	}...)
	for name, compress := range compressors(t) {
		t.Run(name, func(t *testing.T) {
			data := compress(plain)
			if data == nil {
				testutil.Missing(t, "%s tool", name)
			}
			tmp := t.TempDir()
			c, err := FromTar(bytes.NewReader(data), tmp, "")
			require.NoError(t, err)
			df, err := c.ReadFile("Dockerfile")
			require.NoError(t, err)
			require.Equal(t, "FROM scratch", string(df))
			ms, err := c.Match([]string{"app"})
			require.NoError(t, err)
			require.Equal(t, []string{"app", "app/link", "app/main.go"}, walked(t, c, ms))
			ms, err = c.Match([]string{"implicit/parent/f"})
			require.NoError(t, err)
			require.Len(t, ms, 1)
			require.NoError(t, c.Close())
			_, err = os.Stat(c.Dir())
			require.ErrorIs(t, err, fs.ErrNotExist)
		})
	}
}

func TestFromTarRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []testutil.TarEntry
	}{
		{"dot dot", []testutil.TarEntry{{Name: "ok", Body: "ok"}, {Name: "../evil", Body: "x"}}},
		{"nested dot dot", []testutil.TarEntry{{Name: "a/../../evil", Body: "x"}}},
		{"absolute", []testutil.TarEntry{{Name: "/evil", Body: "x"}}},
		{"through a symlink", []testutil.TarEntry{{Name: "l", Link: "..", Type: tar.TypeSymlink}, {Name: "l/evil", Body: "x"}}},
		{"hard link out", []testutil.TarEntry{{Name: "h", Link: "../evil", Type: tar.TypeLink}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			_, err := FromTar(bytes.NewReader(testutil.Tar(t, tc.entries...)), tmp, "")
			require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
			_, err = os.Lstat(filepath.Join(tmp, "evil"))
			require.ErrorIs(t, err, fs.ErrNotExist)
			_, err = os.Lstat("/evil")
			require.ErrorIs(t, err, fs.ErrNotExist)
			left, err := os.ReadDir(tmp)
			require.NoError(t, err)
			require.Empty(t, left, "a failed unpack leaves nothing behind")
		})
	}
}

// copyTree copies src to dst with fresh mtimes, as a checkout would.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	out, err := exec.Command("cp", "-a", "--no-preserve=timestamps", src+"/.", dst).CombinedOutput()
	require.NoError(t, err, string(out))
}

func TestDigest(t *testing.T) {
	ctx := context.Background()
	tree := map[string]string{"dir/a": "aaa", "dir/sub/b": "bbb", "dir/l": "->a", "top.txt": "t"}
	digestOf := func(t *testing.T, dir string, o DigestOptions, sources ...string) string {
		t.Helper()
		c, err := FromDir(dir, "")
		require.NoError(t, err)
		ms, err := c.Match(sources)
		require.NoError(t, err)
		d, err := c.Digest(ctx, ms, o)
		require.NoError(t, err)
		return d.String()
	}
	orig := t.TempDir()
	testutil.WriteTree(t, orig, tree)
	old := time.Unix(1e8, 0)
	require.NoError(t, os.Chtimes(filepath.Join(orig, "dir/a"), old, old))
	base := digestOf(t, orig, DigestOptions{}, "dir", "top.txt")

	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		same   bool
	}{
		{"fresh copy", func(*testing.T, string) {}, true},
		{"touched", func(t *testing.T, dir string) {
			now := time.Now()
			require.NoError(t, os.Chtimes(filepath.Join(dir, "dir/sub/b"), now, now))
		}, true},
		{"ignored file changed", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("dir/junk\n"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "dir/junk"), []byte("j"), 0o644))
		}, true},
		{"one byte", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "dir/sub/b"), []byte("bbc"), 0o644))
		}, false},
		{"chmod", func(t *testing.T, dir string) { require.NoError(t, os.Chmod(filepath.Join(dir, "dir/a"), 0o755)) }, false},
		{"chmod dir", func(t *testing.T, dir string) { require.NoError(t, os.Chmod(filepath.Join(dir, "dir/sub"), 0o700)) }, false},
		{"symlink target", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "dir/l")))
			require.NoError(t, os.Symlink("sub/b", filepath.Join(dir, "dir/l")))
		}, false},
		{"new file", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "dir/new"), nil, 0o644))
		}, false},
		{"renamed", func(t *testing.T, dir string) {
			require.NoError(t, os.Rename(filepath.Join(dir, "dir/a"), filepath.Join(dir, "dir/a2")))
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, orig, dir)
			tc.change(t, dir)
			got := digestOf(t, dir, DigestOptions{}, "dir", "top.txt")
			if tc.same {
				require.Equal(t, base, got)
			} else {
				require.NotEqual(t, base, got)
			}
		})
	}
}

func TestDigestOwnership(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"f": "x"})
	c := FromRoot(dir)
	sum := func(o DigestOptions) string {
		ms, err := c.Match([]string{"f"})
		require.NoError(t, err)
		d, err := c.Digest(ctx, ms, o)
		require.NoError(t, err)
		return d.String()
	}
	require.NoError(t, os.Lchown(filepath.Join(dir, "f"), 0, 0))
	plain, owned := sum(DigestOptions{}), sum(DigestOptions{Ownership: true})
	require.NoError(t, os.Lchown(filepath.Join(dir, "f"), 1000, 1000))
	require.Equal(t, plain, sum(DigestOptions{}), "ownership must not count unless asked")
	require.NotEqual(t, owned, sum(DigestOptions{Ownership: true}))
}

func TestExcluding(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		"app/main.go": "m", "app/main_test.go": "t", "app/doc/a.md": "a", "app/keep.md": "k",
		"home.txt": "t", "homer": "h", "debug.log": "l",
		".dockerignore": "*.log\n",
	})
	c, err := FromDir(dir, "")
	require.NoError(t, err)
	x, err := c.Excluding([]string{"*_test.go", "doc", "*.txt"})
	require.NoError(t, err)

	ms, err := x.Match([]string{"app", "hom*"})
	require.NoError(t, err)
	require.Equal(t, []string{"app", "homer"}, rels(ms), "a matched name is excluded by its name")
	require.Equal(t, []string{"app", "app/keep.md", "app/main.go", "homer"}, walked(t, x, ms),
		"below a match, paths relative to it are excluded")

	ms, err = x.Match([]string{"home.txt"})
	require.NoError(t, err, "a source that is all excluded copies nothing rather than failing")
	require.Empty(t, ms)
	_, err = x.Match([]string{"debug.log"})
	require.ErrorIs(t, err, errdefs.ErrNotFound, "the ignore rules still apply")

	same, err := c.Excluding(nil)
	require.NoError(t, err)
	require.Same(t, c, same)
	_, err = c.Excluding([]string{"["})
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
}
