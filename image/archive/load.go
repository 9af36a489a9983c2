package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// Load reads a docker-archive or an oci-archive (plain, or compressed
// whole with gzip or zstd), telling the format from its content, and
// writes every blob it holds into sink. It returns the images the archive
// names, each stored in sink with its manifest, config and layers.
//
// The archive is read once, as a stream: blobs go to the sink as they come
// (layers are never held in memory) and the small JSON documents are kept
// until the end, when manifest.json or index.json, wherever they were in
// the stream, say what the images are. Blobs no image refers to stay in
// the sink for its garbage collection. Hostile archives are refused with
// an errdefs.ErrInvalidArgument error: absolute names or names with "..",
// links other than between layer files or leaving the archive, blobs
// whose content does not match their name, manifests naming files the
// archive lacks, oversize JSON documents, unknown formats.
func Load(ctx context.Context, r io.Reader, sink BlobSink) ([]Loaded, error) {
	in, done, err := decompressed(r)
	if err != nil {
		return nil, err
	}
	defer done()
	s, err := scanArchive(ctx, in, sink)
	if err != nil {
		return nil, fmt.Errorf("load archive: %w", err)
	}
	f, err := s.detect()
	if err != nil {
		return nil, fmt.Errorf("load archive: %w", err)
	}
	p, err := s.plan(f)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", f, err)
	}
	for _, w := range p.writes {
		if err := sink.WriteBlob(ctx, w.desc, bytes.NewReader(w.data)); err != nil {
			return nil, fmt.Errorf("load %s: store %s: %w", f, w.desc.Digest, err)
		}
	}
	return p.images, nil
}
