package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

func TestParseManifestKinds(t *testing.T) {
	_, err := ParseManifest("", []byte(`{"schemaVersion":1,"fsLayers":[]}`))
	require.ErrorContains(t, err, "schema 1")
	_, err = ParseManifest("", []byte(`{"schemaVersion":2,"manifests":[]}`))
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument, "an index is not a manifest")
	_, err = ParseIndex(mediatype.DockerManifest, []byte(`{"schemaVersion":2,"manifests":[]}`))
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument, "the announced media type must agree")
	_, err = ParseManifest("", []byte(`{"schemaVersion":2,"config":{"digest":"sha256:nothex","size":1}}`))
	require.ErrorContains(t, err, "bad digest")
	m, err := ParseManifest("", []byte(`{"schemaVersion":2,"config":{"digest":"`+digest.FromString("c").String()+`","size":1}}`))
	require.NoError(t, err)
	require.Equal(t, digest.FromString("c"), m.Config.Digest)
}

func TestChooseManifest(t *testing.T) {
	arm := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("arm"),
		Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}
	amd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("amd"),
		Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{arm, amd}}
	got, err := ChooseManifest(idx, ocispec.Platform{OS: "linux", Architecture: "amd64"})
	require.NoError(t, err)
	require.Equal(t, amd.Digest, got.Digest)
	got, err = ChooseManifest(idx, ocispec.Platform{OS: "linux", Architecture: "arm64"})
	require.NoError(t, err, "an empty wanted variant matches v8")
	require.Equal(t, arm.Digest, got.Digest)
	_, err = ChooseManifest(idx, ocispec.Platform{OS: "linux", Architecture: "s390x"})
	require.ErrorIs(t, err, errdefs.ErrNotFound)
	require.ErrorContains(t, err, "linux/arm64/v8, linux/amd64")

	p, err := ParsePlatform("linux/arm/v7")
	require.NoError(t, err)
	require.Equal(t, ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, p)
	_, err = ParsePlatform("linux")
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
}

func TestStoreNames(t *testing.T) {
	ctx := context.Background()
	s, err := OpenStore(t.TempDir())
	require.NoError(t, err)
	a := Image{Target: ocispec.Descriptor{Digest: digest.FromString("ma")}, Config: digest.FromString("ca"),
		Names: []string{"docker.io/library/app:1"}}
	b := Image{Target: ocispec.Descriptor{Digest: digest.FromString("mb")}, Config: digest.FromString("cb")}
	_, err = s.Put(ctx, a)
	require.NoError(t, err)
	_, err = s.Put(ctx, b)
	require.NoError(t, err)

	got, err := s.Get(ctx, "app:1")
	require.NoError(t, err)
	require.Equal(t, a.Config, got.Config)
	got, err = s.Get(ctx, a.Config.Encoded()[:8])
	require.NoError(t, err, "an ID prefix finds the image")
	require.Equal(t, a.Config, got.Config)

	// A name moves to the image it is given to.
	require.NoError(t, s.Tag(ctx, b.Config.String(), "app:1"))
	got, err = s.Get(ctx, "app:1")
	require.NoError(t, err)
	require.Equal(t, b.Config, got.Config)
	got, err = s.Get(ctx, a.Config.String())
	require.NoError(t, err)
	require.Empty(t, got.Names, "the old image is dangling now")

	require.ErrorIs(t, s.Tag(ctx, "app:1", "x@"+digest.FromString("d").String()), errdefs.ErrInvalidArgument)
	_, err = s.Get(ctx, "missing:1")
	require.ErrorIs(t, err, errdefs.ErrNotFound)
	_, err = s.Untag(ctx, "app:1")
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, b.Target.Digest))
	require.ErrorIs(t, s.Delete(ctx, b.Target.Digest), errdefs.ErrNotFound)
}

// fakeRegistry serves one image from memory and counts blob fetches.
type fakeRegistry struct {
	blobs map[digest.Digest][]byte
	top   ocispec.Descriptor
	mu    sync.Mutex
	gets  map[digest.Digest]int
}

func (f *fakeRegistry) Resolve(context.Context, reference.Reference) (ocispec.Descriptor, error) {
	return f.top, nil
}

func (f *fakeRegistry) FetchManifest(_ context.Context, _ reference.Reference, d ocispec.Descriptor) ([]byte, error) {
	return f.blobs[d.Digest], nil
}

func (f *fakeRegistry) FetchBlob(_ context.Context, _ reference.Reference, d ocispec.Descriptor) (io.ReadCloser, error) {
	f.mu.Lock()
	f.gets[d.Digest]++
	f.mu.Unlock()
	b, ok := f.blobs[d.Digest]
	if !ok {
		return nil, errdefs.NotFound("blob %s", d.Digest)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// memLayers is an Unpacker that checks the diff ID as the snapshotter does.
type memLayers struct {
	mu     sync.Mutex
	layers map[digest.Digest][]byte
}

func (m *memLayers) HasLayer(d digest.Digest) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.layers[d]
	return ok
}

func (m *memLayers) ApplyLayer(_ context.Context, d digest.Digest, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if digest.FromBytes(b) != d {
		return errdefs.Invalid("layer does not match diff ID %s", d)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.layers[d] = b
	return nil
}

// newFakeImage makes a registry holding an image of the given layer tars
// (gzip-compressed), with diffIDs as its config claims them.
func newFakeImage(t *testing.T, tars [][]byte, diffIDs []digest.Digest) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{blobs: map[digest.Digest][]byte{}, gets: map[digest.Digest]int{}}
	put := func(b []byte) digest.Digest { d := digest.FromBytes(b); f.blobs[d] = b; return d }
	var layers []ocispec.Descriptor
	for _, tb := range tars {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, err := zw.Write(tb)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip,
			Digest: put(buf.Bytes()), Size: int64(buf.Len())})
	}
	cfg, err := json.Marshal(ocispec.Image{Platform: HostPlatform(), RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
	require.NoError(t, err)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: layers,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: put(cfg), Size: int64(len(cfg))}}
	m.SchemaVersion = 2
	mb, err := json.Marshal(m)
	require.NoError(t, err)
	f.top = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: put(mb), Size: int64(len(mb))}
	return f
}

func TestPullStoresAndUnpacks(t *testing.T) {
	ctx := context.Background()
	s, err := OpenStore(t.TempDir())
	require.NoError(t, err)
	tars := [][]byte{bytes.Repeat([]byte("a"), 10000), bytes.Repeat([]byte("b"), 5000)}
	f := newFakeImage(t, tars, []digest.Digest{digest.FromBytes(tars[0]), digest.FromBytes(tars[1])})
	u := &memLayers{layers: map[digest.Digest][]byte{}}
	ref, err := reference.Parse("registry.test/app:1")
	require.NoError(t, err)

	var events []Event
	var mu sync.Mutex
	img, err := s.Pull(ctx, f, u, ref, PullOptions{Progress: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	require.NoError(t, err)
	require.Equal(t, []string{"registry.test/app:1"}, img.Names)
	require.Len(t, u.layers, 2)
	for d := range f.blobs {
		require.True(t, s.Content.Has(d), "blob %s stored", d)
	}
	require.NotEmpty(t, events)

	// A second pull downloads nothing.
	before := fmt.Sprint(f.gets)
	_, err = s.Pull(ctx, f, u, ref, PullOptions{})
	require.NoError(t, err)
	require.Equal(t, before, fmt.Sprint(f.gets))
}

// A layer whose content does not match the config's diff ID is refused,
// and the pull records no image and keeps no blob of that layer.
func TestPullRefusesWrongDiffID(t *testing.T) {
	ctx := context.Background()
	s, err := OpenStore(t.TempDir())
	require.NoError(t, err)
	tars := [][]byte{[]byte("real layer")}
	f := newFakeImage(t, tars, []digest.Digest{digest.FromString("another layer")})
	u := &memLayers{layers: map[digest.Digest][]byte{}}
	ref, err := reference.Parse("registry.test/app:1")
	require.NoError(t, err)
	_, err = s.Pull(ctx, f, u, ref, PullOptions{})
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
	imgs, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, imgs)
	m, err := ParseManifest("", f.blobs[f.top.Digest])
	require.NoError(t, err)
	require.False(t, s.Content.Has(m.Layers[0].Digest), "the refused layer's blob is not kept")
}

// A config that lists fewer diff IDs than the manifest has layers is
// refused before any layer is fetched.
func TestPullRefusesLayerCountMismatch(t *testing.T) {
	ctx := context.Background()
	s, err := OpenStore(t.TempDir())
	require.NoError(t, err)
	tars := [][]byte{[]byte("one"), []byte("two")}
	f := newFakeImage(t, tars, []digest.Digest{digest.FromBytes(tars[0])})
	ref, err := reference.Parse("registry.test/app:1")
	require.NoError(t, err)
	_, err = s.Pull(ctx, f, &memLayers{layers: map[digest.Digest][]byte{}}, ref, PullOptions{})
	require.ErrorContains(t, err, "2 layers but config lists 1")
	m, err := ParseManifest("", f.blobs[f.top.Digest])
	require.NoError(t, err)
	for _, l := range m.Layers {
		require.Zero(t, f.gets[l.Digest])
	}
}
