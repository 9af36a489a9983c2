package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
	"github.com/berth-containers/berth/registry/storage/fs"
	"github.com/berth-containers/berth/registry/storage/memory"
)

// backend is a storage driver the API tests run against, with a way to
// list what it holds (to check that refused input stored nothing).
type backend struct {
	name string
	new  func(t *testing.T) storage.Driver
}

func backends() []backend {
	return []backend{
		{name: "memory", new: func(*testing.T) storage.Driver { return memory.New() }},
		{name: "filesystem", new: func(t *testing.T) storage.Driver {
			d, err := fs.New(t.TempDir())
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Close() })
			return d
		}},
	}
}

// forEachBackend runs fn once per storage backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, d storage.Driver)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b.new(t)) })
	}
}

// serve starts a registry over d on 127.0.0.1 and returns its base URL.
func serve(t *testing.T, d storage.Driver, opts Options) string {
	t.Helper()
	reg, err := New(d, opts)
	require.NoError(t, err)
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return srv.URL
}

// response is a finished request.
type response struct {
	*http.Response
	body []byte
}

// errorCodes decodes the spec's error body.
func (r response) errorCodes(t *testing.T) []string {
	t.Helper()
	var eb struct {
		Errors []struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(r.body, &eb), "error body %q", r.body)
	var codes []string
	for _, e := range eb.Errors {
		codes = append(codes, e.Code)
	}
	return codes
}

// do sends a request; header is alternating names and values.
func do(t *testing.T, method, url string, body []byte, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{Response: resp, body: b}
}

// expectError checks the status and the single error code.
func expectError(t *testing.T, r response, status int, code string) {
	t.Helper()
	require.Equal(t, status, r.StatusCode, "body %s", r.body)
	require.Equal(t, []string{code}, r.errorCodes(t))
}

// pushBlob uploads b to repo with POST then PUT and returns its digest.
func pushBlob(t *testing.T, base, repo string, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	r := do(t, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
	require.Equal(t, http.StatusAccepted, r.StatusCode, "body %s", r.body)
	loc := r.Header.Get("Location")
	r = do(t, http.MethodPut, abs(base, loc)+"?digest="+d.String(), b, "Content-Type", "application/octet-stream")
	require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
	return d
}

// abs resolves a Location the registry sent (a path) against base.
func abs(base, loc string) string {
	if strings.HasPrefix(loc, "http") {
		return loc
	}
	return base + loc
}

// image is a pushed image manifest.
type image struct {
	manifest []byte
	digest   digest.Digest
	config   digest.Digest
	layer    digest.Digest
}

// imageManifest builds an OCI image manifest over the given config and
// layer digests and sizes, with extra top-level fields merged in.
func imageManifest(t *testing.T, config, layer []byte, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{
			"mediaType": "application/vnd.oci.image.config.v1+json",
			"digest":    digest.FromBytes(config), "size": len(config),
		},
		"layers": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
			"digest":    digest.FromBytes(layer), "size": len(layer),
		}},
	}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// pushImage pushes a config, a layer and a manifest tagged tag.
func pushImage(t *testing.T, base, repo, tag string, seed string) image {
	t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`)
	layer := []byte("layer-" + seed)
	img := image{config: pushBlob(t, base, repo, config), layer: pushBlob(t, base, repo, layer)}
	img.manifest = imageManifest(t, config, layer, nil)
	img.digest = digest.FromBytes(img.manifest)
	r := do(t, http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, img.manifest,
		"Content-Type", "application/vnd.oci.image.manifest.v1+json")
	require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
	require.Equal(t, img.digest.String(), r.Header.Get("Docker-Content-Digest"))
	return img
}

// snapshot is what a memory driver holds, to compare before and after a
// refused request.
func snapshot(t *testing.T, d storage.Driver) []string {
	t.Helper()
	var out []string
	for _, root := range []string{blobsDir, reposDir} {
		err := d.Walk(context.Background(), root, func(info storage.Info) error {
			out = append(out, info.Path)
			return nil
		})
		if !errors.Is(err, errdefs.ErrNotFound) {
			require.NoError(t, err)
		}
	}
	return out
}

func serveHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// failing is a driver whose every operation fails, as a backend that
// is down.
type failing struct{ storage.Driver }

var errFire = errors.New("disk on fire")

func (failing) Name() string { return "failing" }
func (failing) Reader(context.Context, string, int64) (io.ReadCloser, error) {
	return nil, errFire
}
func (failing) Stat(context.Context, string) (storage.Info, error) { return storage.Info{}, errFire }
