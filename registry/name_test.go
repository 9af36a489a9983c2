package registry

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "library/alpine", "a.b_c__d---e/f0", "0/1/2", strings.Repeat("a", 255)} {
		require.True(t, validName(n), n)
	}
	for _, n := range []string{"", "A", "a/", "/a", "a//b", "a..b", "a___b", "_a", "a_", "a-", "-a", "a/.b", "a b", "a:b",
		strings.Repeat("a", 256), "a/_manifests"} {
		require.False(t, validName(n), n)
	}
}

func TestValidTag(t *testing.T) {
	for _, s := range []string{"latest", "V1.2-rc_3", "_x", strings.Repeat("a", 128)} {
		require.True(t, validTag(s), s)
	}
	for _, s := range []string{"", ".x", "-x", "a/b", "a:b", strings.Repeat("a", 129)} {
		require.False(t, validTag(s), s)
	}
}

func TestParseRoute(t *testing.T) {
	for p, want := range map[string]route{
		"/v2/":                                  {kind: routeBase},
		"/v2":                                   {kind: routeBase},
		"/v2/_catalog":                          {kind: routeCatalog},
		"/v2/a/b/tags/list":                     {kind: routeTags, name: "a/b"},
		"/v2/a/manifests/tags/list":             {kind: routeTags, name: "a/manifests"},
		"/v2/a/tags/manifests/list":             {kind: routeManifest, name: "a/tags", ref: "list"},
		"/v2/x/manifests/blobs/manifests/v1":    {kind: routeManifest, name: "x/manifests/blobs", ref: "v1"},
		"/v2/a/blobs/sha256:ab":                 {kind: routeBlob, name: "a", ref: "sha256:ab"},
		"/v2/a/blobs/uploads/":                  {kind: routeUploads, name: "a"},
		"/v2/a/blobs/uploads":                   {kind: routeUploads, name: "a"},
		"/v2/a/blobs/uploads/123":               {kind: routeUpload, name: "a", ref: "123"},
		"/v2/a/blobs/uploads/blobs/uploads/123": {kind: routeUpload, name: "a/blobs/uploads", ref: "123"},
		"/v2/a/referrers/sha256:ab":             {kind: routeReferrers, name: "a", ref: "sha256:ab"},
	} {
		got, ok := parseRoute(p)
		require.True(t, ok, p)
		require.Equal(t, want, got, p)
	}
	for _, p := range []string{"/", "/v1/a/tags/list", "/v2x", "/v2/a", "/v2/a/b", "/v2/a/manifests/", "/v2/a/unknown/x"} {
		_, ok := parseRoute(p)
		require.False(t, ok, p)
	}
}

func TestParseContentRange(t *testing.T) {
	for s, want := range map[string][2]int64{"0-9": {0, 9}, "bytes 10-19": {10, 19}, "bytes=5-5": {5, 5}} {
		a, b, ok := parseContentRange(s)
		require.True(t, ok, s)
		require.Equal(t, want, [2]int64{a, b}, s)
	}
	for _, s := range []string{"", "9-0", "-1-2", "a-b", "10", "bytes */10"} {
		_, _, ok := parseContentRange(s)
		require.False(t, ok, s)
	}
}

func TestReferences(t *testing.T) {
	m := imageManifest(t, []byte("c"), []byte("l"), map[string]any{
		"subject": map[string]any{"mediaType": "a/b", "digest": "sha256:" + strings.Repeat("0", 64), "size": 1}})
	refs, err := References(m)
	require.NoError(t, err)
	require.Len(t, refs, 2)
	_, err = References([]byte("nope"))
	require.Error(t, err)
}
