package snapshot

import (
	"archive/tar"
	"bytes"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

func TestPlanMounts(t *testing.T) {
	fixed := []string{"index=off", "redirect_dir=off", "metacopy=off"}
	require.Equal(t, []Mount{{Type: "bind", Source: "/u", Options: []string{"bind", "rw"}}},
		planMounts(nil, "/u", "/w", false))
	require.Equal(t, []Mount{{Type: "bind", Source: "/u", Options: []string{"bind", "ro"}}},
		planMounts(nil, "/u", "", true))
	require.Equal(t, []Mount{{Type: "bind", Source: "/l1", Options: []string{"bind", "ro"}}},
		planMounts([]string{"/l1"}, "/u", "", true))
	require.Equal(t, []Mount{{Type: "overlay", Source: "overlay", Options: append([]string{"lowerdir=/l2:/l1", "ro"}, fixed...)}},
		planMounts([]string{"/l2", "/l1"}, "/u", "", true))
	require.Equal(t, []Mount{{Type: "overlay", Source: "overlay", Options: append([]string{"lowerdir=/l1", "upperdir=/u", "workdir=/w"}, fixed...)}},
		planMounts([]string{"/l1"}, "/u", "/w", false))
	require.Equal(t, []Mount{{Type: "overlay", Source: "overlay", Options: append([]string{"lowerdir=/l1:/l2", "upperdir=/u", "workdir=/w"}, fixed...)}},
		planMounts([]string{"/l1", "/l2", "/l1"}, "/u", "/w", false), "a repeated layer is kept at its topmost place")
	require.Equal(t, "bind", planMounts([]string{"/l1", "/l1"}, "/u", "", true)[0].Type)
}

func TestSplitOptions(t *testing.T) {
	flags, data := splitOptions([]string{"lowerdir=/a", "ro", "bind", "index=off"})
	require.NotZero(t, flags)
	require.Equal(t, []string{"lowerdir=/a", "index=off"}, data)
}

func TestValidKey(t *testing.T) {
	for _, k := range []string{"abc", "0123abcdef", "my-container_1.2"} {
		require.NoError(t, validKey(k), k)
	}
	for _, k := range []string{"", ".", "..", "-x", ".hidden", "a/b", "a b", string(make([]byte, 129))} {
		require.ErrorIs(t, validKey(k), errdefs.ErrInvalidArgument, "%q", k)
	}
}

func TestLeftoverID(t *testing.T) {
	name := tempName(tmpPrefix, "my-key")
	id, ok := leftoverID(name)
	require.True(t, ok)
	require.Equal(t, "my-key", id)
	id, ok = leftoverID(tempName(rmPrefix, "abc"))
	require.True(t, ok)
	require.Equal(t, "abc", id)
	for _, n := range []string{"abc", ".tmp-", ".tmp--x", ".other-a-b"} {
		_, ok := leftoverID(n)
		require.False(t, ok, n)
	}
}

func TestNewRefusesBadRoots(t *testing.T) {
	for _, r := range []string{"relative/dir", "/a:b", "/a,b"} {
		_, err := New(r)
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, r)
	}
}

// layerTar builds an uncompressed layer and its diffID.
func layerTar(t testing.TB, entries ...*tar.Header) ([]byte, digest.Digest) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := []byte(h.Linkname)
		hh := *h
		if hh.Typeflag == tar.TypeReg {
			hh.Linkname = ""
			hh.Size = int64(len(body))
		}
		if hh.Mode == 0 {
			hh.Mode = 0o755
		}
		require.NoError(t, tw.WriteHeader(&hh))
		if hh.Typeflag == tar.TypeReg {
			_, err := tw.Write(body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes(), digest.FromBytes(buf.Bytes())
}

// d, f, wh and opq are shorthands for layer entries; a file's content
// rides in Linkname until layerTar moves it.
func d(name string) *tar.Header { return &tar.Header{Name: name + "/", Typeflag: tar.TypeDir} }
func f(name, body string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Linkname: body, Mode: 0o644}
}
func wh(dir, name string) *tar.Header { return f(dir+"/.wh."+name, "") }
func opq(dir string) *tar.Header      { return f(dir+"/.wh..wh..opq", "") }
