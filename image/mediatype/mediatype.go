// Package mediatype names the kinds of content images are made of (OCI and
// Docker schema 2 manifests, indexes, configs and layers) and recognises a
// manifest document by its shape when its media type is not given. The
// image store, the registry client and the archive reader share it.
package mediatype

import (
	"encoding/json"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker schema 2 media types, which registries and archives still carry
// next to the OCI ones.
const (
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerConfig       = "application/vnd.docker.container.image.v1+json"
	DockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	DockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	DockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	DockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// MaxManifestSize bounds manifests, indexes and configs read into memory;
// the distribution registry uses the same 4 MiB limit.
const MaxManifestSize = 4 << 20

// Manifests are the manifest and index media types berth reads, OCI first.
var Manifests = []string{
	ocispec.MediaTypeImageManifest,
	ocispec.MediaTypeImageIndex,
	DockerManifest,
	DockerManifestList,
}

// IsIndex reports whether mt is an image index or a manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == DockerManifestList
}

// IsManifest reports whether mt is a single-platform image manifest.
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == DockerManifest
}

// IsManifestOrIndex reports whether mt is one of Manifests.
func IsManifestOrIndex(mt string) bool { return IsManifest(mt) || IsIndex(mt) }

// Probe is what Guess reads of a document.
type Probe struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     json.RawMessage   `json:"manifests"`
	Config        json.RawMessage   `json:"config"`
	FSLayers      []json.RawMessage `json:"fsLayers"`
}

// Read decodes the fields Guess looks at.
func Read(b []byte) (Probe, error) {
	var p Probe
	err := json.Unmarshal(b, &p)
	return p, err
}

// Guess is the media type a manifest or index document declares, or, for
// OCI documents that leave mediaType out, the one its fields imply. It is
// "" when the document says nothing either way.
func (p Probe) Guess() string {
	switch {
	case p.MediaType != "":
		return p.MediaType
	case p.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case p.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}
