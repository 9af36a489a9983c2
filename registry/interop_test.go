package registry

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/image/remote"
	"github.com/berth-containers/berth/registry/storage"
)

// TestRemoteClient pushes an image with berth's own registry client to
// one registry and pulls it from another on the same backend.
func TestRemoteClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const chunk = 64 << 10
		c, err := remote.New(remote.Options{
			AuthFile:       filepath.Join(t.TempDir(), "auth.json"),
			NoDockerConfig: true,
			ChunkSize:      chunk,
			Retry:          remote.RetryPolicy{MaxAttempts: 2, InitialDelay: 10 * time.Millisecond, MaxElapsed: 10 * time.Second},
		})
		require.NoError(t, err)
		host := func(base string) string {
			u, err := url.Parse(base)
			require.NoError(t, err)
			return u.Host
		}
		pushHost, pullHost := host(serve(t, d, Options{})), host(serve(t, d, Options{}))
		parse := func(s string) reference.Reference {
			r, err := reference.Parse(s)
			require.NoError(t, err)
			return r
		}
		pushRef := parse(pushHost + "/team/app:v1")
		pullRef := parse(pullHost + "/team/app:v1")

		config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
		layer := make([]byte, 3*chunk+chunk/3) // four PATCHes
		for i := range layer {
			layer[i] = byte(i*7 + i/251)
		}
		layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}

		require.NoError(t, c.PushBlob(ctx, pushRef, configDesc, bytes.NewReader(config)))
		require.NoError(t, c.PushBlob(ctx, pushRef, layerDesc, struct{ io.Reader }{bytes.NewReader(layer)}))

		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    configDesc,
			Layers:    []ocispec.Descriptor{layerDesc},
		}
		mb := mustJSON(t, m)
		desc, err := c.PushManifest(ctx, pushRef, ocispec.MediaTypeImageManifest, mb)
		require.NoError(t, err)
		require.Equal(t, digest.FromBytes(mb), desc.Digest)

		// Pull through the other replica.
		got, err := c.Resolve(ctx, pullRef)
		require.NoError(t, err)
		require.Equal(t, desc.Digest, got.Digest)
		gotDesc, gotBody, err := c.GetManifest(ctx, pullRef)
		require.NoError(t, err)
		require.Equal(t, mb, gotBody)
		require.Equal(t, ocispec.MediaTypeImageManifest, gotDesc.MediaType)
		for _, bd := range []struct {
			desc ocispec.Descriptor
			want []byte
		}{{configDesc, config}, {layerDesc, layer}} {
			ok, err := c.BlobExists(ctx, pullRef, bd.desc.Digest)
			require.NoError(t, err)
			require.True(t, ok)
			rc, err := c.FetchBlob(ctx, pullRef, bd.desc)
			require.NoError(t, err)
			b, err := io.ReadAll(rc)
			require.NoError(t, rc.Close())
			require.NoError(t, err)
			require.Equal(t, bd.want, b)
		}
		tags, err := c.Tags(ctx, pullRef)
		require.NoError(t, err)
		require.Equal(t, []string{"v1"}, tags)

		// Mount into another repository, then push the manifest there.
		otherRef := parse(pushHost + "/team/copy:latest")
		for _, bd := range []ocispec.Descriptor{configDesc, layerDesc} {
			mounted, err := c.MountBlob(ctx, otherRef, pushRef, bd.Digest)
			require.NoError(t, err)
			require.True(t, mounted)
		}
		_, err = c.PushManifest(ctx, otherRef, ocispec.MediaTypeImageManifest, mb)
		require.NoError(t, err)
		mounted, err := c.MountBlob(ctx, parse(pushHost+"/team/third:x"), parse(pushHost+"/nowhere:x"), layerDesc.Digest)
		require.NoError(t, err)
		require.False(t, mounted)
	})
}
