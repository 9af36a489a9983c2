package engine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/snapshot/layer"
)

// CommitOptions describe the image commit makes.
type CommitOptions struct {
	Name    string
	Author  string
	Message string
	Changes []string
	// Pause freezes a running container while its changes are read.
	Pause bool
}

// Commit makes an image from a container's changes over its image.
func (e *Engine) Commit(ctx context.Context, ref string, o CommitOptions) (image.Image, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return image.Image{}, err
	}
	var name string
	if o.Name != "" {
		r, err := reference.Parse(o.Name)
		if err != nil {
			return image.Image{}, err
		}
		if r.Digest != "" {
			return image.Image{}, errdefs.Invalid("cannot commit to a digest reference: %s", o.Name)
		}
		name = r.String()
	}
	if o.Pause && c.State.Status == StatusRunning {
		if err := e.Pause(ctx, c.ID); err == nil {
			defer func() { _ = e.Unpause(context.WithoutCancel(ctx), c.ID) }()
		}
	}
	parent, err := e.Images.Get(ctx, c.ImageID)
	if err != nil {
		return image.Image{}, fmt.Errorf("the container's image: %w", err)
	}
	conf, err := e.Config(ctx, parent)
	if err != nil {
		return image.Image{}, err
	}
	layers, err := e.manifestLayers(ctx, parent)
	if err != nil {
		return image.Image{}, err
	}
	gc, err := e.Images.GCLock(ctx, false)
	if err != nil {
		return image.Image{}, err
	}
	defer func() { _ = gc.Unlock() }()
	desc, diffID, err := e.containerLayer(ctx, c)
	if err != nil {
		return image.Image{}, err
	}
	if err := e.unpackStored(ctx, desc, diffID); err != nil {
		return image.Image{}, err
	}
	now := time.Now().UTC()
	conf.Created = &now
	conf.Author = o.Author
	conf.Config = imageConfigOf(c.Config, conf.Config)
	if err := applyChanges(&conf.Config, o.Changes); err != nil {
		return image.Image{}, err
	}
	conf.RootFS.DiffIDs = append(conf.RootFS.DiffIDs, diffID)
	conf.History = append(conf.History, ocispec.History{Created: &now, Author: o.Author, Comment: o.Message,
		CreatedBy: CommandLine(c.Config)})
	full := dockerspec.DockerOCIImage{Image: conf, Config: dockerspec.DockerOCIImageConfig{ImageConfig: conf.Config}}
	if hc := c.Config.Healthcheck; hc != nil {
		full.Config.Healthcheck = &dockerspec.HealthcheckConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout,
			StartPeriod: hc.StartPeriod, StartInterval: hc.StartInterval, Retries: hc.Retries}
	}
	img, err := e.writeImageConfig(ctx, full, conf.RootFS.DiffIDs, append(layers, desc))
	if err != nil {
		return image.Image{}, err
	}
	if name != "" {
		img.Names = []string{name}
	}
	img, err = e.Images.Put(ctx, img)
	if err == nil {
		e.event(ctx, c, "commit", nil)
	}
	return img, err
}

// containerLayer stores the container's changes as a layer blob.
func (e *Engine) containerLayer(ctx context.Context, c *state.Container) (ocispec.Descriptor, digest.Digest, error) {
	upper, err := e.Snapshots.UpperDir(c.ID)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	lowers, err := e.layerDirs(ctx, c)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(layer.Diff(ctx, pw, upper, layer.DiffOptions{Exclude: func(name string) bool {
			name = strings.TrimPrefix(name, "/")
			return runtimeFiles[name] || madeForRuntime(upper, lowers, name)
		}}))
	}()
	desc, diffID, err := e.storeLayer(ctx, pr)
	pr.CloseWithError(err)
	return desc, diffID, err
}

// manifestLayers reads an image's layer descriptors.
func (e *Engine) manifestLayers(ctx context.Context, img image.Image) ([]ocispec.Descriptor, error) {
	b, err := e.Images.Content.ReadBlob(ctx, img.Target.Digest, mediatype.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := image.ParseManifest(img.Target.MediaType, b)
	if err != nil {
		return nil, err
	}
	return m.Layers, nil
}

// imageConfigOf is the image config a commit records: the container's
// configuration over its image's.
func imageConfigOf(c *container.Config, base ocispec.ImageConfig) ocispec.ImageConfig {
	out := base
	out.User, out.Env, out.Entrypoint, out.Cmd = c.User, c.Env, c.Entrypoint, c.Cmd
	out.WorkingDir, out.Labels, out.StopSignal = c.WorkingDir, c.Labels, c.StopSignal
	if len(c.Volumes) > 0 {
		out.Volumes = c.Volumes
	}
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for p := range c.ExposedPorts {
			out.ExposedPorts[p.String()] = struct{}{}
		}
	}
	return out
}
