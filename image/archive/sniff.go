package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// kind is what the first bytes of an archive entry say it holds.
type kind int

const (
	kindTar kind = iota // anything else: an uncompressed layer, or garbage
	kindGzip
	kindZstd
	kindJSON
)

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// sniffLen is how many bytes sniff looks at.
const sniffLen = 512

// sniff classifies content by its first bytes.
func sniff(head []byte) kind {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return kindGzip
	case bytes.HasPrefix(head, magicZstd):
		return kindZstd
	}
	t := bytes.TrimLeft(head, " \t\r\n")
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return kindJSON
	}
	return kindTar
}

// layerMediaType is the OCI media type of a layer of kind k.
func layerMediaType(k kind) string {
	switch k {
	case kindGzip:
		return ocispec.MediaTypeImageLayerGzip
	case kindZstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// decompressed returns r itself, or a decompressing reader when the whole
// archive is gzip- or zstd-compressed (docker load takes `docker save |
// gzip` as well). close releases the decompressor.
func decompressed(r io.Reader) (out io.Reader, closeFn func(), err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(len(magicZstd))
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip-compressed archive: %w", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd-compressed archive: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}
