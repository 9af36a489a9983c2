package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/registry"
	"github.com/berth-containers/berth/registry/storage/memory"
)

// site is a registry on 127.0.0.1 that counts the requests it gets.
type site struct {
	t     *testing.T
	url   string
	count atomic.Int64
	up    atomic.Bool
}

func newSite(t *testing.T, h http.Handler) *site {
	s := &site{t: t}
	s.up.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count.Add(1)
		if !s.up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *site) do(method, path, ctype string, body []byte) *http.Response {
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	require.NoError(s.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	return resp
}

func (s *site) read(method, path string) (int, []byte, http.Header) {
	resp := s.do(method, path, "", nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// push stores an image in repo:tag upstream: a config, a layer and the
// manifest; it returns the manifest's digest and the layer.
func (s *site) push(repo, tag string) (digest.Digest, []byte) {
	layer := make([]byte, 4096)
	_, _ = rand.Read(layer)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	for _, b := range [][]byte{cfg, layer} {
		resp := s.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(b).String(), "application/octet-stream", b)
		resp.Body.Close()
		require.Equal(s.t, http.StatusCreated, resp.StatusCode)
	}
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}})
	resp := s.do("PUT", "/v2/"+repo+"/manifests/"+tag, ocispec.MediaTypeImageManifest, m)
	resp.Body.Close()
	require.Equal(s.t, http.StatusCreated, resp.StatusCode)
	return digest.FromBytes(m), layer
}

func setup(t *testing.T) (upstream, cache *site) {
	upReg, err := registry.New(memory.New(), registry.Options{})
	require.NoError(t, err)
	upstream = newSite(t, upReg)
	ups := []Upstream{{Prefix: "mirror", URL: upstream.url}}
	local, err := registry.New(memory.New(), registry.Options{Partial: Prefixed(ups)})
	require.NoError(t, err)
	c, err := New(local, ups)
	require.NoError(t, err)
	return upstream, newSite(t, c)
}

func TestPullThrough(t *testing.T) {
	upstream, cache := setup(t)
	mdigest, layer := upstream.push("library/app", "1")

	code, body, h := cache.read("GET", "/v2/mirror/library/app/manifests/1")
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Equal(t, mdigest.String(), h.Get("Docker-Content-Digest"))
	code, got, _ := cache.read("GET", "/v2/mirror/library/app/blobs/"+digest.FromBytes(layer).String())
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, layer, got)

	// Cached: with the upstream down, the tag and the blob still serve.
	upstream.up.Store(false)
	code, _, _ = cache.read("GET", "/v2/mirror/library/app/manifests/1")
	assert.Equal(t, http.StatusOK, code, "stale tag served when the upstream is down")
	code, got, _ = cache.read("GET", "/v2/mirror/library/app/blobs/"+digest.FromBytes(layer).String())
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, layer, got)
	before := upstream.count.Load()
	code, _, _ = cache.read("HEAD", "/v2/mirror/library/app/manifests/"+mdigest.String())
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, before, upstream.count.Load(), "content by digest is served without asking upstream")
	upstream.up.Store(true)

	// A moved tag is followed.
	moved, _ := upstream.push("library/app", "1")
	_, _, h = cache.read("HEAD", "/v2/mirror/library/app/manifests/1")
	assert.Equal(t, moved.String(), h.Get("Docker-Content-Digest"))

	// Missing upstream: 404 here; pushes under the prefix: refused;
	// other repositories: the local registry as usual.
	code, _, _ = cache.read("GET", "/v2/mirror/library/nothing/manifests/1")
	assert.Equal(t, http.StatusNotFound, code)
	code, _, _ = cache.read("GET", "/v2/mirror/library/app/blobs/sha256:"+digest.FromString("x").Encoded())
	assert.Equal(t, http.StatusNotFound, code)
	resp := cache.do("POST", "/v2/mirror/library/app/blobs/uploads/", "", nil)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	resp = cache.do("POST", "/v2/own/blobs/uploads/", "", nil)
	resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
}

func TestBadUpstream(t *testing.T) {
	_, err := New(http.NotFoundHandler(), []Upstream{{Prefix: "m/", URL: "ftp://x"}})
	assert.Error(t, err)
	assert.True(t, Prefixed([]Upstream{{Prefix: "m"}})("m/a"))
	assert.False(t, Prefixed([]Upstream{{Prefix: "m"}})("ma/a"))
	assert.False(t, Prefixed([]Upstream{{Prefix: "m/"}})("m/"))
}
