// Package image is berth's image model and store: manifests, indexes and
// configs in OCI and Docker schema 2 form, the names that point at them,
// pull, push and garbage collection. Blobs live in image/content, layers
// are unpacked by the snapshotter, registries are reached by image/remote.
package image

import (
	"cmp"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/internal/errdefs"
)

// sniffMediaType reads the mediaType field, or infers it from the shape of
// the document for OCI content that leaves it out.
func sniffMediaType(b []byte) (string, error) {
	probe, err := mediatype.Read(b)
	if err != nil {
		return "", errdefs.Invalid("manifest is not valid JSON: %v", err)
	}
	mt := probe.Guess()
	switch {
	case probe.SchemaVersion == 1 || probe.FSLayers != nil:
		return "", errdefs.Invalid("docker schema 1 manifests are not supported")
	case probe.SchemaVersion != 2:
		return "", errdefs.Invalid("unsupported manifest schemaVersion %d", probe.SchemaVersion)
	case mt == "":
		return "", errdefs.Invalid("manifest has no mediaType and is neither a manifest nor an index")
	}
	return mt, nil
}

// ParseManifest decodes and checks a single-platform manifest. mt is the
// media type the registry or the referring index announced.
func ParseManifest(mt string, b []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	inner, err := sniffMediaType(b)
	if err != nil {
		return m, err
	}
	if mt != "" && !mediatype.IsManifest(mt) || !mediatype.IsManifest(inner) {
		return m, errdefs.Invalid("expected an image manifest, got %q", cmp.Or(mt, inner))
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, errdefs.Invalid("decode manifest: %v", err)
	}
	if err := checkDescriptor(m.Config, "config"); err != nil {
		return m, err
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(l, fmt.Sprintf("layer %d", i)); err != nil {
			return m, err
		}
	}
	return m, nil
}

// ParseIndex decodes and checks an image index or manifest list.
func ParseIndex(mt string, b []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	inner, err := sniffMediaType(b)
	if err != nil {
		return idx, err
	}
	if mt != "" && !mediatype.IsIndex(mt) || !mediatype.IsIndex(inner) {
		return idx, errdefs.Invalid("expected an image index, got %q", cmp.Or(mt, inner))
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, errdefs.Invalid("decode index: %v", err)
	}
	for i, m := range idx.Manifests {
		if err := checkDescriptor(m, fmt.Sprintf("manifest %d", i)); err != nil {
			return idx, err
		}
	}
	return idx, nil
}

// MediaTypeOf returns the media type a manifest or index document declares.
func MediaTypeOf(b []byte) (string, error) { return sniffMediaType(b) }

func checkDescriptor(d ocispec.Descriptor, what string) error {
	if err := d.Digest.Validate(); err != nil {
		return errdefs.Invalid("%s: bad digest %q: %v", what, d.Digest, err)
	}
	if d.Size < 0 {
		return errdefs.Invalid("%s: negative size", what)
	}
	return nil
}

// ParseConfig decodes an image config.
func ParseConfig(b []byte) (ocispec.Image, error) {
	var c ocispec.Image
	if err := json.Unmarshal(b, &c); err != nil {
		return c, errdefs.Invalid("decode image config: %v", err)
	}
	if c.RootFS.Type != "" && c.RootFS.Type != "layers" {
		return c, errdefs.Invalid("image config: unsupported rootfs type %q", c.RootFS.Type)
	}
	return c, nil
}

// HostPlatform is the platform of this machine, the one berth runs.
func HostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// ParsePlatform reads "os/arch[/variant]" as --platform takes it.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, errdefs.Invalid("invalid platform %q: want os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// MatchPlatform reports whether an index entry's platform runs on want.
// An empty variant on either side matches, as Docker does for arm64.
func MatchPlatform(have *ocispec.Platform, want ocispec.Platform) bool {
	if have == nil {
		return false
	}
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	return have.Variant == "" || want.Variant == "" || have.Variant == want.Variant
}

// ChooseManifest picks the manifest for platform want from an index.
func ChooseManifest(idx ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	var seen []string
	for _, m := range idx.Manifests {
		if !mediatype.IsManifest(m.MediaType) && m.MediaType != "" {
			continue
		}
		if MatchPlatform(m.Platform, want) {
			return m, nil
		}
		if m.Platform != nil {
			seen = append(seen, FormatPlatform(*m.Platform))
		}
	}
	return ocispec.Descriptor{}, errdefs.NotFound("no image for platform %s (the index has: %s)",
		FormatPlatform(want), strings.Join(seen, ", "))
}

// FormatPlatform writes a platform as os/arch[/variant].
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ChainID computes the chain of layer diff IDs as the OCI image spec
// defines it: it names a stack of layers, not one layer.
func ChainID(diffIDs []digest.Digest) digest.Digest {
	if len(diffIDs) == 0 {
		return ""
	}
	chain := diffIDs[0]
	for _, d := range diffIDs[1:] {
		chain = digest.FromString(chain.String() + " " + d.String())
	}
	return chain
}
