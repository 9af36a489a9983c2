package engine

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/image/archive"
	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/image/reference"
)

// Save writes the named images to w as one archive; layers shared by
// several images are written once.
func (e *Engine) Save(ctx context.Context, w io.Writer, names []string, format archive.Format) error {
	var imgs []archive.Image
	for _, n := range names {
		img, err := e.Images.Get(ctx, n)
		if err != nil {
			return err
		}
		ai := archive.Image{Manifest: img.Target}
		if r, err := reference.Parse(n); err == nil && r.Digest == "" && namedBy(img, n) {
			ai.Names = []string{r.Familiar()}
		} else {
			for _, name := range img.Names {
				ai.Names = append(ai.Names, reference.FamiliarString(name))
			}
		}
		imgs = append(imgs, ai)
	}
	return archive.Save(ctx, w, e.Images.Content, imgs, format)
}

// Load reads a docker-archive or OCI archive, stores its images and
// unpacks their layers.
func (e *Engine) Load(ctx context.Context, r io.Reader) ([]image.Image, error) {
	gc, err := e.Images.GCLock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer func() { _ = gc.Unlock() }()
	loaded, err := archive.Load(ctx, r, e.Images.Content)
	if err != nil {
		return nil, err
	}
	var out []image.Image
	for _, l := range loaded {
		img, err := e.adopt(ctx, l)
		if err != nil {
			return out, err
		}
		out = append(out, img)
	}
	return out, nil
}

// adopt records a loaded image: it picks this platform's manifest from an
// index, unpacks the layers and names the image.
func (e *Engine) adopt(ctx context.Context, l archive.Loaded) (image.Image, error) {
	desc := l.Manifest
	if mediatype.IsIndex(desc.MediaType) {
		b, err := e.Images.Content.ReadBlob(ctx, desc.Digest, mediatype.MaxManifestSize)
		if err != nil {
			return image.Image{}, err
		}
		idx, err := image.ParseIndex(desc.MediaType, b)
		if err != nil {
			return image.Image{}, err
		}
		if desc, err = image.ChooseManifest(idx, image.HostPlatform()); err != nil {
			return image.Image{}, err
		}
	}
	mb, err := e.Images.Content.ReadBlob(ctx, desc.Digest, mediatype.MaxManifestSize)
	if err != nil {
		return image.Image{}, fmt.Errorf("loaded manifest: %w", err)
	}
	m, err := image.ParseManifest(desc.MediaType, mb)
	if err != nil {
		return image.Image{}, err
	}
	img := image.Image{Target: desc, Config: m.Config.Digest}
	cfg, err := e.Config(ctx, img)
	if err != nil {
		return image.Image{}, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return image.Image{}, fmt.Errorf("loaded image %s: %d layers but %d diff IDs",
			image.ShortID(m.Config.Digest), len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	img.DiffIDs = cfg.RootFS.DiffIDs
	for i, layer := range m.Layers {
		if err := e.unpackStored(ctx, layer, img.DiffIDs[i]); err != nil {
			return image.Image{}, fmt.Errorf("layer %s: %w", image.ShortID(layer.Digest), err)
		}
	}
	for _, n := range l.Names {
		if !strings.ContainsAny(n, ":/") {
			continue // a bare ref.name tag ("latest") names no repository
		}
		if r, err := reference.Parse(n); err == nil && r.Digest == "" {
			img.Names = append(img.Names, r.String())
		}
	}
	return e.Images.Put(ctx, img)
}
