package image

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/image/reference"
)

// Pusher is what a push needs from a registry.
type Pusher interface {
	BlobExists(ctx context.Context, repo reference.Reference, d digest.Digest) (bool, error)
	// MountBlob asks the registry to link a blob from another repository
	// of the same registry; false means it did not.
	MountBlob(ctx context.Context, repo reference.Reference, from string, desc ocispec.Descriptor) (bool, error)
	// PushBlob uploads the blob read from r.
	PushBlob(ctx context.Context, repo reference.Reference, desc ocispec.Descriptor, r io.Reader) error
	PushManifest(ctx context.Context, ref reference.Reference, mediaType string, b []byte) error
}

// PushOptions tune a push.
type PushOptions struct {
	Progress    ProgressFunc
	Concurrency int // blobs uploaded at once; 0 means 3
}

// Push uploads the image named src to dst: blobs the registry lacks
// (mounted from a repository of the same registry the image came from
// when it can), then the manifest. The stored compressed blobs go as they
// are, so nothing is recompressed.
func (s *Store) Push(ctx context.Context, p Pusher, src string, dst reference.Reference, opts PushOptions) (digest.Digest, error) {
	img, err := s.Get(ctx, src)
	if err != nil {
		return "", err
	}
	if opts.Progress == nil {
		opts.Progress = func(Event) {}
	}
	mb, err := s.Content.ReadBlob(ctx, img.Target.Digest, mediatype.MaxManifestSize)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", src, err)
	}
	m, err := ParseManifest(img.Target.MediaType, mb)
	if err != nil {
		return "", err
	}
	blobs := append(slices.Clone(m.Layers), m.Config)
	mountFrom := mountSources(img, dst)
	err = eachBlob(ctx, opts.Concurrency, blobs, func(ctx context.Context, _ int, b ocispec.Descriptor) error {
		if err := s.pushBlob(ctx, p, dst, b, mountFrom, opts.Progress); err != nil {
			return fmt.Errorf("blob %s: %w", ShortID(b.Digest), err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := p.PushManifest(ctx, dst, img.Target.MediaType, mb); err != nil {
		return "", fmt.Errorf("push manifest: %w", err)
	}
	rd := dst.Name() + "@" + img.Target.Digest.String()
	if _, err := s.Put(ctx, Image{Target: img.Target, Config: img.Config, DiffIDs: img.DiffIDs, RepoDigests: []string{rd}}); err != nil {
		return "", err
	}
	return img.Target.Digest, nil
}

// mountSources are repositories on dst's registry that already hold the
// image's blobs, learnt from where it was pulled or pushed before.
func mountSources(img Image, dst reference.Reference) []string {
	var out []string
	for _, rd := range img.RepoDigests {
		r, err := reference.Parse(rd)
		if err != nil || r.Domain != dst.Domain || r.Path == dst.Path {
			continue
		}
		if !slices.Contains(out, r.Path) {
			out = append(out, r.Path)
		}
	}
	return out
}

func (s *Store) pushBlob(ctx context.Context, p Pusher, dst reference.Reference, b ocispec.Descriptor,
	mountFrom []string, progress ProgressFunc) error {
	id := ShortID(b.Digest)
	progress(Event{ID: id, Status: "Preparing", Total: b.Size})
	ok, err := p.BlobExists(ctx, dst, b.Digest)
	if err != nil {
		return err
	}
	if ok {
		progress(Event{ID: id, Status: "Layer already exists", Current: b.Size, Total: b.Size})
		return nil
	}
	for _, from := range mountFrom {
		if ok, err := p.MountBlob(ctx, dst, from, b); err == nil && ok {
			progress(Event{ID: id, Status: "Mounted from " + from, Current: b.Size, Total: b.Size})
			return nil
		}
	}
	f, err := s.Content.OpenBlob(ctx, b.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	pf := &progressFile{r: f, id: id, total: b.Size, fn: progress}
	var body io.Reader = pf
	if ra, ok := f.(io.ReaderAt); ok {
		// Keep ReadAt visible: an upload re-sends a chunk from its offset
		// after its token expired.
		body = progressReaderAt{progressFile: pf, ra: ra}
	}
	if err := p.PushBlob(ctx, dst, b, body); err != nil {
		return err
	}
	progress(Event{ID: id, Status: "Pushed", Current: b.Size, Total: b.Size})
	return nil
}

// progressFile reports upload progress as the pusher reads.
type progressFile struct {
	r     io.Reader
	id    string
	cur   int64
	total int64
	fn    ProgressFunc
	next  int64
}

func (p *progressFile) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.cur += int64(n)
	p.report()
	return n, err
}

// report sends an event for every MiB uploaded.
func (p *progressFile) report() {
	if p.cur >= p.next {
		p.next = p.cur + 1<<20
		p.fn(Event{ID: p.id, Status: "Pushing", Current: p.cur, Total: p.total})
	}
}

// progressReaderAt is a progressFile over a blob that can be read at
// offsets.
type progressReaderAt struct {
	*progressFile
	ra io.ReaderAt
}

func (p progressReaderAt) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.ra.ReadAt(b, off)
	if end := off + int64(n); end > p.cur {
		p.cur = end
		p.report()
	}
	return n, err
}
