package gc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/registry"
	"github.com/berth-containers/berth/registry/storage/memory"
)

// client pushes through the registry's HTTP API.
type client struct {
	t   testing.TB
	url string
}

func (c client) do(method, path string, body []byte, ctype string) *http.Response {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	require.NoError(c.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	resp.Body.Close()
	return resp
}

// blob pushes data monolithically and returns its descriptor.
func (c client) blob(repo string, data []byte) ocispec.Descriptor {
	d := digest.FromBytes(data)
	resp := c.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, "application/octet-stream")
	require.Equal(c.t, http.StatusCreated, resp.StatusCode)
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(data))}
}

// image pushes a config and a layer of random bytes, and a manifest
// naming them under tag; it returns the manifest's and blobs' digests.
func (c client) image(repo, tag string) []digest.Digest {
	cfg := c.blob(repo, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	cfg.MediaType = ocispec.MediaTypeImageConfig
	layer := c.blob(repo, random(c.t))
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{layer}})
	resp := c.do("PUT", "/v2/"+repo+"/manifests/"+tag, m, ocispec.MediaTypeImageManifest)
	require.Equal(c.t, http.StatusCreated, resp.StatusCode)
	return []digest.Digest{digest.FromBytes(m), cfg.Digest, layer.Digest}
}

func random(t testing.TB) []byte {
	b := make([]byte, 256)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func (c client) has(repo string, d digest.Digest) bool {
	return c.do("HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil, "").StatusCode == http.StatusOK
}

func setup(t *testing.T) (*registry.Registry, client) {
	r, err := registry.New(memory.New(), registry.Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, client{t: t, url: srv.URL}
}

func TestCollectsOnlyOldUnreferencedBlobs(t *testing.T) {
	ctx := context.Background()
	r, c := setup(t)
	kept := c.image("app", "v1")
	orphan := c.blob("app", random(t)).Digest
	resp := c.do("POST", "/v2/app/blobs/uploads/", nil, "")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	time.Sleep(60 * time.Millisecond)
	young := c.blob("other", random(t)).Digest

	dry, err := Run(ctx, r, Options{Grace: 50 * time.Millisecond, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, 1, dry.BlobsDeleted)
	assert.True(t, c.has("app", orphan), "a dry run deletes nothing")

	rep, err := Run(ctx, r, Options{Grace: 50 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Repositories)
	assert.Equal(t, 1, rep.Manifests)
	assert.Equal(t, 5, rep.Blobs, "manifest, config, layer, orphan, young")
	assert.Equal(t, 1, rep.BlobsDeleted)
	assert.Equal(t, int64(256), rep.BytesFreed)
	assert.Equal(t, 1, rep.UploadsDeleted)
	assert.False(t, c.has("app", orphan))
	assert.True(t, c.has("other", young), "written within the grace period")
	for _, d := range kept[1:] {
		assert.True(t, c.has("app", d), "referenced by a manifest: %s", d)
	}
	assert.Equal(t, http.StatusOK, c.do("GET", "/v2/app/manifests/v1", nil, "").StatusCode)

	// Deleting the manifest frees its blobs on the next run.
	require.Equal(t, http.StatusAccepted, c.do("DELETE", "/v2/app/manifests/"+kept[0].String(), nil, "").StatusCode)
	time.Sleep(60 * time.Millisecond)
	rep, err = Run(ctx, r, Options{Grace: 50 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 4, rep.BlobsDeleted, "manifest, config, layer, young")
}

// TestNoPushFailsWhileCollecting pushes images in a loop while the
// collector runs again and again, with a grace period far longer than a
// push: no push fails and every pushed image stays whole.
func TestNoPushFailsWhileCollecting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, c := setup(t)
	var wg sync.WaitGroup
	wg.Add(1)
	runs := 0
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_, err := Run(ctx, r, Options{Grace: 2 * time.Second})
			if ctx.Err() != nil {
				return // stopped in the middle of a run
			}
			assert.NoError(t, err)
			runs++
		}
	}()
	var pushed [][]digest.Digest
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < 200 && time.Now().Before(deadline); i++ {
		pushed = append(pushed, c.image("loop", fmt.Sprint("t", i)))
	}
	cancel()
	wg.Wait()
	assert.Positive(t, runs)
	for i, img := range pushed {
		assert.Equal(t, http.StatusOK, c.do("GET", "/v2/loop/manifests/t"+fmt.Sprint(i), nil, "").StatusCode)
		for _, d := range img[1:] {
			assert.True(t, c.has("loop", d))
		}
	}
}
