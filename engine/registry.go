package engine

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/image/remote"
)

// fetcher and pusher adapt the registry client to the image store.
type fetcher struct{ *remote.Client }

type pusher struct{ c *remote.Client }

func (p pusher) BlobExists(ctx context.Context, repo reference.Reference, d digest.Digest) (bool, error) {
	return p.c.BlobExists(ctx, repo, d)
}

func (p pusher) MountBlob(ctx context.Context, repo reference.Reference, from string, desc ocispec.Descriptor) (bool, error) {
	src := repo.Repository()
	src.Path = from
	return p.c.MountBlob(ctx, repo, src, desc.Digest)
}

func (p pusher) PushBlob(ctx context.Context, repo reference.Reference, desc ocispec.Descriptor, r io.Reader) error {
	return p.c.PushBlob(ctx, repo, desc, r)
}

func (p pusher) PushManifest(ctx context.Context, ref reference.Reference, mediaType string, b []byte) error {
	_, err := p.c.PushManifest(ctx, ref, mediaType, b)
	return err
}

// Login checks credentials against a registry and stores them.
func (e *Engine) Login(ctx context.Context, registry, user, password string) error {
	return e.registry.Login(ctx, registry, user, password)
}

// Logout forgets a registry's stored credentials.
func (e *Engine) Logout(ctx context.Context, registry string) error {
	return e.registry.Logout(ctx, registry)
}
