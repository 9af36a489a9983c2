// Package compression recognises and undoes the compressions image layers
// and archives come in: gzip (decoded by a parallel reader that works
// ahead of its consumer) and zstd.
package compression

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Compression names how a stream is compressed.
type Compression int

// The compressions berth reads.
const (
	None Compression = iota
	Gzip
	Zstd
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
)

// MagicLen is how many leading bytes Detect needs.
const MagicLen = 4

// Detect tells a stream's compression from its first bytes.
func Detect(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return Gzip
	case bytes.HasPrefix(head, magicZstd):
		return Zstd
	}
	return None
}

// OfLayer tells how a layer of media type mt is compressed, or fails for a
// media type that is not a layer berth can unpack.
func OfLayer(mt string) (Compression, error) {
	switch mt {
	case ocispec.MediaTypeImageLayer, mediatype.DockerLayer,
		ocispec.MediaTypeImageLayerNonDistributable: //nolint:staticcheck // still found in the wild
		return None, nil
	case ocispec.MediaTypeImageLayerGzip, mediatype.DockerLayerGzip, mediatype.DockerForeignLayer,
		ocispec.MediaTypeImageLayerNonDistributableGzip: //nolint:staticcheck // still found in the wild
		return Gzip, nil
	case ocispec.MediaTypeImageLayerZstd, mediatype.DockerLayerZstd,
		ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck // still found in the wild
		return Zstd, nil
	}
	return 0, errdefs.Invalid("unsupported layer media type %q", mt)
}

// LayerMediaType is the OCI media type of a layer compressed with c.
func LayerMediaType(c Compression) string {
	switch c {
	case Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// Reader undoes compression c on r.
func Reader(r io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case Gzip:
		zr, err := pgzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip stream: %w", err)
		}
		return zr, nil
	case Zstd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("zstd stream: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}

// AutoReader reads r as plain, gzip or zstd, whichever its first bytes
// say, and refuses bzip2 and xz with a clear error rather than reading
// them as garbage.
func AutoReader(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(magicXz))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	if bytes.HasPrefix(head, magicBzip2) || bytes.HasPrefix(head, magicXz) {
		return nil, errdefs.Invalid("bzip2 and xz streams are not supported; use plain, gzip or zstd")
	}
	return Reader(br, Detect(head))
}
