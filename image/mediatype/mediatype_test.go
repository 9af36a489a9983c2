package mediatype

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

func TestGuess(t *testing.T) {
	for doc, want := range map[string]string{
		`{"schemaVersion":2,"mediaType":"` + DockerManifestList + `","manifests":[]}`: DockerManifestList,
		`{"schemaVersion":2,"manifests":[]}`:                                          ocispec.MediaTypeImageIndex,
		`{"schemaVersion":2,"config":{}}`:                                             ocispec.MediaTypeImageManifest,
		`{"schemaVersion":2}`:                                                         "",
	} {
		p, err := Read([]byte(doc))
		require.NoError(t, err, doc)
		require.Equal(t, want, p.Guess(), doc)
	}
	_, err := Read([]byte("not json"))
	require.Error(t, err)
}

func TestKinds(t *testing.T) {
	require.True(t, IsIndex(DockerManifestList))
	require.True(t, IsIndex(ocispec.MediaTypeImageIndex))
	require.False(t, IsIndex(DockerManifest))
	require.True(t, IsManifest(DockerManifest))
	require.False(t, IsManifest(DockerConfig))
	for _, mt := range Manifests {
		require.True(t, IsManifestOrIndex(mt), mt)
	}
	require.False(t, IsManifestOrIndex(ocispec.MediaTypeImageLayerGzip))
}
