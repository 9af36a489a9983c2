// Package archive reads and writes image archives: the tar files that
// `berth save` writes and `berth load` reads, in the two formats other tools
// exchange.
//
// docker-archive is what `docker save` writes. berth writes the layout
// Docker 25 and later write, which is at the same time an OCI image layout:
//
//	oci-layout                 {"imageLayoutVersion":"1.0.0"}
//	index.json                 one entry per name, annotated with the name
//	manifest.json              [{"Config":"blobs/sha256/<hex>","RepoTags":[...],"Layers":["blobs/sha256/<hex>",...]}]
//	repositories               {"<repo>":{"<tag>":"<hex of the top diff ID>"}}
//	blobs/sha256/<hex>         manifests, configs and layers, each once
//
// Layers are written exactly as stored, compressed as they were pulled
// (gzip or zstd): docker load, podman load and skopeo decompress what
// manifest.json names, and the OCI manifest in blobs/ keeps describing
// blobs that are really there, so nothing is recompressed and no temporary
// file is needed. berth reads that layout and the older one (docker 1.10 to
// 24, and skopeo's): `<id>/layer.tar` or `<diffid>.tar` uncompressed layers,
// `<id>.json` configs and symlinks between layer files.
//
// oci-archive is an OCI image layout in a tar: oci-layout, index.json whose
// entries carry org.opencontainers.image.ref.name, and blobs/.
//
// The package knows nothing of berth's store: Save reads blobs through a
// BlobSource and Load writes them through a BlobSink.
package archive

import (
	"context"
	_ "crypto/sha256" // digests of blobs
	_ "crypto/sha512" // sha512 blob names are valid too
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Format names an archive format.
type Format int

// Archive formats berth reads and writes.
const (
	// DockerArchive is the `docker save` format.
	DockerArchive Format = iota + 1
	// OCIArchive is an OCI image layout in a tar.
	OCIArchive
)

// String returns the format's name as the --format flag spells it.
func (f Format) String() string {
	switch f {
	case DockerArchive:
		return "docker-archive"
	case OCIArchive:
		return "oci-archive"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat reads a --format value: "docker-archive" (or "docker") and
// "oci-archive" (or "oci").
func ParseFormat(s string) (Format, error) {
	switch s {
	case "docker-archive", "docker":
		return DockerArchive, nil
	case "oci-archive", "oci":
		return OCIArchive, nil
	}
	return 0, errdefs.Invalid("unknown archive format %q (want docker-archive or oci-archive)", s)
}

// BlobSource gives Save the blobs it archives.
type BlobSource interface {
	// OpenBlob opens the blob with digest d for reading.
	OpenBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, error)
}

// BlobSink takes the blobs Load finds in an archive.
//
// WriteBlob stores what r yields under desc.Digest, failing unless it is
// exactly desc.Size bytes with that digest; a blob already stored may be
// acknowledged without reading r. An empty desc.Digest asks the sink to
// store the blob under the sha256 digest of what it reads: Load does that
// for the uncompressed layers of old docker archives, whose digest is only
// known once they have been read, and checks the digest itself.
type BlobSink interface {
	WriteBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error
}

// Image is one image to save.
type Image struct {
	// Names are the references recorded for the image (RepoTags in
	// docker-archive, index.json annotations in both formats), as the
	// caller spells them, e.g. "docker.io/library/busybox:latest" or
	// "busybox:latest". Digest references are not recorded. It may be empty.
	Names []string
	// Manifest is the image's single-platform manifest (OCI or Docker
	// schema 2), stored in the BlobSource with its config and layers.
	Manifest ocispec.Descriptor
}

// Loaded is one image Load found.
type Loaded struct {
	// Names are the archive's names for the image, as the archive spells
	// them: RepoTags for docker-archive; for oci-archive the
	// io.containerd.image.name annotation, or else
	// org.opencontainers.image.ref.name (which may be a bare tag such as
	// "latest"). Empty for an unnamed image.
	Names []string
	// Manifest is the image's manifest, stored in the sink with everything
	// it references. For docker-archive it is always a single-platform
	// manifest: the archive's own when index.json holds one matching
	// manifest.json, otherwise an OCI manifest Load made and stored. For
	// oci-archive it is what index.json names, which may be an index.
	Manifest ocispec.Descriptor
	// Config is the digest of the image config; empty when Manifest is an
	// index.
	Config digest.Digest
}

// Limits on what Load and Save hold in memory.
const (
	// MaxJSONSize bounds each JSON document (manifest.json, index.json,
	// manifests, configs); the distribution registry uses the same limit.
	MaxJSONSize = 4 << 20
	// maxMetadata bounds all JSON documents of one archive together.
	maxMetadata = 128 << 20
	// maxEntries bounds the number of tar entries of one archive.
	maxEntries = 1 << 20
	// maxLinkHops bounds symlink chains between layer files.
	maxLinkHops = 8
	// maxIndexDepth bounds nested indexes in an OCI layout.
	maxIndexDepth = 4
)

// Well-known names inside an archive.
const (
	fileOCILayout    = "oci-layout"
	fileIndex        = "index.json"
	fileManifest     = "manifest.json"
	fileRepositories = "repositories"
	dirBlobs         = "blobs"
	ociLayoutVersion = "1.0.0"
)

// Annotations naming images in index.json.
const (
	annotationRefName   = ocispec.AnnotationRefName
	annotationImageName = "io.containerd.image.name"
)
