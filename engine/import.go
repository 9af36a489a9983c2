package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/image/compression"
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// ImportOptions describe an imported image.
type ImportOptions struct {
	// Name is the repository[:tag] to give it; empty leaves it dangling.
	Name    string
	Changes []string
	Message string
	// Source is what the history says it was imported from.
	Source string
}

// Import makes a one-layer image from a root filesystem tar (plain, gzip
// or zstd), as docker import does.
func (e *Engine) Import(ctx context.Context, r io.Reader, opts ImportOptions) (image.Image, error) {
	var name string
	if opts.Name != "" {
		ref, err := reference.Parse(opts.Name)
		if err != nil {
			return image.Image{}, err
		}
		if ref.Digest != "" {
			return image.Image{}, errdefs.Invalid("cannot import to a digest reference: %s", opts.Name)
		}
		name = ref.String()
	}
	cfg := ocispec.ImageConfig{}
	if err := applyChanges(&cfg, opts.Changes); err != nil {
		return image.Image{}, err
	}
	gc, err := e.Images.GCLock(ctx, false)
	if err != nil {
		return image.Image{}, err
	}
	defer func() { _ = gc.Unlock() }()
	layer, diffID, err := e.storeLayer(ctx, r)
	if err != nil {
		return image.Image{}, err
	}
	if err := e.unpackStored(ctx, layer, diffID); err != nil {
		return image.Image{}, err
	}
	now := time.Now().UTC()
	comment := opts.Message
	if comment == "" {
		comment = "Imported from " + opts.Source
	}
	conf := ocispec.Image{
		Created:  &now,
		Platform: image.HostPlatform(),
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History:  []ocispec.History{{Created: &now, CreatedBy: "", Comment: comment}},
	}
	img, err := e.writeImage(ctx, conf, []ocispec.Descriptor{layer})
	if err != nil {
		return image.Image{}, err
	}
	if name != "" {
		img.Names = []string{name}
	}
	return e.Images.Put(ctx, img)
}

// storeLayer compresses a layer tar into the content store with gzip and
// returns the blob's descriptor and the tar's diff ID.
func (e *Engine) storeLayer(ctx context.Context, r io.Reader) (ocispec.Descriptor, digest.Digest, error) {
	tarStream, err := compression.AutoReader(r)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer tarStream.Close()
	w, err := e.Images.Content.Writer(ctx, "", -1)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer w.Close()
	zw := pgzip.NewWriter(w)
	diff := digest.Canonical.Digester()
	if _, err := io.Copy(zw, io.TeeReader(tarStream, diff.Hash())); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("read layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("compress layer: %w", err)
	}
	size := w.Written()
	d, err := w.Commit()
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: size}, diff.Digest(), nil
}

func (e *Engine) unpackStored(ctx context.Context, layer ocispec.Descriptor, diffID digest.Digest) error {
	if e.Snapshots.HasLayer(diffID) {
		return nil
	}
	rc, err := e.Images.Content.OpenBlob(ctx, layer.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	comp, err := compression.OfLayer(layer.MediaType)
	if err != nil {
		return err
	}
	tr, err := compression.Reader(rc, comp)
	if err != nil {
		return err
	}
	defer tr.Close()
	_, err = e.Snapshots.ApplyLayer(ctx, diffID, tr)
	return err
}

// writeImage stores a config and an OCI manifest over layers and returns
// the (unnamed) image record.
func (e *Engine) writeImage(ctx context.Context, conf ocispec.Image, layers []ocispec.Descriptor) (image.Image, error) {
	return e.writeImageConfig(ctx, conf, conf.RootFS.DiffIDs, layers)
}

// writeImageConfig is writeImage for a config in any shape that encodes
// to an image config (Docker's, with a healthcheck, for commit).
func (e *Engine) writeImageConfig(ctx context.Context, conf any, diffIDs []digest.Digest, layers []ocispec.Descriptor) (image.Image, error) {
	cb, err := json.Marshal(conf)
	if err != nil {
		return image.Image{}, fmt.Errorf("encode config: %w", err)
	}
	cdesc, err := e.Images.Content.WriteBytes(ctx, ocispec.MediaTypeImageConfig, cb)
	if err != nil {
		return image.Image{}, err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cdesc, Layers: layers}
	m.SchemaVersion = 2
	mb, err := json.Marshal(m)
	if err != nil {
		return image.Image{}, fmt.Errorf("encode manifest: %w", err)
	}
	mdesc, err := e.Images.Content.WriteBytes(ctx, ocispec.MediaTypeImageManifest, mb)
	if err != nil {
		return image.Image{}, err
	}
	return image.Image{Target: mdesc, Config: cdesc.Digest, DiffIDs: diffIDs}, nil
}
