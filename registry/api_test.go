package registry

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/registry/storage"
)

func TestBase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		r := do(t, http.MethodGet, base+"/v2/", nil)
		require.Equal(t, http.StatusOK, r.StatusCode)
		require.Equal(t, "registry/2.0", r.Header.Get("Docker-Distribution-API-Version"))
		require.JSONEq(t, "{}", string(r.body))
		r = do(t, http.MethodGet, base+"/v2", nil)
		require.Equal(t, http.StatusOK, r.StatusCode)
		r = do(t, http.MethodPost, base+"/v2/", nil)
		expectError(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
		r = do(t, http.MethodGet, base+"/v3/", nil)
		require.Equal(t, http.StatusNotFound, r.StatusCode)
	})
}

func TestMonolithicBlob(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		data := []byte("0123456789abcdefghij")
		dg := pushBlob(t, base, "lib/app", data)

		url := base + "/v2/lib/app/blobs/" + dg.String()
		r := do(t, http.MethodGet, url, nil)
		require.Equal(t, http.StatusOK, r.StatusCode)
		require.Equal(t, data, r.body)
		require.Equal(t, dg.String(), r.Header.Get("Docker-Content-Digest"))

		r = do(t, http.MethodHead, url, nil)
		require.Equal(t, http.StatusOK, r.StatusCode)
		require.Equal(t, "20", r.Header.Get("Content-Length"))
		require.Empty(t, r.body)

		r = do(t, http.MethodGet, url, nil, "Range", "bytes=5-9")
		require.Equal(t, http.StatusPartialContent, r.StatusCode)
		require.Equal(t, "56789", string(r.body))
		require.Equal(t, "bytes 5-9/20", r.Header.Get("Content-Range"))
		r = do(t, http.MethodGet, url, nil, "Range", "bytes=15-")
		require.Equal(t, http.StatusPartialContent, r.StatusCode)
		require.Equal(t, "fghij", string(r.body))
		r = do(t, http.MethodGet, url, nil, "Range", "bytes=-3")
		require.Equal(t, "hij", string(r.body))
		r = do(t, http.MethodGet, url, nil, "Range", "bytes=50-60")
		require.Equal(t, http.StatusRequestedRangeNotSatisfiable, r.StatusCode)

		// A single POST with the digest.
		single := []byte("single post blob")
		sd := digest.FromBytes(single)
		r = do(t, http.MethodPost, base+"/v2/lib/app/blobs/uploads/?digest="+sd.String(), single)
		require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
		require.Equal(t, "/v2/lib/app/blobs/"+sd.String(), r.Header.Get("Location"))
		r = do(t, http.MethodGet, base+"/v2/lib/app/blobs/"+sd.String(), nil)
		require.Equal(t, single, r.body)

		// Another repository does not serve it: it was never given it.
		r = do(t, http.MethodGet, base+"/v2/other/blobs/"+dg.String(), nil)
		expectError(t, r, http.StatusNotFound, "BLOB_UNKNOWN")
	})
}

// TestChunkedAcrossReplicas pushes one blob in chunks through two
// registries on one backend, alternating, to show that no upload state
// lives in a registry's memory.
func TestChunkedAcrossReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		a := serve(t, d, Options{})
		b := serve(t, d, Options{})
		data := bytes.Repeat([]byte("abcdefghij"), 5) // 50 bytes
		dg := digest.FromBytes(data)

		r := do(t, http.MethodPost, a+"/v2/team/app/blobs/uploads/", nil)
		require.Equal(t, http.StatusAccepted, r.StatusCode)
		loc := r.Header.Get("Location")
		id := r.Header.Get("Docker-Upload-UUID")
		require.NotEmpty(t, id)
		require.True(t, strings.HasSuffix(loc, "/"+id))
		require.Equal(t, "0-0", r.Header.Get("Range"))

		r = do(t, http.MethodPatch, abs(a, loc), data[:10], "Content-Range", "0-9")
		require.Equal(t, http.StatusAccepted, r.StatusCode, "body %s", r.body)
		require.Equal(t, "0-9", r.Header.Get("Range"))
		loc = r.Header.Get("Location")

		r = do(t, http.MethodGet, abs(b, loc), nil)
		require.Equal(t, http.StatusNoContent, r.StatusCode)
		require.Equal(t, "0-9", r.Header.Get("Range"))

		// Out of order on the other replica: 416 with where it stands.
		r = do(t, http.MethodPatch, abs(b, loc), data[20:30], "Content-Range", "20-29")
		require.Equal(t, http.StatusRequestedRangeNotSatisfiable, r.StatusCode)
		require.Equal(t, "0-9", r.Header.Get("Range"))
		r = do(t, http.MethodPatch, abs(b, loc), data[10:20], "Content-Range", "bytes=oops")
		require.Equal(t, http.StatusRequestedRangeNotSatisfiable, r.StatusCode)

		r = do(t, http.MethodPatch, abs(b, loc), data[10:30], "Content-Range", "10-29")
		require.Equal(t, http.StatusAccepted, r.StatusCode, "body %s", r.body)
		require.Equal(t, "0-29", r.Header.Get("Range"))

		// A streamed chunk, no Content-Range, back on the first replica.
		r = do(t, http.MethodPatch, abs(a, loc), data[30:40])
		require.Equal(t, http.StatusAccepted, r.StatusCode, "body %s", r.body)
		require.Equal(t, "0-39", r.Header.Get("Range"))

		// The last chunk in the closing PUT, on the second.
		r = do(t, http.MethodPut, abs(b, loc)+"?digest="+dg.String(), data[40:], "Content-Range", "40-49")
		require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
		require.Equal(t, dg.String(), r.Header.Get("Docker-Content-Digest"))

		r = do(t, http.MethodGet, a+"/v2/team/app/blobs/"+dg.String(), nil)
		require.Equal(t, data, r.body)
		// The session is gone.
		r = do(t, http.MethodGet, abs(a, loc), nil)
		expectError(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		// Nothing of the upload is left in storage.
		for _, p := range snapshot(t, d) {
			require.NotContains(t, p, "_uploads")
		}
	})
}

func TestUploadDigests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		data := []byte("sha512 content")

		// sha512 is accepted and stored under it.
		sum := sha512.Sum512(data)
		d512 := digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:]))
		r := do(t, http.MethodPost, base+"/v2/x/blobs/uploads/", nil)
		loc := r.Header.Get("Location")
		r = do(t, http.MethodPut, abs(base, loc)+"?digest="+d512.String(), data)
		require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
		r = do(t, http.MethodGet, base+"/v2/x/blobs/"+d512.String(), nil)
		require.Equal(t, data, r.body)

		// A wrong digest stores nothing and closes the session.
		before := snapshot(t, d)
		wrong := digest.FromString("something else")
		r = do(t, http.MethodPost, base+"/v2/x/blobs/uploads/", nil)
		loc = r.Header.Get("Location")
		r = do(t, http.MethodPatch, abs(base, loc), []byte("some data"))
		require.Equal(t, http.StatusAccepted, r.StatusCode)
		r = do(t, http.MethodPut, abs(base, loc)+"?digest="+wrong.String(), nil)
		expectError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		require.Equal(t, before, snapshot(t, d))
		r = do(t, http.MethodGet, base+"/v2/x/blobs/"+wrong.String(), nil)
		expectError(t, r, http.StatusNotFound, "BLOB_UNKNOWN")

		// Same for a single POST, and for a sha512 mismatch.
		r = do(t, http.MethodPost, base+"/v2/x/blobs/uploads/?digest="+wrong.String(), []byte("other"))
		expectError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		wrong512 := digest.NewDigestFromEncoded(digest.SHA512, strings.Repeat("a", 128))
		r = do(t, http.MethodPost, base+"/v2/x/blobs/uploads/?digest="+wrong512.String(), []byte("other"))
		expectError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		require.Equal(t, before, snapshot(t, d))

		// Malformed, unsupported or missing digests are refused up front.
		for _, q := range []string{"?digest=sha256:xyz", "?digest=md5:abcd", ""} {
			r = do(t, http.MethodPost, base+"/v2/x/blobs/uploads/", nil)
			loc = r.Header.Get("Location")
			r = do(t, http.MethodPut, abs(base, loc)+q, []byte("data"))
			expectError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
			r = do(t, http.MethodDelete, abs(base, loc), nil)
			require.Equal(t, http.StatusNoContent, r.StatusCode)
		}
		require.Equal(t, before, snapshot(t, d))
	})
}

func TestUploadSessionErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		unknown := base + "/v2/x/blobs/uploads/0123456789abcdef0123456789abcdef"
		for _, m := range []string{http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete} {
			r := do(t, m, unknown+"?digest="+digest.FromString("x").String(), nil)
			expectError(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		}
		r := do(t, http.MethodGet, base+"/v2/x/blobs/uploads/../../etc", nil)
		require.Equal(t, http.StatusNotFound, r.StatusCode)
		r = do(t, http.MethodGet, base+"/v2/x/blobs/uploads/not-an-id", nil)
		expectError(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")

		// Cancel: the session is gone afterwards, and so is its data.
		r = do(t, http.MethodPost, base+"/v2/x/blobs/uploads/", nil)
		loc := r.Header.Get("Location")
		r = do(t, http.MethodPatch, abs(base, loc), []byte("partial"))
		require.Equal(t, http.StatusAccepted, r.StatusCode)
		r = do(t, http.MethodDelete, abs(base, loc), nil)
		require.Equal(t, http.StatusNoContent, r.StatusCode)
		r = do(t, http.MethodGet, abs(base, loc), nil)
		expectError(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		require.Empty(t, snapshot(t, d))

		// A chunk whose Content-Length disagrees with its range.
		r = do(t, http.MethodPost, base+"/v2/x/blobs/uploads/", nil)
		loc = r.Header.Get("Location")
		r = do(t, http.MethodPatch, abs(base, loc), []byte("12345"), "Content-Range", "0-9")
		expectError(t, r, http.StatusBadRequest, "SIZE_INVALID")
		r = do(t, http.MethodGet, abs(base, loc), nil)
		require.Equal(t, http.StatusNoContent, r.StatusCode)
		require.Equal(t, "0-0", r.Header.Get("Range"))

		// Method not allowed on the session and on the uploads endpoint.
		r = do(t, http.MethodPost, abs(base, loc), nil)
		expectError(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
		r = do(t, http.MethodGet, base+"/v2/x/blobs/uploads/", nil)
		expectError(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
	})
}

func TestMount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		data := []byte("shared layer")
		dg := pushBlob(t, base, "src/repo", data)

		r := do(t, http.MethodPost, base+"/v2/dst/repo/blobs/uploads/?mount="+dg.String()+"&from=src/repo", nil)
		require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
		require.Equal(t, "/v2/dst/repo/blobs/"+dg.String(), r.Header.Get("Location"))
		require.Equal(t, dg.String(), r.Header.Get("Docker-Content-Digest"))
		r = do(t, http.MethodGet, base+"/v2/dst/repo/blobs/"+dg.String(), nil)
		require.Equal(t, data, r.body)

		// Stored once, linked twice.
		var datas int
		for _, p := range snapshot(t, d) {
			if strings.HasSuffix(p, "/data") && strings.HasPrefix(p, "blobs/") {
				datas++
			}
		}
		require.Equal(t, 1, datas)

		// Mounts that cannot be done open a session instead.
		other := digest.FromString("not there")
		for _, q := range []string{
			"?mount=" + other.String() + "&from=src/repo",
			"?mount=" + dg.String() + "&from=nowhere",
			"?mount=" + dg.String(),
			"?mount=" + dg.String() + "&from=Bad..Name",
			"?mount=bogus&from=src/repo",
		} {
			r = do(t, http.MethodPost, base+"/v2/third/blobs/uploads/"+q, nil)
			require.Equal(t, http.StatusAccepted, r.StatusCode, "%s: %s", q, r.body)
			require.NotEmpty(t, r.Header.Get("Location"))
		}
		r = do(t, http.MethodGet, base+"/v2/third/blobs/"+dg.String(), nil)
		expectError(t, r, http.StatusNotFound, "BLOB_UNKNOWN")
	})
}

func TestManifestPushPull(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		img := pushImage(t, base, "lib/app", "v1", "one")

		for _, ref := range []string{"v1", img.digest.String()} {
			url := base + "/v2/lib/app/manifests/" + ref
			r := do(t, http.MethodGet, url, nil)
			require.Equal(t, http.StatusOK, r.StatusCode)
			require.Equal(t, img.manifest, r.body)
			require.Equal(t, ocispec.MediaTypeImageManifest, r.Header.Get("Content-Type"))
			require.Equal(t, img.digest.String(), r.Header.Get("Docker-Content-Digest"))
			require.Equal(t, fmt.Sprint(len(img.manifest)), r.Header.Get("Content-Length"))
			r = do(t, http.MethodHead, url, nil)
			require.Equal(t, http.StatusOK, r.StatusCode)
			require.Equal(t, fmt.Sprint(len(img.manifest)), r.Header.Get("Content-Length"))
			require.Equal(t, img.digest.String(), r.Header.Get("Docker-Content-Digest"))
			require.Empty(t, r.body)
		}
		// The manifest is readable through the blob endpoint too.
		r := do(t, http.MethodGet, base+"/v2/lib/app/blobs/"+img.digest.String(), nil)
		require.Equal(t, img.manifest, r.body)

		// Push by digest, with extra tags.
		img2 := pushImage(t, base, "lib/app", "tmp", "two")
		r = do(t, http.MethodPut, base+"/v2/lib/app/manifests/"+img2.digest.String()+"?tag=a&tag=b", img2.manifest,
			"Content-Type", ocispec.MediaTypeImageManifest)
		require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
		require.Equal(t, []string{"a", "b"}, r.Header.Values("OCI-Tag"))
		require.Equal(t, "/v2/lib/app/manifests/"+img2.digest.String(), r.Header.Get("Location"))
		r = do(t, http.MethodGet, base+"/v2/lib/app/manifests/b", nil)
		require.Equal(t, img2.manifest, r.body)

		// An index over both, and a Docker manifest list.
		index := mustJSON(t, map[string]any{
			"schemaVersion": 2,
			"mediaType":     ocispec.MediaTypeImageIndex,
			"manifests": []any{
				map[string]any{"mediaType": ocispec.MediaTypeImageManifest, "digest": img.digest, "size": len(img.manifest),
					"platform": map[string]string{"os": "linux", "architecture": "amd64"}},
				map[string]any{"mediaType": ocispec.MediaTypeImageManifest, "digest": img2.digest, "size": len(img2.manifest),
					"platform": map[string]string{"os": "linux", "architecture": "arm64"}},
			},
		})
		r = do(t, http.MethodPut, base+"/v2/lib/app/manifests/multi", index, "Content-Type", ocispec.MediaTypeImageIndex)
		require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
		r = do(t, http.MethodGet, base+"/v2/lib/app/manifests/multi", nil)
		require.Equal(t, index, r.body)
		require.Equal(t, ocispec.MediaTypeImageIndex, r.Header.Get("Content-Type"))

		list := bytes.ReplaceAll(index, []byte(ocispec.MediaTypeImageIndex),
			[]byte("application/vnd.docker.distribution.manifest.list.v2+json"))
		r = do(t, http.MethodPut, base+"/v2/lib/app/manifests/list", list,
			"Content-Type", "application/vnd.docker.distribution.manifest.list.v2+json")
		require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)

		// A Docker schema 2 manifest, pushed with no Content-Type.
		config := []byte(`{"os":"linux"}`)
		pushBlob(t, base, "lib/docker", config)
		dm := mustJSON(t, map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.docker.distribution.manifest.v2+json",
			"config": map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json",
				"digest": digest.FromBytes(config), "size": len(config)},
			"layers": []any{},
		})
		r = do(t, http.MethodPut, base+"/v2/lib/docker/manifests/latest", dm)
		require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
		r = do(t, http.MethodHead, base+"/v2/lib/docker/manifests/latest", nil)
		require.Equal(t, "application/vnd.docker.distribution.manifest.v2+json", r.Header.Get("Content-Type"))

		// An artifact of a media type of its own.
		art := []byte(`{"mediaType":"application/vnd.example.thing.v1+json","blobs":[]}`)
		r = do(t, http.MethodPut, base+"/v2/lib/app/manifests/thing", art, "Content-Type", "application/vnd.example.thing.v1+json")
		require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
		r = do(t, http.MethodGet, base+"/v2/lib/app/manifests/thing", nil)
		require.Equal(t, "application/vnd.example.thing.v1+json", r.Header.Get("Content-Type"))

		// Unknown manifests.
		r = do(t, http.MethodGet, base+"/v2/lib/app/manifests/nope", nil)
		expectError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
		r = do(t, http.MethodHead, base+"/v2/lib/app/manifests/"+digest.FromString("x").String(), nil)
		require.Equal(t, http.StatusNotFound, r.StatusCode)
		r = do(t, http.MethodGet, base+"/v2/other/manifests/"+img.digest.String(), nil)
		expectError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestManifestRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{MaxManifestSize: 4096})
		img := pushImage(t, base, "r", "v1", "one")
		before := snapshot(t, d)
		put := func(ref string, body []byte, ct string) response {
			return do(t, http.MethodPut, base+"/v2/r/manifests/"+ref, body, "Content-Type", ct)
		}
		mt := ocispec.MediaTypeImageManifest

		// Blobs the repository does not hold: one error per digest.
		missingCfg, missingLayer := []byte("missing config"), []byte("missing layer")
		m := imageManifest(t, missingCfg, missingLayer, nil)
		r := put("bad", m, mt)
		require.Equal(t, http.StatusNotFound, r.StatusCode)
		require.Equal(t, []string{"MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"}, r.errorCodes(t))
		require.Contains(t, string(r.body), digest.FromBytes(missingLayer).String())
		require.Equal(t, before, snapshot(t, d))

		// Blobs held by another repository only.
		pushBlob(t, base, "elsewhere", missingCfg)
		r = put("bad", m, mt)
		require.Equal(t, []string{"MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"}, r.errorCodes(t))
		before = snapshot(t, d)

		// An index over a manifest the repository does not hold.
		idx := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageIndex,
			"manifests": []any{map[string]any{"mediaType": mt, "digest": digest.FromString("gone"), "size": 3}}})
		expectError(t, put("bad", idx, ocispec.MediaTypeImageIndex), http.StatusNotFound, "MANIFEST_BLOB_UNKNOWN")

		// Digest reference that does not match the body.
		expectError(t, put(digest.FromString("other").String(), img.manifest, mt), http.StatusBadRequest, "DIGEST_INVALID")
		expectError(t, put("sha256:short", img.manifest, mt), http.StatusBadRequest, "DIGEST_INVALID")

		// Over the size limit.
		big := imageManifest(t, []byte("c"), []byte("l"), map[string]any{
			"annotations": map[string]string{"pad": strings.Repeat("x", 5000)}})
		r = put("big", big, mt)
		expectError(t, r, http.StatusRequestEntityTooLarge, "SIZE_INVALID")

		for name, tc := range map[string]struct {
			body []byte
			ct   string
		}{
			"not json":          {[]byte("{nope"), mt},
			"array":             {[]byte("[]"), mt},
			"media mismatch":    {img.manifest, ocispec.MediaTypeImageIndex},
			"no media type":     {[]byte(`{"schemaVersion":2}`), ""},
			"schema version":    {bytes.Replace(img.manifest, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":1`), 1), mt},
			"no config":         {[]byte(`{"schemaVersion":2,"mediaType":"` + mt + `","layers":[]}`), mt},
			"bad descriptor":    {[]byte(`{"schemaVersion":2,"mediaType":"` + mt + `","config":{"mediaType":"a/b","digest":"sha256:zz","size":1},"layers":[]}`), mt},
			"negative size":     {[]byte(`{"schemaVersion":2,"mediaType":"` + mt + `","config":{"mediaType":"a/b","digest":"` + img.config.String() + `","size":-1},"layers":[]}`), mt},
			"schema 1":          {[]byte(`{"schemaVersion":1,"fsLayers":[]}`), dockerSchema1Signed},
			"bad artifact type": {[]byte(`{}`), "not a media type"},
			"bad content type":  {img.manifest, "a/b; ==="},
			"bad subject":       {imageManifest(t, []byte("c"), []byte("l"), map[string]any{"subject": map[string]any{"mediaType": mt, "digest": "sha384:" + strings.Repeat("a", 96), "size": 1}}), mt},
		} {
			r := put("bad", tc.body, tc.ct)
			require.Equal(t, http.StatusBadRequest, r.StatusCode, "%s: %s", name, r.body)
			require.Equal(t, []string{"MANIFEST_INVALID"}, r.errorCodes(t), name)
		}
		expectError(t, put("-bad-tag", img.manifest, mt), http.StatusBadRequest, "MANIFEST_INVALID")
		r = do(t, http.MethodPut, base+"/v2/r/manifests/"+img.digest.String()+"?tag=ok&tag=.bad", img.manifest, "Content-Type", mt)
		expectError(t, r, http.StatusBadRequest, "MANIFEST_INVALID")

		require.Equal(t, before, snapshot(t, d))
		r = do(t, http.MethodGet, base+"/v2/r/manifests/bad", nil)
		expectError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
	})
}

func TestTagsList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		img := pushImage(t, base, "a/b", "v1", "x")
		for _, tag := range []string{"v2", "v3", "latest", "V0"} {
			r := do(t, http.MethodPut, base+"/v2/a/b/manifests/"+tag, img.manifest, "Content-Type", ocispec.MediaTypeImageManifest)
			require.Equal(t, http.StatusCreated, r.StatusCode)
		}
		type tagList struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		get := func(q string) (tagList, response) {
			r := do(t, http.MethodGet, base+"/v2/a/b/tags/list"+q, nil)
			require.Equal(t, http.StatusOK, r.StatusCode, "body %s", r.body)
			var tl tagList
			require.NoError(t, json.Unmarshal(r.body, &tl))
			return tl, r
		}
		tl, r := get("")
		require.Equal(t, tagList{Name: "a/b", Tags: []string{"V0", "latest", "v1", "v2", "v3"}}, tl)
		require.Empty(t, r.Header.Get("Link"))

		// Follow the Link headers, two at a time.
		var all []string
		next := "?n=2"
		for range 10 {
			tl, r = get(next)
			require.LessOrEqual(t, len(tl.Tags), 2)
			all = append(all, tl.Tags...)
			link := r.Header.Get("Link")
			if link == "" {
				break
			}
			require.True(t, strings.HasSuffix(link, `>; rel="next"`), link)
			u := strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			require.True(t, strings.HasPrefix(u, "/v2/a/b/tags/list?"), u)
			next = strings.TrimPrefix(u, "/v2/a/b/tags/list")
		}
		require.Equal(t, []string{"V0", "latest", "v1", "v2", "v3"}, all)

		tl, _ = get("?last=v1")
		require.Equal(t, []string{"v2", "v3"}, tl.Tags)
		tl, r = get("?n=0")
		require.Equal(t, []string{}, tl.Tags)
		require.Empty(t, r.Header.Get("Link"))
		require.Contains(t, string(r.body), `"tags":[]`)

		r = do(t, http.MethodGet, base+"/v2/a/b/tags/list?n=-1", nil)
		require.Equal(t, http.StatusBadRequest, r.StatusCode)
		r = do(t, http.MethodGet, base+"/v2/nothing/here/tags/list", nil)
		expectError(t, r, http.StatusNotFound, "NAME_UNKNOWN")
		r = do(t, http.MethodDelete, base+"/v2/a/b/tags/list", nil)
		expectError(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
	})
}

func TestCatalog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		for _, repo := range []string{"b", "a/c", "a", "a-z", "a/c/d"} {
			pushImage(t, base, repo, "latest", repo)
		}
		// A repository with blobs and no manifest is not listed.
		pushBlob(t, base, "blobs/only", []byte("x"))
		type catalog struct {
			Repositories []string `json:"repositories"`
		}
		get := func(q string) (catalog, response) {
			r := do(t, http.MethodGet, base+"/v2/_catalog"+q, nil)
			require.Equal(t, http.StatusOK, r.StatusCode, "body %s", r.body)
			var c catalog
			require.NoError(t, json.Unmarshal(r.body, &c))
			return c, r
		}
		c, _ := get("")
		require.Equal(t, []string{"a", "a-z", "a/c", "a/c/d", "b"}, c.Repositories)
		c, r := get("?n=2")
		require.Equal(t, []string{"a", "a-z"}, c.Repositories)
		require.Equal(t, `</v2/_catalog?last=a-z&n=2>; rel="next"`, r.Header.Get("Link"))
		c, r = get("?n=2&last=a/c")
		require.Equal(t, []string{"a/c/d", "b"}, c.Repositories)
		require.Empty(t, r.Header.Get("Link"))
		c, _ = get("?n=0")
		require.Equal(t, []string{}, c.Repositories)
	})
}

func TestCatalogEmpty(t *testing.T) {
	base := serve(t, backends()[0].new(t), Options{})
	r := do(t, http.MethodGet, base+"/v2/_catalog", nil)
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.JSONEq(t, `{"repositories":[]}`, string(r.body))
}

func TestReferrers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		img := pushImage(t, base, "app", "v1", "subject")
		empty := []byte("{}")
		pushBlob(t, base, "app", empty)
		emptyDesc := map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest.FromBytes(empty), "size": 2}
		subject := map[string]any{"mediaType": ocispec.MediaTypeImageManifest, "digest": img.digest, "size": len(img.manifest)}

		push := func(body []byte, ct string) response {
			r := do(t, http.MethodPut, base+"/v2/app/manifests/"+digest.FromBytes(body).String(), body, "Content-Type", ct)
			require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
			return r
		}
		sbom := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest,
			"artifactType": "application/vnd.example.sbom", "config": emptyDesc, "layers": []any{emptyDesc},
			"subject": subject, "annotations": map[string]string{"org.example": "sbom"}})
		r := push(sbom, ocispec.MediaTypeImageManifest)
		require.Equal(t, img.digest.String(), r.Header.Get("OCI-Subject"))

		// No artifactType: the config's media type stands in.
		sigCfg := []byte(`{"sig":true}`)
		pushBlob(t, base, "app", sigCfg)
		sig := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest,
			"config":  map[string]any{"mediaType": "application/vnd.example.sig", "digest": digest.FromBytes(sigCfg), "size": len(sigCfg)},
			"layers":  []any{},
			"subject": subject})
		push(sig, ocispec.MediaTypeImageManifest)

		// An index referrer without artifactType lists without one.
		idx := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageIndex,
			"manifests": []any{}, "subject": subject})
		push(idx, ocispec.MediaTypeImageIndex)

		// A referrer in another repository is not listed here.
		other := pushImage(t, base, "other", "v1", "subject")
		require.Equal(t, img.digest, other.digest)
		pushBlob(t, base, "other", empty)
		r = do(t, http.MethodPut, base+"/v2/other/manifests/x", sbom, "Content-Type", ocispec.MediaTypeImageManifest)
		require.Equal(t, http.StatusCreated, r.StatusCode)

		get := func(q string) (ocispec.Index, response) {
			r := do(t, http.MethodGet, base+"/v2/app/referrers/"+img.digest.String()+q, nil)
			require.Equal(t, http.StatusOK, r.StatusCode, "body %s", r.body)
			require.Equal(t, ocispec.MediaTypeImageIndex, r.Header.Get("Content-Type"))
			var ix ocispec.Index
			require.NoError(t, json.Unmarshal(r.body, &ix))
			require.Equal(t, 2, ix.SchemaVersion)
			return ix, r
		}
		ix, r := get("")
		require.Empty(t, r.Header.Get("OCI-Filters-Applied"))
		byDigest := map[digest.Digest]ocispec.Descriptor{}
		for _, m := range ix.Manifests {
			byDigest[m.Digest] = m
		}
		require.Len(t, byDigest, 3)
		s := byDigest[digest.FromBytes(sbom)]
		require.Equal(t, "application/vnd.example.sbom", s.ArtifactType)
		require.Equal(t, map[string]string{"org.example": "sbom"}, s.Annotations)
		require.Equal(t, int64(len(sbom)), s.Size)
		require.Equal(t, ocispec.MediaTypeImageManifest, s.MediaType)
		require.Equal(t, "application/vnd.example.sig", byDigest[digest.FromBytes(sig)].ArtifactType)
		require.Empty(t, byDigest[digest.FromBytes(idx)].ArtifactType)
		require.Equal(t, ocispec.MediaTypeImageIndex, byDigest[digest.FromBytes(idx)].MediaType)

		ix, r = get("?artifactType=application/vnd.example.sig")
		require.Equal(t, "artifactType", r.Header.Get("OCI-Filters-Applied"))
		require.Len(t, ix.Manifests, 1)
		require.Equal(t, digest.FromBytes(sig), ix.Manifests[0].Digest)

		// Deleting a referrer drops it from the list.
		r = do(t, http.MethodDelete, base+"/v2/app/manifests/"+digest.FromBytes(sbom).String(), nil)
		require.Equal(t, http.StatusAccepted, r.StatusCode)
		ix, _ = get("")
		require.Len(t, ix.Manifests, 2)

		// A subject with no referrers, or a repository never pushed to:
		// an empty index, never 404.
		r = do(t, http.MethodGet, base+"/v2/nobody/referrers/"+digest.FromString("x").String(), nil)
		require.Equal(t, http.StatusOK, r.StatusCode)
		require.Contains(t, string(r.body), `"manifests":[]`)
		r = do(t, http.MethodGet, base+"/v2/app/referrers/sha256:nope", nil)
		expectError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
	})
}

func TestDeletes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		img := pushImage(t, base, "del", "v1", "x")
		r := do(t, http.MethodPut, base+"/v2/del/manifests/v2", img.manifest, "Content-Type", ocispec.MediaTypeImageManifest)
		require.Equal(t, http.StatusCreated, r.StatusCode)
		keep := pushImage(t, base, "del", "keep", "y")

		// Tag delete leaves the manifest.
		r = do(t, http.MethodDelete, base+"/v2/del/manifests/v2", nil)
		require.Equal(t, http.StatusAccepted, r.StatusCode)
		r = do(t, http.MethodGet, base+"/v2/del/manifests/v2", nil)
		expectError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
		r = do(t, http.MethodDelete, base+"/v2/del/manifests/v2", nil)
		expectError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
		r = do(t, http.MethodGet, base+"/v2/del/manifests/v1", nil)
		require.Equal(t, http.StatusOK, r.StatusCode)

		// Manifest delete takes its tags with it.
		r = do(t, http.MethodDelete, base+"/v2/del/manifests/"+img.digest.String(), nil)
		require.Equal(t, http.StatusAccepted, r.StatusCode)
		for _, ref := range []string{"v1", img.digest.String()} {
			r = do(t, http.MethodGet, base+"/v2/del/manifests/"+ref, nil)
			expectError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
		}
		r = do(t, http.MethodDelete, base+"/v2/del/manifests/"+img.digest.String(), nil)
		expectError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
		r = do(t, http.MethodGet, base+"/v2/del/tags/list", nil)
		require.JSONEq(t, `{"name":"del","tags":["keep"]}`, string(r.body))
		r = do(t, http.MethodGet, base+"/v2/del/manifests/keep", nil)
		require.Equal(t, keep.manifest, r.body)

		// Blob delete unlinks; the data stays for other repositories.
		pushBlob(t, base, "other", []byte("layer-x"))
		r = do(t, http.MethodDelete, base+"/v2/del/blobs/"+img.layer.String(), nil)
		require.Equal(t, http.StatusAccepted, r.StatusCode)
		r = do(t, http.MethodGet, base+"/v2/del/blobs/"+img.layer.String(), nil)
		expectError(t, r, http.StatusNotFound, "BLOB_UNKNOWN")
		r = do(t, http.MethodDelete, base+"/v2/del/blobs/"+img.layer.String(), nil)
		expectError(t, r, http.StatusNotFound, "BLOB_UNKNOWN")
		r = do(t, http.MethodGet, base+"/v2/other/blobs/"+img.layer.String(), nil)
		require.Equal(t, "layer-x", string(r.body))
		r = do(t, http.MethodDelete, base+"/v2/del/blobs/sha256:bad", nil)
		expectError(t, r, http.StatusBadRequest, "DIGEST_INVALID")

		// Deletes switched off.
		ro := serve(t, d, Options{DisableDelete: true})
		for _, p := range []string{"/v2/del/manifests/keep", "/v2/del/manifests/" + keep.digest.String(), "/v2/other/blobs/" + img.layer.String()} {
			r = do(t, http.MethodDelete, ro+p, nil)
			expectError(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
		}
		r = do(t, http.MethodGet, base+"/v2/del/manifests/keep", nil)
		require.Equal(t, http.StatusOK, r.StatusCode)
	})
}

func TestNameInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d storage.Driver) {
		base := serve(t, d, Options{})
		for _, p := range []string{
			"/v2/UPPER/tags/list",
			"/v2/a__-b/manifests/latest",
			"/v2/a//b/blobs/uploads/",
			"/v2/_hidden/manifests/latest",
			"/v2/a/_manifests/tags/list",
			"/v2/" + strings.Repeat("a", 256) + "/tags/list",
		} {
			r := do(t, http.MethodGet, base+p, nil)
			if strings.Contains(p, "uploads") {
				r = do(t, http.MethodPost, base+p, nil)
			}
			expectError(t, r, http.StatusBadRequest, "NAME_INVALID")
		}
		require.Empty(t, snapshot(t, d))
	})
}

func TestOnErrorHidesStorageFailures(t *testing.T) {
	var seen []error
	reg, err := New(failing{}, Options{OnError: func(_ *http.Request, err error) { seen = append(seen, err) }})
	require.NoError(t, err)
	srv := serveHandler(t, reg)
	r := do(t, http.MethodGet, srv+"/v2/x/manifests/latest", nil)
	require.Equal(t, http.StatusInternalServerError, r.StatusCode)
	require.NotContains(t, string(r.body), "disk on fire")
	require.Len(t, seen, 1)
	require.ErrorContains(t, seen[0], "disk on fire")
}

func TestNewValidates(t *testing.T) {
	_, err := New(nil, Options{})
	require.Error(t, err)
	_, err = New(backends()[0].new(t), Options{MaxManifestSize: -1})
	require.Error(t, err)
}
