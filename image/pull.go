package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-containers/berth/image/compression"
	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Fetcher is what a pull needs from a registry.
type Fetcher interface {
	// Resolve finds the descriptor ref names (a tag or a digest).
	Resolve(ctx context.Context, ref reference.Reference) (ocispec.Descriptor, error)
	// FetchManifest returns a manifest or index, verified against desc.
	FetchManifest(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) ([]byte, error)
	// FetchBlob streams a blob; the caller verifies it.
	FetchBlob(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Unpacker unpacks layers once each; the snapshotter is one.
type Unpacker interface {
	HasLayer(diffID digest.Digest) bool
	// ApplyLayer unpacks an uncompressed layer tar whose digest must be
	// diffID; it must not keep the layer when the stream does not match.
	ApplyLayer(ctx context.Context, diffID digest.Digest, tar io.Reader) error
}

// Event reports the progress of one blob of a pull or push.
type Event struct {
	// ID is the blob's short digest, as docker shows it.
	ID string
	// Status is a word or two: "Waiting", "Downloading", "Already exists",
	// "Pull complete", "Pushed", "Layer already exists", "Mounted".
	Status string
	// Current and Total count bytes; Total is 0 when unknown.
	Current, Total int64
}

// ProgressFunc receives events; it is called from several goroutines and
// must be safe for that.
type ProgressFunc func(Event)

// PullOptions tune a pull.
type PullOptions struct {
	Platform    ocispec.Platform
	Progress    ProgressFunc
	Concurrency int // layers fetched at once; 0 means 3, as docker
}

// ShortID is the 12-hex-character form docker prints.
func ShortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// Pull fetches ref's image for the wanted platform into the store and
// unpacks its layers, streaming: each layer is written to the content store
// and unpacked while it downloads, and verified on both sides.
func (s *Store) Pull(ctx context.Context, f Fetcher, u Unpacker, ref reference.Reference, opts PullOptions) (Image, error) {
	gc, err := s.GCLock(ctx, false)
	if err != nil {
		return Image{}, err
	}
	defer func() { _ = gc.Unlock() }()
	if opts.Progress == nil {
		opts.Progress = func(Event) {}
	}
	if opts.Platform.OS == "" {
		opts.Platform = HostPlatform()
	}
	top, err := f.Resolve(ctx, ref)
	if err != nil {
		return Image{}, err
	}
	mdesc, mbytes, err := s.fetchPlatformManifest(ctx, f, ref, top, opts.Platform)
	if err != nil {
		return Image{}, err
	}
	m, err := ParseManifest(mdesc.MediaType, mbytes)
	if err != nil {
		return Image{}, fmt.Errorf("%s: %w", ref.Familiar(), err)
	}
	diffIDs, err := s.fetchConfig(ctx, f, ref, m)
	if err != nil {
		return Image{}, err
	}
	if err := s.fetchLayers(ctx, f, u, ref, m.Layers, diffIDs, opts); err != nil {
		return Image{}, err
	}
	if _, err := s.Content.WriteBytes(ctx, mdesc.MediaType, mbytes); err != nil {
		return Image{}, err
	}
	img := Image{Target: mdesc, Config: m.Config.Digest, DiffIDs: diffIDs, Created: time.Now().UTC(),
		RepoDigests: []string{ref.Name() + "@" + top.Digest.String()}}
	if ref.Digest == "" {
		img.Names = []string{ref.String()}
	}
	return s.Put(ctx, img)
}

// fetchPlatformManifest reads the manifest ref names, going through an
// index to this platform's entry when ref names an index.
func (s *Store) fetchPlatformManifest(ctx context.Context, f Fetcher, ref reference.Reference,
	top ocispec.Descriptor, want ocispec.Platform) (ocispec.Descriptor, []byte, error) {
	b, err := f.FetchManifest(ctx, ref, top)
	if err != nil {
		return top, nil, fmt.Errorf("fetch manifest %s: %w", ref.Familiar(), err)
	}
	if top.MediaType == "" {
		if top.MediaType, err = MediaTypeOf(b); err != nil {
			return top, nil, err
		}
	}
	if !mediatype.IsIndex(top.MediaType) {
		return top, b, nil
	}
	idx, err := ParseIndex(top.MediaType, b)
	if err != nil {
		return top, nil, fmt.Errorf("%s: %w", ref.Familiar(), err)
	}
	if _, err := s.Content.WriteBytes(ctx, top.MediaType, b); err != nil {
		return top, nil, err
	}
	desc, err := ChooseManifest(idx, want)
	if err != nil {
		return top, nil, fmt.Errorf("%s: %w", ref.Familiar(), err)
	}
	mb, err := f.FetchManifest(ctx, ref, desc)
	if err != nil {
		return desc, nil, fmt.Errorf("fetch manifest %s@%s: %w", ref.Name(), desc.Digest, err)
	}
	return desc, mb, nil
}

// fetchConfig stores the image config and returns its layer diff IDs,
// checked against the manifest's layer count.
func (s *Store) fetchConfig(ctx context.Context, f Fetcher, ref reference.Reference, m ocispec.Manifest) ([]digest.Digest, error) {
	if m.Config.Size > mediatype.MaxManifestSize {
		return nil, errdefs.Invalid("%s: config of %d bytes is too large", ref.Familiar(), m.Config.Size)
	}
	if !s.Content.Has(m.Config.Digest) {
		rc, err := f.FetchBlob(ctx, ref, m.Config)
		if err != nil {
			return nil, fmt.Errorf("fetch config %s: %w", ShortID(m.Config.Digest), err)
		}
		err = s.Content.WriteBlob(ctx, m.Config, rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", ShortID(m.Config.Digest), err)
		}
	}
	b, err := s.Content.ReadBlob(ctx, m.Config.Digest, mediatype.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, errdefs.Invalid("%s: manifest has %d layers but config lists %d diff IDs",
			ref.Familiar(), len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	return cfg.RootFS.DiffIDs, nil
}

func (s *Store) fetchLayers(ctx context.Context, f Fetcher, u Unpacker, ref reference.Reference,
	layers []ocispec.Descriptor, diffIDs []digest.Digest, opts PullOptions) error {
	for _, l := range layers {
		opts.Progress(Event{ID: ShortID(l.Digest), Status: "Waiting", Total: l.Size})
	}
	return eachBlob(ctx, opts.Concurrency, layers, func(ctx context.Context, i int, l ocispec.Descriptor) error {
		if err := s.fetchLayer(ctx, f, u, ref, l, diffIDs[i], opts.Progress); err != nil {
			return fmt.Errorf("layer %s: %w", ShortID(l.Digest), err)
		}
		return nil
	})
}

// eachBlob runs fn for every blob, n at a time (3, as docker, when n is
// not positive), and stops at the first error.
func eachBlob(ctx context.Context, n int, blobs []ocispec.Descriptor,
	fn func(ctx context.Context, i int, b ocispec.Descriptor) error) error {
	if n <= 0 {
		n = 3
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for i, b := range blobs {
		g.Go(func() error { return fn(gctx, i, b) })
	}
	return g.Wait()
}

// fetchLayer makes sure a layer's blob is stored and its contents unpacked,
// downloading at most once and unpacking from the same stream.
func (s *Store) fetchLayer(ctx context.Context, f Fetcher, u Unpacker, ref reference.Reference,
	l ocispec.Descriptor, diffID digest.Digest, progress ProgressFunc) error {
	id := ShortID(l.Digest)
	comp, err := compression.OfLayer(l.MediaType)
	if err != nil {
		return err
	}
	if s.Content.Has(l.Digest) {
		if !u.HasLayer(diffID) {
			if err := s.unpackStored(ctx, u, l, diffID, comp); err != nil {
				return err
			}
		}
		progress(Event{ID: id, Status: "Already exists", Current: l.Size, Total: l.Size})
		return nil
	}
	w, err := s.Content.Writer(ctx, l.Digest, l.Size)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Another process stored (and unpacked) it while we waited.
		return s.fetchLayer(ctx, f, u, ref, l, diffID, progress)
	}
	if err != nil {
		return err
	}
	defer w.Close()
	rc, err := f.FetchBlob(ctx, ref, l)
	if err != nil {
		return err
	}
	defer rc.Close()
	src := io.TeeReader(&progressReader{r: rc, id: id, total: l.Size, fn: progress}, w)
	if u.HasLayer(diffID) {
		_, err = io.Copy(io.Discard, src)
	} else {
		err = unpack(ctx, u, src, diffID, comp)
	}
	if err != nil {
		return err
	}
	if _, err := w.Commit(); err != nil {
		return err
	}
	progress(Event{ID: id, Status: "Pull complete", Current: l.Size, Total: l.Size})
	return nil
}

func (s *Store) unpackStored(ctx context.Context, u Unpacker, l ocispec.Descriptor, diffID digest.Digest, comp compression.Compression) error {
	rc, err := s.Content.OpenBlob(ctx, l.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	return unpack(ctx, u, rc, diffID, comp)
}

// unpack decompresses r into the unpacker and drains what the tar reader
// leaves (padding, the compressor's trailer) so the caller's digest covers
// the whole blob.
func unpack(ctx context.Context, u Unpacker, r io.Reader, diffID digest.Digest, comp compression.Compression) error {
	dr, err := compression.Reader(r, comp)
	if err != nil {
		return err
	}
	defer dr.Close()
	if err := u.ApplyLayer(ctx, diffID, dr); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return fmt.Errorf("read layer: %w", err)
	}
	_, err = io.Copy(io.Discard, r)
	return err
}

// progressReader reports bytes read at most every 100 ms.
type progressReader struct {
	r     io.Reader
	id    string
	cur   int64
	total int64
	last  time.Time
	fn    ProgressFunc
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.cur += int64(n)
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond {
		p.last = now
		p.fn(Event{ID: p.id, Status: "Downloading", Current: p.cur, Total: p.total})
	}
	return n, err
}
