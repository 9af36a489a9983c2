package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/testutil"
)

// capNetBindService is a version 2 security.capability value granting
// CAP_NET_BIND_SERVICE, effective.
func capNetBindService() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<10)
	return string(b)
}

func TestApplyKinds(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	t0 := time.Unix(1500000000, 0)
	t1 := time.Unix(1600000000, 123456789)
	t2 := time.Unix(1650000000, 5)
	t3 := time.Unix(1660000000, 0)

	rootEnt := dir("./", 0o751)
	rootEnt.hdr.ModTime = t0
	etc := dir("etc/", 0o750)
	etc.hdr.Uid, etc.hdr.Gid, etc.hdr.ModTime = 1, 2, t1
	f := file("etc/file", "hello")
	f.hdr.Mode, f.hdr.Uid, f.hdr.Gid = 0o4755, 1000, 2000
	f.hdr.ModTime, f.hdr.AccessTime = t2, t3
	f.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.note":           "hi",
		"SCHILY.xattr.security.capability": capNetBindService(),
		"SCHILY.xattr.security.selinux":    "system_u:object_r:bin_t:s0",
	}
	ln := symlink("etc/link", "file")
	ln.hdr.Uid, ln.hdr.Gid, ln.hdr.ModTime = 3, 4, t2
	null := entry{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}}
	loop := entry{hdr: tar.Header{Name: "dev/loop9", Typeflag: tar.TypeBlock, Devmajor: 7, Devminor: 9, Mode: 0o660, Gid: 6}}
	fifo := entry{hdr: tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o620}}
	wo := file(".wh.gone", "")
	opq := file("etc/.wh..wh..opq", "")

	data := tarOf(t, rootEnt, etc, f, ln, hardlink("etc/hard", "/etc/file"),
		dir("dev/", 0o755), null, loop, fifo, dir("tmp/", 0o1777), dir("sgid/", 0o2755), wo, opq)
	data = append(data, make([]byte, 1536)...) // padding some writers add
	stats, err := Apply(context.Background(), root, bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, int64(13), stats.Entries)
	require.Equal(t, int64(2), stats.Whiteouts)
	require.Equal(t, int64(5), stats.FileBytes)
	require.Equal(t, int64(len(data)), stats.StreamBytes, "the whole stream is read")

	st := lstat(t, root)
	require.Equal(t, uint32(0o751), st.Mode&0o7777)
	require.Equal(t, t0.Unix(), st.Mtim.Sec)

	st = lstat(t, filepath.Join(root, "etc"))
	require.Equal(t, uint32(0o750), st.Mode&0o7777)
	require.Equal(t, [2]uint32{1, 2}, [2]uint32{st.Uid, st.Gid})
	require.Equal(t, t1.UnixNano(), st.Mtim.Nano(), "directory time survives its children")
	v, err := getX(t, filepath.Join(root, "etc"), "trusted.overlay.opaque")
	require.NoError(t, err)
	require.Equal(t, "y", v)

	p := filepath.Join(root, "etc/file")
	st = lstat(t, p)
	require.Equal(t, uint32(unix.S_IFREG|0o4755), st.Mode, "setuid survives the chown")
	require.Equal(t, [2]uint32{1000, 2000}, [2]uint32{st.Uid, st.Gid})
	require.Equal(t, t2.UnixNano(), st.Mtim.Nano())
	require.Equal(t, t3.UnixNano(), st.Atim.Nano())
	require.Equal(t, uint64(2), st.Nlink)
	content, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "hello", string(content))
	v, err = getX(t, p, "user.note")
	require.NoError(t, err)
	require.Equal(t, "hi", v)
	v, err = getX(t, p, "security.capability")
	require.NoError(t, err)
	require.Equal(t, capNetBindService(), v, "file capabilities are kept")
	_, err = getX(t, p, "security.selinux")
	require.Error(t, err, "host security labels are not taken from layers")

	hard := lstat(t, filepath.Join(root, "etc/hard"))
	require.Equal(t, st.Ino, hard.Ino)

	st = lstat(t, filepath.Join(root, "etc/link"))
	require.Equal(t, uint32(unix.S_IFLNK), st.Mode&unix.S_IFMT)
	require.Equal(t, [2]uint32{3, 4}, [2]uint32{st.Uid, st.Gid})
	require.Equal(t, t2.UnixNano(), st.Mtim.Nano(), "symlink times set with lutimes")
	target, err := os.Readlink(filepath.Join(root, "etc/link"))
	require.NoError(t, err)
	require.Equal(t, "file", target)

	st = lstat(t, filepath.Join(root, "dev/null"))
	require.Equal(t, uint32(unix.S_IFCHR|0o666), st.Mode)
	require.Equal(t, unix.Mkdev(1, 3), st.Rdev)
	st = lstat(t, filepath.Join(root, "dev/loop9"))
	require.Equal(t, uint32(unix.S_IFBLK|0o660), st.Mode)
	require.Equal(t, unix.Mkdev(7, 9), st.Rdev)
	require.Equal(t, uint32(6), st.Gid)
	st = lstat(t, filepath.Join(root, "run/fifo"))
	require.Equal(t, uint32(unix.S_IFIFO|0o620), st.Mode)
	st = lstat(t, filepath.Join(root, "run"))
	require.Equal(t, uint32(unix.S_IFDIR|0o755), st.Mode, "missing parents are made 0755")
	require.Equal(t, uint32(unix.S_IFDIR|0o1777), lstat(t, filepath.Join(root, "tmp")).Mode)
	require.Equal(t, uint32(unix.S_IFDIR|0o2755), lstat(t, filepath.Join(root, "sgid")).Mode)

	st = lstat(t, filepath.Join(root, "gone"))
	require.Equal(t, uint32(unix.S_IFCHR), st.Mode&unix.S_IFMT, "whiteout is a char device")
	require.Zero(t, st.Rdev)
}

func TestApplyReplaces(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	keep := file("m/keep", "k")
	data := tarOf(t,
		file("a", "x"), dir("a/", 0o755), file("a/f", "in a"),
		dir("d/", 0o755), file("d/child", "c"), dir("d/sub/", 0o755), file("d", "now a file"),
		dir("m/", 0o755), keep, dir("m/", 0o700),
		symlink("s", "a"), file("s", "plain"),
		file("r", "r"), symlink("r", "a/f"),
		dir("usr/lib/", 0o755), symlink("lib", "usr/lib"), file("lib/x", "via link"),
	)
	_, err := Apply(context.Background(), root, bytes.NewReader(data))
	require.NoError(t, err)

	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		require.NoError(t, err, p)
		return string(b)
	}
	require.Equal(t, "in a", read("a/f"), "a file replaced by a directory")
	require.Equal(t, "now a file", read("d"), "a directory replaced by a file")
	require.Equal(t, "k", read("m/keep"), "a directory over a directory merges")
	require.Equal(t, uint32(0o700), lstat(t, filepath.Join(root, "m")).Mode&0o7777, "and takes the later attributes")
	require.Equal(t, uint32(unix.S_IFREG), lstat(t, filepath.Join(root, "s")).Mode&unix.S_IFMT)
	require.Equal(t, "plain", read("s"))
	require.Equal(t, uint32(unix.S_IFLNK), lstat(t, filepath.Join(root, "r")).Mode&unix.S_IFMT)
	require.Equal(t, "via link", read("usr/lib/x"), "a relative in-layer symlink is followed like Docker")
}

func TestApplyCancelled(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(tarOf(t, file("a", "x"))))
	require.ErrorIs(t, err, context.Canceled)
}

// pwned is the name hostile layers try to create outside the root.
const pwned = "berth-pwned"

func TestApplyHostile(t *testing.T) {
	testutil.RequiresRoot(t)
	passwdBefore := lstat(t, "/etc/passwd")
	type tc struct {
		entries func(sentinel string) []entry
		// bad is the name of the entry that must be refused; empty when
		// the layer is hostile-looking but must apply safely.
		bad    string
		unsafe bool // the error must be ErrUnsafe
		check  func(t *testing.T, root string)
	}
	wh := func(name string) entry { return file(name, "") }
	cases := map[string]tc{
		"dotdot":       {func(string) []entry { return []entry{file("../"+pwned, "x")} }, "../" + pwned, true, nil},
		"abs dotdot":   {func(string) []entry { return []entry{file("/../../"+pwned, "x")} }, "/../../" + pwned, true, nil},
		"inner dotdot": {func(string) []entry { return []entry{file("a/../../"+pwned, "x")} }, "a/../../" + pwned, true, nil},
		"abs symlink escape": {func(s string) []entry {
			return []entry{symlink("evil", s), file("evil/"+pwned, "x")}
		}, "evil/" + pwned, true, nil},
		"symlink to /etc": {func(string) []entry {
			return []entry{symlink("evil", "/etc"), file("evil/passwd", "root::0:0::/:/bin/sh\n")}
		}, "evil/passwd", true, nil},
		"rel symlink escape": {func(string) []entry {
			return []entry{symlink("evil", "../sentinel"), file("evil/"+pwned, "x")}
		}, "evil/" + pwned, true, nil},
		"symlink to parent made earlier": {func(string) []entry {
			return []entry{dir("sub/", 0o755), symlink("sub/up", ".."), symlink("sub/up2", "up/.."), file("sub/up2/"+pwned, "x")}
		}, "sub/up2/" + pwned, true, nil},
		"symlink chain": {func(string) []entry {
			return []entry{symlink("l1", "l2"), symlink("l2", "l3"), symlink("l3", "../sentinel"), dir("l1/"+pwned+"/", 0o755)}
		}, "l1/" + pwned + "/", true, nil},
		"symlink loop": {func(string) []entry {
			return []entry{symlink("a", "b"), symlink("b", "a"), file("a/x", "x")}
		}, "a/x", true, nil},
		"dangling symlink as parent": {func(string) []entry {
			return []entry{symlink("l", "nowhere"), file("l/x", "x")}
		}, "l/x", true, nil},
		"hardlink to /etc/passwd": {func(string) []entry {
			return []entry{hardlink("h", "/etc/passwd")}
		}, "h", true, nil},
		"hardlink outside": {func(string) []entry {
			return []entry{hardlink("h", "../sentinel/keep")}
		}, "h", true, nil},
		"hardlink through rel symlink": {func(string) []entry {
			return []entry{symlink("evil", "../sentinel"), hardlink("h", "evil/keep")}
		}, "h", true, nil},
		"hardlink through abs symlink": {func(s string) []entry {
			return []entry{symlink("evil", s), hardlink("h", "evil/keep")}
		}, "h", true, nil},
		"device traversal": {func(string) []entry {
			return []entry{{hdr: tar.Header{Name: "../" + pwned, Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}}
		}, "../" + pwned, true, nil},
		"device through symlink": {func(string) []entry {
			return []entry{symlink("evil", "../sentinel"), {hdr: tar.Header{Name: "evil/" + pwned, Typeflag: tar.TypeBlock, Devmajor: 8}}}
		}, "evil/" + pwned, true, nil},
		"whiteout through symlink": {func(string) []entry {
			return []entry{symlink("evil", "../sentinel"), wh("evil/.wh.keep")}
		}, "evil/.wh.keep", true, nil},
		"opaque through symlink": {func(string) []entry {
			return []entry{symlink("evil", "../sentinel"), wh("evil/.wh..wh..opq")}
		}, "evil/.wh..wh..opq", true, nil},
		"whiteout of dotdot": {func(string) []entry { return []entry{wh("a/.wh...")} }, "a/.wh...", true, nil},
		"huge PAX header": {func(string) []entry {
			e := file("f", "x")
			e.hdr.PAXRecords = map[string]string{"comment": strings.Repeat("x", 512<<10)}
			return []entry{e}
		}, "f", true, nil},
		"huge name":      {func(string) []entry { return []entry{file(strings.Repeat("d/", 2500)+"f", "x")} }, strings.Repeat("d/", 2500) + "f", true, nil},
		"long component": {func(string) []entry { return []entry{file(strings.Repeat("n", 300), "x")} }, strings.Repeat("n", 300), true, nil},
		"overlay xattr": {func(string) []entry {
			e := dir("d/", 0o755)
			e.hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
			return []entry{e}
		}, "d/", true, nil},
		"unsupported type": {func(string) []entry {
			return []entry{{hdr: tar.Header{Name: "c", Typeflag: tar.TypeCont}}}
		}, "c", false, nil},
		// These look hostile but are fine: a later entry replaces the
		// symlink itself, and a hardlink to a symlink links the symlink.
		"file replaces escaping symlink": {func(string) []entry {
			return []entry{symlink("f", "../sentinel/keep"), file("f", "mine")}
		}, "", false, func(t *testing.T, root string) {
			b, err := os.ReadFile(filepath.Join(root, "f"))
			require.NoError(t, err)
			require.Equal(t, "mine", string(b))
		}},
		"hardlink to escaping symlink": {func(string) []entry {
			return []entry{symlink("f", "../sentinel/keep"), hardlink("h", "f")}
		}, "", false, func(t *testing.T, root string) {
			require.Equal(t, uint32(unix.S_IFLNK), lstat(t, filepath.Join(root, "h")).Mode&unix.S_IFMT)
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			sentinel := filepath.Join(base, "sentinel")
			require.NoError(t, os.Mkdir(root, 0o755))
			require.NoError(t, os.Mkdir(sentinel, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(sentinel, "keep"), []byte("keep"), 0o644))
			before := lstat(t, filepath.Join(sentinel, "keep"))

			_, err := Apply(context.Background(), root, bytes.NewReader(tarOf(t, c.entries(sentinel)...)))
			if c.bad == "" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				var ee *EntryError
				require.True(t, errors.As(err, &ee), "error names the entry: %v", err)
				require.Equal(t, c.bad, ee.Name)
				if c.unsafe {
					require.ErrorIs(t, err, ErrUnsafe)
				} else {
					require.ErrorIs(t, err, ErrUnsupported)
				}
			}
			if c.check != nil {
				c.check(t, root)
			}

			names, err := os.ReadDir(sentinel)
			require.NoError(t, err)
			require.Len(t, names, 1, "nothing added next to the sentinel")
			after := lstat(t, filepath.Join(sentinel, "keep"))
			require.Equal(t, before.Ino, after.Ino)
			require.Equal(t, before.Nlink, after.Nlink, "no hardlink to the sentinel")
			require.Equal(t, before.Mtim, after.Mtim)
			b, err := os.ReadFile(filepath.Join(sentinel, "keep"))
			require.NoError(t, err)
			require.Equal(t, "keep", string(b))
			_, err = getX(t, sentinel, "trusted.overlay.opaque")
			require.Error(t, err, "sentinel not marked opaque")
			for _, d := range []string{base, filepath.Dir(base), "/", os.TempDir()} {
				require.NoFileExists(t, filepath.Join(d, pwned))
				require.NoDirExists(t, filepath.Join(d, pwned))
			}
			entries, err := os.ReadDir(base)
			require.NoError(t, err)
			require.Len(t, entries, 2, "only root and sentinel in the base")
			passwd := lstat(t, "/etc/passwd")
			require.Equal(t, passwdBefore.Nlink, passwd.Nlink)
			require.Equal(t, passwdBefore.Mtim, passwd.Mtim)
		})
	}
}

func TestApplyHugePAXRefusedByReader(t *testing.T) {
	testutil.RequiresRoot(t)
	// A PAX header over archive/tar's own 1 MiB bound, which its writer
	// will not produce, so it is written by hand.
	rec := paxRecord("comment", strings.Repeat("x", 2<<20))
	var buf bytes.Buffer
	buf.Write(rawHeader(t, "PaxHeaders/f", tar.TypeXHeader, int64(len(rec))))
	buf.WriteString(rec)
	buf.Write(make([]byte, (512-len(rec)%512)%512))
	buf.Write(tarOf(t, file("f", "x")))
	_, err := Apply(context.Background(), t.TempDir(), &buf)
	require.ErrorIs(t, err, tar.ErrFieldTooLong)
	require.Contains(t, err.Error(), "read layer entry")
}

// paxRecord formats one PAX record, whose length prefix counts itself.
func paxRecord(k, v string) string {
	body := " " + k + "=" + v + "\n"
	n := len(body)
	for {
		s := strconv.Itoa(n) + body
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// rawHeader writes a USTAR header block by hand.
func rawHeader(t testing.TB, name string, typ byte, size int64) []byte {
	t.Helper()
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func TestApplySparseKeepsHoles(t *testing.T) {
	testutil.RequiresRoot(t)
	gnutar, err := exec.LookPath("tar")
	if err != nil {
		testutil.Missing(t, "GNU tar is needed to make a sparse archive")
	}
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "sparse"))
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("data"), 1<<30) // 1 GiB of hole, then data
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<30+1<<20)) // and a trailing hole
	require.NoError(t, f.Close())
	out, err := exec.Command(gnutar, "--sparse", "--format=posix", "-C", src, "-cf", "-", "sparse").Output()
	require.NoError(t, err)
	require.Less(t, len(out), 1<<20, "the archive itself is small")

	root := t.TempDir()
	_, err = Apply(context.Background(), root, bytes.NewReader(out))
	require.NoError(t, err)
	st := lstat(t, filepath.Join(root, "sparse"))
	require.Equal(t, int64(1<<30+1<<20), st.Size)
	require.Less(t, st.Blocks*512, int64(1<<20), "holes stay holes")
	g, err := os.Open(filepath.Join(root, "sparse"))
	require.NoError(t, err)
	defer g.Close()
	buf := make([]byte, 4)
	_, err = g.ReadAt(buf, 1<<30)
	require.NoError(t, err)
	require.Equal(t, "data", string(buf))
}
