package archive

import (
	"bytes"
	"io"

	"github.com/berth-containers/berth/image/compression"
)

// kind is what the first bytes of an archive entry say it holds.
type kind int

const (
	kindTar kind = iota // anything else: an uncompressed layer, or garbage
	kindGzip
	kindZstd
	kindJSON
)

// sniffLen is how many bytes sniff looks at.
const sniffLen = 512

// sniff classifies content by its first bytes.
func sniff(head []byte) kind {
	switch compression.Detect(head) {
	case compression.Gzip:
		return kindGzip
	case compression.Zstd:
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
		return compression.LayerMediaType(compression.Gzip)
	case kindZstd:
		return compression.LayerMediaType(compression.Zstd)
	}
	return compression.LayerMediaType(compression.None)
}

// decompressed returns r itself, or a decompressing reader when the whole
// archive is gzip- or zstd-compressed (docker load takes `docker save |
// gzip` as well). close releases the decompressor.
func decompressed(r io.Reader) (out io.Reader, closeFn func(), err error) {
	rc, err := compression.AutoReader(r)
	if err != nil {
		return nil, nil, err
	}
	return rc, func() { _ = rc.Close() }, nil
}
