package engine

import (
	"context"
	"errors"
	"fmt"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// PullOptions tune a pull.
type PullOptions struct {
	Platform string
	Progress image.ProgressFunc
}

// Pull fetches an image from its registry into the store.
func (e *Engine) Pull(ctx context.Context, name string, opts PullOptions) (image.Image, error) {
	ref, err := reference.Parse(name)
	if err != nil {
		return image.Image{}, err
	}
	plat := image.HostPlatform()
	if opts.Platform != "" {
		if plat, err = image.ParsePlatform(opts.Platform); err != nil {
			return image.Image{}, err
		}
	}
	return e.Images.Pull(ctx, fetcher{e.registry}, layers{e.Snapshots}, ref, image.PullOptions{Platform: plat, Progress: opts.Progress,
		Concurrency: e.registry.Options().MaxConcurrentDownloads})
}

// Push uploads a stored image to the registry its name (or dst) points
// at and returns the manifest digest.
func (e *Engine) Push(ctx context.Context, src, dst string, progress image.ProgressFunc) (digest.Digest, error) {
	if dst == "" {
		dst = src
	}
	ref, err := reference.Parse(dst)
	if err != nil {
		return "", err
	}
	if ref.Digest != "" {
		return "", errdefs.Invalid("cannot push to a digest reference: %s", dst)
	}
	if _, err := e.Images.Get(ctx, src); err != nil {
		return "", err
	}
	return e.Images.Push(ctx, pusher{e.registry}, src, ref, image.PushOptions{Progress: progress,
		Concurrency: e.registry.Options().MaxConcurrentUploads})
}

// Config reads an image's config.
func (e *Engine) Config(ctx context.Context, img image.Image) (ocispec.Image, error) {
	b, err := e.Images.Content.ReadBlob(ctx, img.Config, mediatype.MaxManifestSize)
	if err != nil {
		return ocispec.Image{}, fmt.Errorf("image %s: %w", image.ShortID(img.Config), err)
	}
	return image.ParseConfig(b)
}

// DockerConfig reads an image's config with Docker's extensions
// (HEALTHCHECK, ONBUILD, SHELL), as image inspect shows it.
func (e *Engine) DockerConfig(ctx context.Context, img image.Image) (dockerspec.DockerOCIImage, error) {
	return e.dockerConfig(ctx, img)
}

// ImageSize is the unpacked size of an image's layers, what docker
// shows; sizes comes from LayerSizes.
func ImageSize(img image.Image, sizes map[digest.Digest]int64) int64 {
	var n int64
	for _, d := range img.DiffIDs {
		n += sizes[d]
	}
	return n
}

// Removal is one line of rmi's output.
type Removal struct {
	Untagged string
	Deleted  digest.Digest
}

// RemoveImage removes a name, and the image when that was its last name
// or when it was named by ID (force removes every name of it).
func (e *Engine) RemoveImage(ctx context.Context, ref string, force bool) ([]Removal, error) {
	img, err := e.Images.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	var out []Removal
	byName := namedBy(img, ref)
	if byName && len(img.Names) > 1 {
		un, err := e.Images.Untag(ctx, ref)
		if err != nil {
			return nil, err
		}
		return append(out, Removal{Untagged: untagged(img.Names, un.Names)}), nil
	}
	if !byName && len(img.Names) > 1 && !force {
		return nil, errdefs.Precondition("unable to delete %s (must be forced) - image is referenced in multiple repositories",
			image.ShortID(img.Config))
	}
	user, err := e.imageUser(ctx, img)
	if err != nil {
		return nil, err
	}
	if user != "" {
		return nil, errdefs.Precondition("conflict: unable to delete %s (must be forced) - image is being used by %s",
			image.ShortID(img.Config), user)
	}
	for _, n := range img.Names {
		out = append(out, Removal{Untagged: reference.FamiliarString(n)})
	}
	for _, rd := range img.RepoDigests {
		out = append(out, Removal{Untagged: reference.FamiliarString(rd)})
	}
	if err := e.Images.Delete(ctx, img.Target.Digest); err != nil {
		return nil, err
	}
	out = append(out, Removal{Deleted: img.Config})
	_, keep, err := e.containerImages(ctx)
	if err != nil {
		return out, err
	}
	if _, err := e.Images.Collect(ctx, layers{e.Snapshots}, keep); err != nil {
		return out, fmt.Errorf("image removed; freeing its blobs failed: %w", err)
	}
	return out, nil
}

// namedBy reports whether ref is one of the image's names rather than
// its ID or digest.
func namedBy(img image.Image, ref string) bool {
	r, err := reference.Parse(ref)
	if err != nil {
		return false
	}
	c := r.String()
	return slices.Contains(img.Names, c) || slices.Contains(img.RepoDigests, c)
}

func untagged(before, after []string) string {
	for _, n := range before {
		if !slices.Contains(after, n) {
			return reference.FamiliarString(n)
		}
	}
	return ""
}

// PruneImages removes dangling (or, with all, unused) images and the
// blobs and layers only they used.
func (e *Engine) PruneImages(ctx context.Context, all bool) (image.PruneReport, error) {
	inUse, keep, err := e.containerImages(ctx)
	if err != nil {
		return image.PruneReport{}, err
	}
	return e.Images.Prune(ctx, layers{e.Snapshots}, image.PruneOptions{All: all, InUse: inUse, KeepLayers: keep})
}

// containerImages returns the images containers were created from, and
// the layers their snapshots stack on and those the build cache holds,
// which no removal may take.
func (e *Engine) containerImages(ctx context.Context) (map[digest.Digest]bool, map[digest.Digest]bool, error) {
	inUse, keep := map[digest.Digest]bool{}, map[digest.Digest]bool{}
	snaps, err := e.Snapshots.Snapshots(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range snaps {
		for _, l := range s.Layers {
			keep[l] = true
		}
	}
	if err := e.keepBuildCache(ctx, keep); err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(e.root, stateDB)); errors.Is(err, os.ErrNotExist) {
		return inUse, keep, nil // no container was ever made
	}
	cs, err := e.Containers(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range cs {
		inUse[digest.Digest(c.ImageID)] = true
	}
	return inUse, keep, nil
}

// imageUser names a container using the image, for rmi's refusal.
func (e *Engine) imageUser(ctx context.Context, img image.Image) (string, error) {
	if _, err := os.Stat(filepath.Join(e.root, stateDB)); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	cs, err := e.Containers(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if c.ImageID == img.Config.String() {
			state := "stopped"
			if active(c.State.Status) {
				state = "running"
			}
			return state + " container " + c.ID[:12], nil
		}
	}
	return "", nil
}

// Tag adds a name to an image.
func (e *Engine) Tag(ctx context.Context, src, name string) error {
	return e.Images.Tag(ctx, src, name)
}
