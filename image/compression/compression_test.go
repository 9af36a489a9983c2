package compression

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/internal/errdefs"
)

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func zst(t *testing.T, b []byte) []byte {
	w, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	return w.EncodeAll(b, nil)
}

func TestAutoReader(t *testing.T) {
	plain := bytes.Repeat([]byte("layer tar bytes "), 1000)
	for name, in := range map[string][]byte{"plain": plain, "gzip": gz(t, plain), "zstd": zst(t, plain)} {
		rc, err := AutoReader(bytes.NewReader(in))
		require.NoError(t, err, name)
		got, err := io.ReadAll(rc)
		require.NoError(t, err, name)
		require.NoError(t, rc.Close())
		require.Equal(t, plain, got, name)
	}
	for name, in := range map[string][]byte{"bzip2": []byte("BZh91AY&SY"), "xz": {0xfd, '7', 'z', 'X', 'Z', 0, 0}} {
		_, err := AutoReader(bytes.NewReader(in))
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, name)
	}
	rc, err := AutoReader(bytes.NewReader(nil))
	require.NoError(t, err, "an empty stream is an empty plain stream")
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestOfLayer(t *testing.T) {
	for mt, want := range map[string]Compression{
		ocispec.MediaTypeImageLayer:     None,
		mediatype.DockerLayerGzip:       Gzip,
		ocispec.MediaTypeImageLayerGzip: Gzip,
		ocispec.MediaTypeImageLayerZstd: Zstd,
		mediatype.DockerForeignLayer:    Gzip,
	} {
		got, err := OfLayer(mt)
		require.NoError(t, err, mt)
		require.Equal(t, want, got, mt)
		if mt != mediatype.DockerForeignLayer && mt != mediatype.DockerLayerGzip {
			require.Equal(t, mt, LayerMediaType(got))
		}
	}
	_, err := OfLayer(ocispec.MediaTypeImageConfig)
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
}
