package remote_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/image/remote"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/testutil/registrytest"
)

// These tests run the distribution registry itself, in each of its
// authentication modes.

const chunk = 1 << 20

func newClient(t *testing.T, authFile string) *remote.Client {
	t.Helper()
	c, err := remote.New(remote.Options{
		AuthFile:       authFile,
		NoDockerConfig: true,
		ChunkSize:      chunk,
		Retry:          remote.RetryPolicy{MaxAttempts: 3, InitialDelay: 10 * time.Millisecond, MaxElapsed: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustParse(t *testing.T, s string) reference.Reference {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func blobOf(mt string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// pattern fills n bytes with a sequence that does not repeat within a
// chunk, so a misplaced chunk would change the digest.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// streamOnly hides io.ReaderAt so the upload reads the stream once.
type streamOnly struct{ r io.Reader }

func (s streamOnly) Read(p []byte) (int, error) { return s.r.Read(p) }

func TestRegistry(t *testing.T) {
	for _, mode := range []registrytest.AuthMode{registrytest.Anonymous, registrytest.Basic, registrytest.Token} {
		t.Run(mode.String(), func(t *testing.T) {
			reg := registrytest.Start(t, registrytest.Options{Auth: mode})
			testRegistry(t, reg)
		})
	}
}

func testRegistry(t *testing.T, reg *registrytest.Registry) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	authFile := filepath.Join(t.TempDir(), "auth.json")
	c := newClient(t, authFile)
	repo := mustParse(t, reg.Host+"/team/app:v1")

	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	configDesc := blobOf(ocispec.MediaTypeImageConfig, config)
	layer := pattern(3*chunk + chunk/2) // four PATCHes
	layerDesc := blobOf(ocispec.MediaTypeImageLayerGzip, layer)

	if reg.Auth != registrytest.Anonymous {
		err := c.PushBlob(ctx, repo, configDesc, bytes.NewReader(config))
		if !errors.Is(err, remote.ErrUnauthorized) {
			t.Fatalf("push without credentials: %v, want unauthorized", err)
		}
		if err := c.Login(ctx, reg.Host, reg.Username, "wrong-password"); !errors.Is(err, remote.ErrUnauthorized) {
			t.Fatalf("login with a wrong password: %v, want unauthorized", err)
		}
		if _, err := os.Stat(authFile); !os.IsNotExist(err) {
			t.Fatalf("a failed login wrote the auth file: %v", err)
		}
	}
	if err := c.Login(ctx, "http://"+reg.Host+"/", reg.Username+"x", reg.Password+"x"); reg.Auth == registrytest.Anonymous && err != nil {
		t.Fatalf("login to an open registry: %v", err)
	}
	if reg.Auth != registrytest.Anonymous {
		if err := c.Login(ctx, reg.Host, reg.Username, reg.Password); err != nil {
			t.Fatalf("login: %v", err)
		}
		checkAuthFile(t, authFile, reg)
	}

	// Blobs: the config in one PUT, the layer in chunks from a stream.
	if err := c.PushBlob(ctx, repo, configDesc, bytes.NewReader(config)); err != nil {
		t.Fatalf("push config: %v", err)
	}
	if err := c.PushBlob(ctx, repo, layerDesc, streamOnly{bytes.NewReader(layer)}); err != nil {
		t.Fatalf("push layer: %v", err)
	}
	for _, d := range []ocispec.Descriptor{configDesc, layerDesc} {
		if ok, err := c.BlobExists(ctx, repo, d.Digest); err != nil || !ok {
			t.Fatalf("BlobExists(%s) = %v, %v", d.Digest, ok, err)
		}
	}
	if ok, err := c.BlobExists(ctx, repo, digest.FromString("absent")); err != nil || ok {
		t.Fatalf("BlobExists(absent) = %v, %v", ok, err)
	}

	// Manifest and index.
	manifest := mustJSON(t, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: configDesc, Layers: []ocispec.Descriptor{layerDesc},
	})
	mdesc, err := c.PushManifest(ctx, repo, ocispec.MediaTypeImageManifest, manifest)
	if err != nil {
		t.Fatalf("push manifest: %v", err)
	}
	index := mustJSON(t, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: mdesc.MediaType, Digest: mdesc.Digest, Size: mdesc.Size,
			Platform: &ocispec.Platform{Architecture: "amd64", OS: "linux"}}},
	})
	idesc, err := c.PushManifest(ctx, repo.WithTag("multi"), ocispec.MediaTypeImageIndex, index)
	if err != nil {
		t.Fatalf("push index: %v", err)
	}
	if _, err := c.PushManifest(ctx, repo.WithTag("").WithDigest(mdesc.Digest), ocispec.MediaTypeImageManifest, manifest); err != nil {
		t.Fatalf("push manifest by digest: %v", err)
	}

	// Resolve and fetch.
	got, err := c.Resolve(ctx, repo)
	if err != nil || got.Digest != mdesc.Digest || got.Size != mdesc.Size || got.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("Resolve(v1) = %+v, %v; want %+v", got, err, mdesc)
	}
	got, err = c.Resolve(ctx, repo.WithTag("multi"))
	if err != nil || got.Digest != idesc.Digest || got.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("Resolve(multi) = %+v, %v", got, err)
	}
	got, err = c.Resolve(ctx, repo.WithTag("").WithDigest(mdesc.Digest))
	if err != nil || got.Digest != mdesc.Digest {
		t.Fatalf("Resolve(@digest) = %+v, %v", got, err)
	}
	if _, err := c.Resolve(ctx, repo.WithTag("missing")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Resolve(missing) = %v, want not found", err)
	}
	b, err := c.FetchManifest(ctx, repo, mdesc)
	if err != nil || !bytes.Equal(b, manifest) {
		t.Fatalf("FetchManifest = %v", err)
	}
	gdesc, b, err := c.GetManifest(ctx, repo.WithTag("multi"))
	if err != nil || gdesc.Digest != idesc.Digest || !bytes.Equal(b, index) {
		t.Fatalf("GetManifest(multi) = %+v, %v", gdesc, err)
	}
	for _, d := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{configDesc, config}, {layerDesc, layer}} {
		rc, err := c.FetchBlob(ctx, repo, d.desc)
		if err != nil {
			t.Fatalf("FetchBlob(%s): %v", d.desc.Digest, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(data, d.data) {
			t.Fatalf("FetchBlob(%s): %d bytes, %v", d.desc.Digest, len(data), err)
		}
	}

	// Cross-repository mount, and mount-or-push from a repository that
	// lacks the blob.
	other := mustParse(t, reg.Host+"/team/other:v1")
	if ok, err := c.MountBlob(ctx, other, repo, layerDesc.Digest); err != nil || !ok {
		t.Fatalf("MountBlob = %v, %v; want mounted", ok, err)
	}
	if ok, err := c.BlobExists(ctx, other, layerDesc.Digest); err != nil || !ok {
		t.Fatalf("mounted blob missing: %v, %v", ok, err)
	}
	if ok, err := c.MountOrPushBlob(ctx, other, mustParse(t, reg.Host+"/team/empty"), configDesc, bytes.NewReader(config)); err != nil || ok {
		t.Fatalf("MountOrPushBlob from an empty repository = %v, %v; want pushed", ok, err)
	}
	if ok, err := c.BlobExists(ctx, other, configDesc.Digest); err != nil || !ok {
		t.Fatalf("pushed blob missing: %v, %v", ok, err)
	}

	// Tags.
	tags, err := c.Tags(ctx, repo)
	slices.Sort(tags)
	if err != nil || !slices.Equal(tags, []string{"multi", "v1"}) {
		t.Fatalf("Tags = %v, %v", tags, err)
	}

	if reg.Auth == registrytest.Token {
		before := reg.TokenRequests()
		for i := 0; i < 5; i++ {
			if _, err := c.Resolve(ctx, repo); err != nil {
				t.Fatal(err)
			}
		}
		if n := reg.TokenRequests() - before; n > 1 {
			t.Fatalf("%d token requests for five resolves, want the cached token", n)
		}
	}

	// Logout, then the registry refuses the same client.
	if reg.Auth != registrytest.Anonymous {
		if err := c.Logout(ctx, reg.Host); err != nil {
			t.Fatalf("logout: %v", err)
		}
		if err := c.Logout(ctx, reg.Host); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("second logout: %v, want not found", err)
		}
		if _, err := c.Resolve(ctx, repo); !errors.Is(err, remote.ErrUnauthorized) {
			t.Fatalf("resolve after logout: %v, want unauthorized", err)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkAuthFile: docker's format, keyed by host:port.
func checkAuthFile(t *testing.T, path string, reg *registrytest.Registry) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("auth file %s: %v", data, err)
	}
	if e, ok := f.Auths[reg.Host]; !ok || e.Auth == "" {
		t.Fatalf("auth file has no entry for %s: %s", reg.Host, data)
	}
	if strings.Contains(string(data), reg.Password) {
		t.Fatalf("auth file holds the password in clear: %s", data)
	}
}

// TestDockerConfigFallback: credentials only in a docker config.json are
// used.
func TestDockerConfigFallback(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{Auth: registrytest.Basic})
	dir := t.TempDir()
	dockerCfg := filepath.Join(dir, "config.json")
	login := newClient(t, dockerCfg) // writes docker's format
	if err := login.Login(context.Background(), reg.Host, reg.Username, reg.Password); err != nil {
		t.Fatal(err)
	}
	c, err := remote.New(remote.Options{AuthFile: filepath.Join(dir, "berth-auth.json"), DockerConfig: dockerCfg})
	if err != nil {
		t.Fatal(err)
	}
	ref := mustParse(t, reg.Host+"/x/y:z")
	if err := c.PushBlob(context.Background(), ref, blobOf("", []byte("hi")), strings.NewReader("hi")); err != nil {
		t.Fatalf("push with docker's credentials: %v", err)
	}
	c, err = remote.New(remote.Options{AuthFile: filepath.Join(dir, "berth-auth.json"), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.BlobExists(context.Background(), ref, digest.FromString("hi")); !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("without docker's config: %v, want unauthorized", err)
	}
}
