package files

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/build/source"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/testutil"
)

// readTree lists dir as path -> content ("/" suffix for directories,
// "->target" for symlinks).
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
		case d.IsDir():
			out[rel+"/"] = ""
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			out[rel] = "->" + target
		default:
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			out[rel] = string(data)
		}
		return nil
	}))
	return out
}

var srcTree = map[string]string{
	"a.txt": "A", "b.txt": "B", "dir/x": "X", "dir/sub/y": "Y", "dir/ln": "->x",
}

func TestCopyRules(t *testing.T) {
	tests := []struct {
		name    string
		before  map[string]string // the root filesystem before
		sources []string
		dest    string
		want    map[string]string // entries that must be in the root after
		absent  []string
		errText string
	}{
		{name: "file to file", sources: []string{"a.txt"}, dest: "/out/b.txt",
			want: map[string]string{"out/": "", "out/b.txt": "A"}},
		{name: "file to dir/", sources: []string{"a.txt"}, dest: "/out/",
			want: map[string]string{"out/": "", "out/a.txt": "A"}},
		{name: "file into an existing dir", before: map[string]string{"existing/": ""}, sources: []string{"a.txt"}, dest: "/existing",
			want: map[string]string{"existing/": "", "existing/a.txt": "A"}},
		{name: "file over a file", before: map[string]string{"f": "old"}, sources: []string{"a.txt"}, dest: "/f",
			want: map[string]string{"f": "A"}},
		{name: "file at the root", sources: []string{"a.txt"}, dest: "/",
			want: map[string]string{"a.txt": "A"}},
		{name: "dir copies contents", sources: []string{"dir"}, dest: "/dst",
			want:   map[string]string{"dst/": "", "dst/x": "X", "dst/sub/": "", "dst/sub/y": "Y", "dst/ln": "->x"},
			absent: []string{"dst/dir"}},
		{name: "dir merges into an existing dir", before: map[string]string{"dst/keep": "k", "dst/x": "old"}, sources: []string{"dir"}, dest: "/dst/",
			want: map[string]string{"dst/keep": "k", "dst/x": "X", "dst/sub/y": "Y"}},
		{name: "several sources", sources: []string{"a.txt", "b.txt"}, dest: "/dst/",
			want: map[string]string{"dst/": "", "dst/a.txt": "A", "dst/b.txt": "B"}},
		{name: "several sources without slash", sources: []string{"a.txt", "b.txt"}, dest: "/dst",
			want: map[string]string{"dst/a.txt": "A", "dst/b.txt": "B"}},
		{name: "wildcard makes a dir", sources: []string{"a.*"}, dest: "/dst",
			want: map[string]string{"dst/": "", "dst/a.txt": "A"}},
		{name: "dest through a symlink to /etc", before: map[string]string{"etc/": "", "etclink": "->/etc"}, sources: []string{"a.txt"}, dest: "/etclink/",
			want: map[string]string{"etc/a.txt": "A", "etclink": "->/etc"}},
		{name: "dest through a relative symlink out", before: map[string]string{"up": "->../../.."}, sources: []string{"a.txt"}, dest: "/up/x/",
			want: map[string]string{"x/a.txt": "A"}},
		{name: "dest dot dot stays inside", sources: []string{"a.txt"}, dest: "../../x",
			want: map[string]string{"x": "A"}},
		{name: "dir through a merged-usr symlink", before: map[string]string{"usr/lib/": "", "lib": "->usr/lib"}, sources: []string{"dir"}, dest: "/lib/",
			want: map[string]string{"usr/lib/x": "X", "usr/lib/sub/y": "Y", "lib": "->usr/lib"}},
		{name: "file over a dir", before: map[string]string{"dst/sub/": ""}, sources: []string{"dir/sub/y"}, dest: "/dst/sub/y/",
			want: map[string]string{"dst/sub/y/y": "Y"}},
		{name: "dir over a file", before: map[string]string{"dst/sub": "file"}, sources: []string{"dir"}, dest: "/dst",
			errText: "cannot replace file /dst/sub with a directory"},
		{name: "file replacing a dir", before: map[string]string{"dst/x/": "", "dst/x/inner": "i"}, sources: []string{"dir"}, dest: "/dst",
			errText: "cannot replace directory /dst/x with a file"},
		{name: "dest below a file", before: map[string]string{"f": "file"}, sources: []string{"a.txt"}, dest: "/f/x/",
			errText: "not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			ctxDir, root := filepath.Join(base, "ctx"), filepath.Join(base, "root")
			require.NoError(t, os.Mkdir(root, 0o755))
			testutil.WriteTree(t, ctxDir, srcTree)
			testutil.WriteTree(t, root, tc.before)
			src, err := source.FromDir(ctxDir, "")
			require.NoError(t, err)
			ms, err := src.Match(tc.sources)
			require.NoError(t, err)
			err = Copy(context.Background(), src, ms, root, tc.dest, CopyOptions{})
			if tc.errText != "" {
				require.ErrorContains(t, err, tc.errText)
				return
			}
			require.NoError(t, err)
			got := readTree(t, root)
			for p, want := range tc.want {
				require.Contains(t, got, p)
				require.Equal(t, want, got[p], p)
			}
			for _, p := range tc.absent {
				require.NotContains(t, got, p)
			}
			// Nothing landed next to the root.
			entries, err := os.ReadDir(base)
			require.NoError(t, err)
			require.Len(t, entries, 2)
		})
	}
}

func TestCopyKeepsMetadata(t *testing.T) {
	ctxDir, root := t.TempDir(), t.TempDir()
	testutil.WriteTree(t, ctxDir, map[string]string{"d/exe": "#!", "d/h1": "same", "d/l": "->exe"})
	require.NoError(t, os.Chmod(filepath.Join(ctxDir, "d/exe"), 0o755|fs.ModeSetuid))
	require.NoError(t, os.Link(filepath.Join(ctxDir, "d/h1"), filepath.Join(ctxDir, "d/h2")))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	require.NoError(t, os.Chtimes(filepath.Join(ctxDir, "d/exe"), old, old))
	require.NoError(t, os.Chtimes(filepath.Join(ctxDir, "d"), old, old))
	src, err := source.FromDir(ctxDir, "")
	require.NoError(t, err)
	ms, err := src.Match([]string{"d"})
	require.NoError(t, err)
	require.NoError(t, Copy(context.Background(), src, ms, root, "/out/d/", CopyOptions{}))

	fi, err := os.Stat(filepath.Join(root, "out/d/exe"))
	require.NoError(t, err)
	require.Equal(t, 0o755|fs.ModeSetuid, fi.Mode()&permBits)
	require.True(t, fi.ModTime().Equal(old), "mtime %v", fi.ModTime())
	h1, err := os.Stat(filepath.Join(root, "out/d/h1"))
	require.NoError(t, err)
	h2, err := os.Stat(filepath.Join(root, "out/d/h2"))
	require.NoError(t, err)
	require.True(t, os.SameFile(h1, h2), "hard links stay linked")
	target, err := os.Readlink(filepath.Join(root, "out/d/l"))
	require.NoError(t, err)
	require.Equal(t, "exe", target)
	dfi, err := os.Stat(filepath.Join(root, "out/d"))
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o755), dfi.Mode().Perm())
}

func owner(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func TestCopyOwnershipAndMode(t *testing.T) {
	testutil.RequiresRoot(t)
	uid, gid := 1000, 1001
	mode := fs.FileMode(0o640)
	ctxDir := t.TempDir()
	testutil.WriteTree(t, ctxDir, map[string]string{"d/f": "f", "d/sub/g": "g", "d/l": "->f"})
	require.NoError(t, os.Lchown(filepath.Join(ctxDir, "d/f"), 123, 456))
	require.NoError(t, os.Lchown(filepath.Join(ctxDir, "d/l"), 123, 456))
	tests := []struct {
		name             string
		o                CopyOptions
		fileUID, fileGID int
		newDirUID        int
		fileMode, dirMod fs.FileMode
	}{
		{name: "context files become root's", fileUID: 0, fileGID: 0, fileMode: 0o644, dirMod: 0o755},
		{name: "keep ownership", o: CopyOptions{KeepOwnership: true}, fileUID: 123, fileGID: 456, fileMode: 0o644, dirMod: 0o755},
		{name: "chown", o: CopyOptions{UID: &uid, GID: &gid}, fileUID: uid, fileGID: gid, newDirUID: uid, fileMode: 0o644, dirMod: 0o755},
		{name: "chown wins over keep", o: CopyOptions{UID: &uid, GID: &gid, KeepOwnership: true}, fileUID: uid, fileGID: gid, newDirUID: uid, fileMode: 0o644, dirMod: 0o755},
		{name: "chmod", o: CopyOptions{Mode: &mode}, fileMode: 0o640, dirMod: 0o640},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var src *source.Context
			if tc.o.KeepOwnership {
				src = source.FromRoot(ctxDir)
			} else {
				var err error
				src, err = source.FromDir(ctxDir, "")
				require.NoError(t, err)
			}
			ms, err := src.Match([]string{"d"})
			require.NoError(t, err)
			require.NoError(t, Copy(context.Background(), src, ms, root, "/new/dst/", tc.o))
			for _, p := range []string{"new/dst/f", "new/dst/l"} {
				u, g := owner(t, filepath.Join(root, p))
				require.Equal(t, []int{tc.fileUID, tc.fileGID}, []int{u, g}, p)
			}
			u, _ := owner(t, filepath.Join(root, "new/dst/sub/g"))
			require.Equal(t, tc.newDirUID, u, "g comes from a root-owned source file or is chowned")
			u, _ = owner(t, filepath.Join(root, "new"))
			require.Equal(t, tc.newDirUID, u, "created parents belong to the --chown user")
			fi, err := os.Lstat(filepath.Join(root, "new/dst/f"))
			require.NoError(t, err)
			require.Equal(t, tc.fileMode, fi.Mode().Perm())
			fi, err = os.Lstat(filepath.Join(root, "new/dst/sub"))
			require.NoError(t, err)
			require.Equal(t, tc.dirMod, fi.Mode().Perm())
		})
	}
}

// makeTar writes a file (or, for a body "->target", a symlink) per entry,
// in name order, owned by 42:43.
func makeTar(t *testing.T, entries map[string]string) []byte {
	t.Helper()
	var out []testutil.TarEntry
	for _, n := range slices.Sorted(maps.Keys(entries)) {
		e := testutil.TarEntry{Name: n, Body: entries[n], Mode: 0o600, UID: 42, GID: 43}
		if link, ok := strings.CutPrefix(e.Body, "->"); ok {
			e.Type, e.Link = tar.TypeSymlink, link
		}
		out = append(out, e)
	}
	return testutil.Tar(t, out...)
}

func TestCopyExtractsArchives(t *testing.T) {
	plain := makeTar(t, map[string]string{"pkg/a": "a", "pkg/b": "b"})
	var gz bytes.Buffer
	zw := pgzip.NewWriter(&gz)
	_, err := zw.Write(plain)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	zst := enc.EncodeAll(plain, nil)
	require.NoError(t, enc.Close())

	tests := []struct {
		name    string
		data    []byte
		extract bool
		want    map[string]string
	}{
		{"plain", plain, true, map[string]string{"opt/pkg/a": "a", "opt/pkg/b": "b"}},
		{"gzip", gz.Bytes(), true, map[string]string{"opt/pkg/a": "a", "opt/pkg/b": "b"}},
		{"zstd", zst, true, map[string]string{"opt/pkg/a": "a", "opt/pkg/b": "b"}},
		{"not an archive", []byte("just text"), true, map[string]string{"opt/archive": "just text"}},
		{"COPY does not extract", plain, false, map[string]string{"opt/archive": string(plain)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctxDir, root := t.TempDir(), t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "archive"), tc.data, 0o644))
			src, err := source.FromDir(ctxDir, "")
			require.NoError(t, err)
			ms, err := src.Match([]string{"archive"})
			require.NoError(t, err)
			require.NoError(t, Copy(context.Background(), src, ms, root, "/opt/", CopyOptions{ExtractArchives: tc.extract}))
			got := readTree(t, root)
			for p, want := range tc.want {
				require.Equal(t, want, got[p], p)
			}
			if tc.extract && tc.name != "not an archive" {
				require.NotContains(t, got, "opt/archive")
				fi, err := os.Stat(filepath.Join(root, "opt/pkg/a"))
				require.NoError(t, err)
				require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
				require.True(t, fi.ModTime().Equal(time.Unix(1e9, 0)))
				if os.Geteuid() == 0 {
					u, g := owner(t, filepath.Join(root, "opt/pkg/a"))
					require.Equal(t, []int{42, 43}, []int{u, g}, "unpacked files keep the archive's owners")
				}
			}
		})
	}
}

func TestCopyRefusesEscapingArchive(t *testing.T) {
	tests := []struct {
		name    string
		entries map[string]string
	}{
		{"dot dot", map[string]string{"ok": "ok", "../../evil": "x"}},
		{"hidden dot dot", map[string]string{"a/../../../evil": "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			ctxDir, root := filepath.Join(base, "ctx"), filepath.Join(base, "root")
			require.NoError(t, os.Mkdir(ctxDir, 0o755))
			require.NoError(t, os.Mkdir(root, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "evil.tar"), makeTar(t, tc.entries), 0o644))
			src, err := source.FromDir(ctxDir, "")
			require.NoError(t, err)
			ms, err := src.Match([]string{"evil.tar"})
			require.NoError(t, err)
			err = Copy(context.Background(), src, ms, root, "/a/b/", CopyOptions{ExtractArchives: true})
			require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
			require.ErrorContains(t, err, "leaves the destination")
			for _, p := range []string{"evil", "root/evil", "root/a/evil", "ctx/evil"} {
				_, err := os.Lstat(filepath.Join(base, p))
				require.ErrorIs(t, err, fs.ErrNotExist, p)
			}
		})
	}
}

func TestCopyArchiveSymlinkStaysInside(t *testing.T) {
	base := t.TempDir()
	ctxDir, root := filepath.Join(base, "ctx"), filepath.Join(base, "root")
	require.NoError(t, os.MkdirAll(ctxDir, 0o755))
	require.NoError(t, os.MkdirAll(root, 0o755))
	data := makeTar(t, map[string]string{"l": "->" + base, "l/evil": "x"})
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "a.tar"), data, 0o644))
	src, err := source.FromDir(ctxDir, "")
	require.NoError(t, err)
	ms, err := src.Match([]string{"a.tar"})
	require.NoError(t, err)
	// The link's target resolves inside root, where it does not exist.
	_ = Copy(context.Background(), src, ms, root, "/", CopyOptions{ExtractArchives: true})
	_, err = os.Lstat(filepath.Join(base, "evil"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestFetch(t *testing.T) {
	lastMod := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	body := []byte("downloaded bytes")
	mux := http.NewServeMux()
	mux.HandleFunc("/files/tool.tgz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Last-Modified", lastMod.Format(http.TimeFormat))
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write(make([]byte, 1000))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, _ *http.Request) {
		for range 10 {
			_, _ = w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	require.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1:"))

	tests := []struct {
		path    string
		max     int64
		name    string
		mtime   *time.Time
		class   error
		errText string
	}{
		{path: "/files/tool.tgz", max: 1 << 20, name: "tool.tgz", mtime: &lastMod},
		{path: "/", max: 1 << 20, name: "download"},
		{path: "/missing", max: 1 << 20, class: errdefs.ErrNotFound, errText: "404"},
		{path: "/broken", max: 1 << 20, errText: "500"},
		{path: "/big", max: 999, class: errdefs.ErrInvalidArgument, errText: "limit"},
		{path: "/chunked", max: 999, class: errdefs.ErrInvalidArgument, errText: "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			tmp := t.TempDir()
			u := srv.URL + tc.path
			src, m, sum, err := Fetch(context.Background(), srv.Client(), u, tmp, tc.max)
			if tc.errText != "" {
				require.ErrorContains(t, err, tc.errText)
				require.ErrorContains(t, err, u)
				if tc.class != nil {
					require.ErrorIs(t, err, tc.class)
				}
				left, err := os.ReadDir(tmp)
				require.NoError(t, err)
				require.Empty(t, left)
				return
			}
			require.NoError(t, err)
			require.Equal(t, digest.FromBytes(body), sum)
			require.Equal(t, tc.name, m.Rel)
			require.Equal(t, u, m.Source)
			data, err := os.ReadFile(m.Abs)
			require.NoError(t, err)
			require.Equal(t, body, data)
			require.Equal(t, fs.FileMode(0o600), m.Info.Mode().Perm())
			if tc.mtime != nil {
				require.True(t, m.Info.ModTime().Equal(*tc.mtime), "mtime %v", m.Info.ModTime())
			}
			// Ready for Copy.
			root := t.TempDir()
			require.NoError(t, Copy(context.Background(), src, []source.Match{m}, root, "/dl/", CopyOptions{}))
			got, err := os.ReadFile(filepath.Join(root, "dl", tc.name))
			require.NoError(t, err)
			require.Equal(t, body, got)
		})
	}
}

func TestFetchCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, _, err := Fetch(ctx, srv.Client(), srv.URL+"/slow", t.TempDir(), 1<<20)
	require.Error(t, err)
	require.ErrorContains(t, err, fmt.Sprint(srv.URL, "/slow"))
}
