package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/internal/errdefs"
)

// entry is one file of an archive as the scan saw it.
type entry struct {
	size   int64
	digest digest.Digest // of the bytes in the archive (sha256 unless the blob name says otherwise)
	kind   kind
	data   []byte // the content, for JSON documents kept in memory
	stored bool   // written to the sink
	link   string // for a link: the archive name it points to
}

// scan is what one pass over an archive learned. Tar entries may come in
// any order and manifest.json may well be the last one, so the pass writes
// every blob and layer file into the sink as it goes, keeps the small JSON
// documents in memory, and leaves making sense of them to the resolve step.
type scan struct {
	entries   map[string]*entry
	metaBytes int64
}

// scanArchive reads a tar stream to its end.
func scanArchive(ctx context.Context, r io.Reader, sink BlobSink) (*scan, error) {
	s := &scan{entries: map[string]*entry{}}
	tr := tar.NewReader(r)
	br := bufio.NewReaderSize(nil, 64<<10)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n >= maxEntries {
			return nil, errdefs.Invalid("archive has more than %d entries", maxEntries)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, errdefs.Invalid("archive is empty")
			}
			return s, nil
		}
		if err != nil {
			return nil, readError(n, err)
		}
		if err := s.add(ctx, hdr, tr, br, sink); err != nil {
			return nil, err
		}
	}
}

// readError says whether the input was never a tar or broke off midway.
func readError(n int, err error) error {
	if n == 0 && (errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return errdefs.Invalid("unknown archive format: not a tar archive: %v", err)
	}
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errdefs.Invalid("read archive: %v", err)
	}
	return fmt.Errorf("read archive: %w", err)
}

func (s *scan) add(ctx context.Context, hdr *tar.Header, tr io.Reader, br *bufio.Reader, sink BlobSink) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return nil
	case tar.TypeReg, '\x00':
	case tar.TypeSymlink, tar.TypeLink:
		return s.addLink(name, hdr)
	default:
		return errdefs.Invalid("archive entry %q: unsupported entry type %q", hdr.Name, hdr.Typeflag)
	}
	if _, dup := s.entries[name]; dup {
		return errdefs.Invalid("archive entry %q appears twice", hdr.Name)
	}
	if hdr.Size < 0 {
		return errdefs.Invalid("archive entry %q: negative size", hdr.Name)
	}
	e, err := s.readFile(ctx, name, hdr.Size, tr, br, sink)
	if err != nil {
		return err
	}
	s.entries[name] = e
	return nil
}

// addLink records a link as an alias. Links are found in real archives
// between layer files only (skopeo and old docker versions write them to
// avoid storing a layer twice); anywhere else they can only confuse.
func (s *scan) addLink(name string, hdr *tar.Header) error {
	if _, isBlob, _ := blobName(name); isBlob || isMetadataName(name) {
		return errdefs.Invalid("archive entry %q: links are only allowed between layer files", hdr.Name)
	}
	if _, dup := s.entries[name]; dup {
		return errdefs.Invalid("archive entry %q appears twice", hdr.Name)
	}
	t, err := linkTarget(name, hdr.Linkname, hdr.Typeflag == tar.TypeSymlink)
	if err != nil {
		return err
	}
	s.entries[name] = &entry{link: t}
	return nil
}

// isMetadataName reports whether name is one of the layout's fixed files.
func isMetadataName(name string) bool {
	switch name {
	case fileOCILayout, fileIndex, fileManifest, fileRepositories:
		return true
	}
	return false
}

// isLegacyName reports whether name is one of the per-layer files old
// docker archives carry for docker versions before 1.10, which berth does
// not need.
func isLegacyName(name string) bool {
	base := path.Base(name)
	return strings.Contains(name, "/") && (base == "json" || base == "VERSION")
}

func (s *scan) readFile(ctx context.Context, name string, size int64, r io.Reader, br *bufio.Reader, sink BlobSink) (*entry, error) {
	d, isBlob, err := blobName(name)
	switch {
	case err != nil:
		return nil, err
	case isBlob:
		return s.readBlob(ctx, d, size, r, br, sink)
	case isMetadataName(name) || strings.HasSuffix(name, ".json"):
		data, err := s.readJSON(name, size, r)
		if err != nil {
			return nil, err
		}
		return &entry{size: size, digest: digest.FromBytes(data), kind: sniff(data), data: data}, nil
	case isLegacyName(name):
		return &entry{size: size}, nil
	}
	return s.readLayer(ctx, name, size, r, br, sink)
}

// readJSON reads a document into memory, refusing oversize ones.
func (s *scan) readJSON(name string, size int64, r io.Reader) ([]byte, error) {
	if size > MaxJSONSize {
		return nil, errdefs.Invalid("archive entry %q is %d bytes, more than the %d allowed for a JSON document",
			name, size, MaxJSONSize)
	}
	if s.metaBytes += size; s.metaBytes > maxMetadata {
		return nil, errdefs.Invalid("archive holds more than %d bytes of JSON documents", maxMetadata)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, readError(1, fmt.Errorf("%s: %w", name, err))
	}
	return data, nil
}

// readBlob writes a blobs/<alg>/<hex> entry into the sink. JSON documents
// are also kept in memory for the resolve step; they are checked against
// their name here, because a sink that already holds the blob need not
// read (and so not check) what the archive carries.
func (s *scan) readBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader, br *bufio.Reader, sink BlobSink) (*entry, error) {
	br.Reset(r)
	head, _ := br.Peek(sniffLen)
	k := sniff(head)
	desc := ocispec.Descriptor{Digest: d, Size: size}
	if k == kindJSON && size <= MaxJSONSize {
		data, err := s.readJSON(blobPathOf(d), size, br)
		if err != nil {
			return nil, err
		}
		if got := d.Algorithm().FromBytes(data); got != d {
			return nil, errdefs.Invalid("archive blob %s does not match its name (content digest %s)", d, got)
		}
		if err := sink.WriteBlob(ctx, desc, bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("archive blob %s: %w", d, err)
		}
		return &entry{size: size, digest: d, kind: k, data: data, stored: true}, nil
	}
	desc.MediaType = layerMediaType(k)
	got, err := writeHashed(ctx, sink, desc, br, d.Algorithm())
	if err != nil {
		return nil, fmt.Errorf("archive blob %s: %w", d, err)
	}
	if got != d {
		return nil, errdefs.Invalid("archive blob %s does not match its name (content digest %s)", d, got)
	}
	return &entry{size: size, digest: d, kind: k, stored: true}, nil
}

// readLayer writes a layer file of an old docker archive into the sink
// under the digest computed as it streams.
func (s *scan) readLayer(ctx context.Context, name string, size int64, r io.Reader, br *bufio.Reader, sink BlobSink) (*entry, error) {
	br.Reset(r)
	head, _ := br.Peek(sniffLen)
	k := sniff(head)
	desc := ocispec.Descriptor{MediaType: layerMediaType(k), Size: size}
	got, err := writeHashed(ctx, sink, desc, br, digest.Canonical)
	if err != nil {
		return nil, fmt.Errorf("archive entry %q: %w", name, err)
	}
	return &entry{size: size, digest: got, kind: k, stored: true}, nil
}

// writeHashed hands r to the sink while hashing it, then hashes whatever
// the sink left unread, so the digest returned is always that of the
// archive's bytes. A sink asked for a blob of unknown digest must read it
// all.
func writeHashed(ctx context.Context, sink BlobSink, desc ocispec.Descriptor, r io.Reader, alg digest.Algorithm) (digest.Digest, error) {
	dg := alg.Digester()
	src := &recordingReader{r: r}
	if err := sink.WriteBlob(ctx, desc, io.TeeReader(src, dg.Hash())); err != nil {
		if src.err != nil {
			// The sink failed because the archive did: say so.
			return "", readError(1, src.err)
		}
		return "", err
	}
	rest, err := io.Copy(dg.Hash(), r)
	if err != nil {
		return "", readError(1, err)
	}
	if rest > 0 && desc.Digest == "" {
		return "", fmt.Errorf("blob sink stopped after %d of %d bytes", desc.Size-rest, desc.Size)
	}
	return dg.Digest(), nil
}

// resolve follows links from name to a file entry. what says who asks, for
// the error message.
func (s *scan) resolve(name, what string) (*entry, error) {
	clean, err := cleanName(name)
	if err != nil {
		return nil, errdefs.Invalid("%s: %w", what, err)
	}
	for range maxLinkHops {
		e, ok := s.entries[clean]
		if !ok {
			return nil, errdefs.Invalid("%s names %q, which the archive does not hold", what, name)
		}
		if e.link == "" {
			return e, nil
		}
		clean = e.link
	}
	return nil, errdefs.Invalid("%s names %q, a chain of more than %d links", what, name, maxLinkHops)
}

// blob returns the blobs/ entry desc names, checking its size.
func (s *scan) blob(desc ocispec.Descriptor, what string) (*entry, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, errdefs.Invalid("%s: bad digest %q: %v", what, desc.Digest, err)
	}
	e, ok := s.entries[blobPathOf(desc.Digest)]
	if !ok {
		return nil, errdefs.Invalid("%s: the archive does not hold blob %s", what, desc.Digest)
	}
	if e.size != desc.Size {
		return nil, errdefs.Invalid("%s: blob %s is %d bytes, the descriptor says %d", what, desc.Digest, e.size, desc.Size)
	}
	return e, nil
}

func (s *scan) has(name string) bool {
	_, ok := s.entries[name]
	return ok
}

// recordingReader remembers the read error its reader returned, which a
// sink reports in its own words.
type recordingReader struct {
	r   io.Reader
	err error
}

func (rr *recordingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && rr.err == nil {
		rr.err = err
	}
	return n, err
}
