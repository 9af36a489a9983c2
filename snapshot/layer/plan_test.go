package layer

import (
	"archive/tar"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
)

func TestCleanName(t *testing.T) {
	ok := map[string]string{
		"a":            "a",
		"./a/b/":       "a/b",
		"/etc/passwd":  "etc/passwd",
		"//x//y":       "x/y",
		"a/../b":       "b",
		"./":           ".",
		"/":            ".",
		"a/./b/../../": ".",
	}
	for in, want := range ok {
		got, err := cleanName(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	bad := []string{
		"", "..", "../x", "/../../x", "a/../../x", "./../x",
		"a\x00b", strings.Repeat("a/", MaxNameLen/2+1),
		strings.Repeat("n", MaxComponentLen+1),
	}
	for _, in := range bad {
		_, err := cleanName(in)
		require.ErrorIs(t, err, ErrUnsafe, "%q", in)
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, "%q", in)
	}
}

func TestPlanEntryKinds(t *testing.T) {
	mt := time.Unix(1700000000, 5)
	cases := []struct {
		hdr  tar.Header
		kind opKind
		path string
	}{
		{tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, opDir, "d"},
		{tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, opRoot, "."},
		{tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Size: 3}, opFile, "d/f"},
		{tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, opSymlink, "l"},
		{tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "/d/f"}, opHardlink, "h"},
		{tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, opDevice, "dev/null"},
		{tar.Header{Name: "p", Typeflag: tar.TypeFifo}, opDevice, "p"},
		{tar.Header{Name: "d/.wh.f", Typeflag: tar.TypeReg}, opWhiteout, "d/f"},
		{tar.Header{Name: "d/.wh..wh..opq", Typeflag: tar.TypeReg}, opOpaque, "d"},
		{tar.Header{Name: ".wh..wh..opq", Typeflag: tar.TypeReg}, opOpaque, "."},
		{tar.Header{Name: ".wh..wh.plnk/123", Typeflag: tar.TypeReg}, opSkip, ".wh..wh.plnk/123"},
		{tar.Header{Name: "x", Typeflag: tar.TypeXGlobalHeader}, opSkip, ""},
	}
	for _, c := range cases {
		c.hdr.ModTime = mt
		e, err := planEntry(&c.hdr)
		require.NoError(t, err, c.hdr.Name)
		require.Equal(t, c.kind, e.kind, c.hdr.Name)
		require.Equal(t, c.path, e.path, c.hdr.Name)
	}

	e, err := planEntry(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "/d/f"})
	require.NoError(t, err)
	require.Equal(t, "d/f", e.link, "hardlink targets are cleaned like names")

	e, err = planEntry(&tar.Header{Name: "b", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 1, Mode: 0o4660, Uid: 5, Gid: 6, ModTime: mt})
	require.NoError(t, err)
	require.Equal(t, uint32(unix.S_IFBLK), e.devType)
	require.Equal(t, unix.Mkdev(8, 1), e.dev)
	require.Equal(t, uint32(0o4660), e.mode)
	require.Equal(t, mt, e.atime, "atime falls back to mtime")
	require.Equal(t, 5, e.uid)
}

func TestPlanEntryRefuses(t *testing.T) {
	cases := map[string]tar.Header{
		"traversal":         {Name: "../x", Typeflag: tar.TypeReg},
		"hardlink escape":   {Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"},
		"hardlink to root":  {Name: "h", Typeflag: tar.TypeLink, Linkname: "/"},
		"hardlink to self":  {Name: "h", Typeflag: tar.TypeLink, Linkname: "./h"},
		"whiteout dotdot":   {Name: "d/.wh...", Typeflag: tar.TypeReg},
		"whiteout empty":    {Name: "d/.wh.", Typeflag: tar.TypeReg},
		"root as file":      {Name: "./", Typeflag: tar.TypeReg},
		"empty symlink":     {Name: "l", Typeflag: tar.TypeSymlink},
		"long symlink":      {Name: "l", Typeflag: tar.TypeSymlink, Linkname: strings.Repeat("x", MaxLinkLen+1)},
		"negative uid":      {Name: "f", Typeflag: tar.TypeReg, Uid: -1},
		"huge PAX":          {Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"comment": strings.Repeat("x", MaxPAXBytes)}},
		"huge xattr":        {Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.user.x": strings.Repeat("x", MaxXattrValue+1)}},
		"overlay xattr":     {Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/x"}},
		"user overlay attr": {Name: "d/", Typeflag: tar.TypeDir, PAXRecords: map[string]string{"SCHILY.xattr.user.overlay.opaque": "y"}},
	}
	for name, hdr := range cases {
		_, err := planEntry(&hdr)
		require.ErrorIs(t, err, ErrUnsafe, name)
	}
	_, err := planEntry(&tar.Header{Name: "c", Typeflag: tar.TypeCont})
	require.ErrorIs(t, err, ErrUnsupported)
}

func TestPlanXattrs(t *testing.T) {
	xs, err := planXattrs(map[string]string{
		"SCHILY.xattr.user.b":                  "2",
		"SCHILY.xattr.user.a":                  "1",
		"SCHILY.xattr.security.capability":     "cap",
		"SCHILY.xattr.security.selinux":        "label",
		"SCHILY.xattr.system.posix_acl_access": "acl",
		"SCHILY.xattr.system.nfs4_acl":         "nfs",
		"SCHILY.xattr.trusted.x":               "t",
		"path":                                 "ignored",
	})
	require.NoError(t, err)
	var keys []string
	for _, x := range xs {
		keys = append(keys, x.Key)
	}
	require.Equal(t, []string{"security.capability", "system.posix_acl_access", "trusted.x", "user.a", "user.b"}, keys)

	require.Nil(t, dropUserXattrs([]xattr{{Key: "user.a"}}))
}

func TestBuildHeader(t *testing.T) {
	mt := time.Unix(1700000000, 999999999)
	h, err := buildHeader("d", fileInfo{mode: unix.S_IFDIR | 0o1777, uid: 1, gid: 2, mtime: mt}, DiffOptions{})
	require.NoError(t, err)
	require.Equal(t, "d/", h.Name)
	require.Equal(t, byte(tar.TypeDir), h.Typeflag)
	require.Equal(t, int64(0o1777), h.Mode)
	require.Equal(t, time.Unix(1700000000, 0).UTC(), h.ModTime, "times are whole seconds")
	require.True(t, h.AccessTime.IsZero())
	require.Empty(t, h.Uname)

	h, err = buildHeader("f", fileInfo{mode: unix.S_IFREG | 0o644, size: 9, linkTo: "g", xattrs: map[string]string{"user.a": "b"}}, DiffOptions{})
	require.NoError(t, err)
	require.Equal(t, byte(tar.TypeLink), h.Typeflag)
	require.Equal(t, "g", h.Linkname)
	require.Zero(t, h.Size)
	require.Equal(t, "b", h.PAXRecords["SCHILY.xattr.user.a"])

	h, err = buildHeader("c", fileInfo{mode: unix.S_IFCHR | 0o600, rdev: unix.Mkdev(4, 5)}, DiffOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(4), h.Devmajor)
	require.Equal(t, int64(5), h.Devminor)

	clamp := time.Unix(1000, 0)
	h, err = buildHeader("s", fileInfo{mode: unix.S_IFLNK | 0o777, symlink: "t", mtime: mt}, DiffOptions{ClampTime: clamp})
	require.NoError(t, err)
	require.Equal(t, clamp.UTC(), h.ModTime)
	require.Equal(t, "t", h.Linkname)

	_, err = buildHeader("sock", fileInfo{mode: unix.S_IFSOCK}, DiffOptions{})
	require.ErrorIs(t, err, ErrUnsupported)

	require.Equal(t, "a/.wh.b", whiteoutHeader("a", "b").Name)
	require.Equal(t, ".wh..wh..opq", opaqueHeader("").Name)
}

func TestFilterXattrs(t *testing.T) {
	kept, opaque, err := filterXattrs(map[string]string{
		"trusted.overlay.opaque": "y",
		"trusted.overlay.origin": "x",
		"security.selinux":       "l",
		"security.capability":    "c",
		"user.a":                 "1",
	})
	require.NoError(t, err)
	require.True(t, opaque)
	require.Equal(t, map[string]string{"security.capability": "c", "user.a": "1"}, kept)

	_, opaque, err = filterXattrs(map[string]string{"trusted.overlay.opaque": "x"})
	require.NoError(t, err)
	require.False(t, opaque, "x marks a directory with xwhiteouts, not an opaque one")

	_, _, err = filterXattrs(map[string]string{"trusted.overlay.redirect": "/a"})
	require.ErrorIs(t, err, ErrUnsupported)
}
