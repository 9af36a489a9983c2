package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/internal/errdefs"
)

// ociParts makes the pieces of a valid one-image OCI layout, for the
// hostile cases to break one at a time.
type ociParts struct {
	layer, config, manifest []byte
	index                   ocispec.Index
}

func newOCIParts(t *testing.T) ociParts {
	t.Helper()
	var p ociParts
	raw := layerTar(t, map[string]string{"f": "x"})
	p.layer = gzipped(t, raw)
	p.config = mustJSON(t, ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw)}}})
	p.manifest = mustJSON(t, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(p.config), Size: int64(len(p.config))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(p.layer), Size: int64(len(p.layer))}},
	})
	p.index = ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		Manifests: []ocispec.Descriptor{{
			MediaType:   ocispec.MediaTypeImageManifest,
			Digest:      digest.FromBytes(p.manifest),
			Size:        int64(len(p.manifest)),
			Annotations: map[string]string{annotationRefName: "x:1"},
		}},
	}
	return p
}

func (p ociParts) entries(t *testing.T) []tarEntry {
	return []tarEntry{
		reg(fileOCILayout, []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		reg(fileIndex, mustJSON(t, p.index)),
		blobEntry(p.manifest), blobEntry(p.config), blobEntry(p.layer),
	}
}

func TestHostileArchives(t *testing.T) {
	p := newOCIParts(t)
	good := p.entries(t)
	layerName := blobPathOf(digest.FromBytes(p.layer))
	cfgName := digest.FromBytes(p.config).Encoded() + ".json"
	lg := legacyArchive(t)
	raw := layerTar(t, map[string]string{"f": "x"})
	dockerWith := func(items []dockerItem, extra ...tarEntry) []byte {
		return makeTar(t, append([]tarEntry{reg(fileManifest, mustJSON(t, items)), reg(cfgName, p.config)}, extra...)...)
	}
	with := func(extra ...tarEntry) []byte { return makeTar(t, append(append([]tarEntry{}, good...), extra...)...) }
	replace := func(name string, e tarEntry) []byte {
		var out []tarEntry
		for _, g := range good {
			if g.name == name {
				g = e
			}
			out = append(out, g)
		}
		return makeTar(t, out...)
	}
	indexWith := func(d ocispec.Descriptor) []byte {
		idx := p.index
		idx.Manifests = []ocispec.Descriptor{d}
		return replace(fileIndex, reg(fileIndex, mustJSON(t, idx)))
	}
	wrongLayer := raw
	wrongLayer = append(append([]byte{}, wrongLayer...), make([]byte, 1024)...)

	cases := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"dot-dot name", with(reg("../evil", []byte("x"))), "paths with .."},
		{"dot-dot inside name", with(reg("a/../../evil", []byte("x"))), "paths with .."},
		{"absolute name", with(reg("/etc/passwd", []byte("x"))), "absolute paths"},
		{"symlink as blob", with(tarEntry{name: blobPathOf(digest.FromString("x")), typ: tar.TypeSymlink, link: "../../" + layerName}), "links are only allowed"},
		{"symlink as manifest.json", with(tarEntry{name: fileManifest, typ: tar.TypeSymlink, link: fileIndex}), "links are only allowed"},
		{"absolute symlink", with(tarEntry{name: "a/layer.tar", typ: tar.TypeSymlink, link: "/etc/shadow"}), "must be a relative path"},
		{"escaping symlink", with(tarEntry{name: "a/layer.tar", typ: tar.TypeSymlink, link: "../../../etc/shadow"}), "outside the archive"},
		{"escaping hard link", with(tarEntry{name: "a/layer.tar", typ: tar.TypeLink, link: "../etc/shadow"}), "paths with .."},
		{"device node", with(tarEntry{name: "dev", typ: tar.TypeChar}), "unsupported entry type"},
		{"fifo", with(tarEntry{name: "fifo", typ: tar.TypeFifo}), "unsupported entry type"},
		{"duplicate entry", with(reg(fileIndex, mustJSON(t, p.index))), "appears twice"},
		{"blob not matching its name", replace(layerName, reg(layerName, gzipped(t, []byte("other")))), "digest"},
		{"json blob not matching its name", replace(blobPathOf(digest.FromBytes(p.config)),
			reg(blobPathOf(digest.FromBytes(p.config)), []byte(`{"other":1}`))), "does not match its name"},
		{"bad blob name", with(reg("blobs/sha256/xyz", []byte("x"))), "bad blob name"},
		{"file in blobs", with(reg("blobs/stray", []byte("x"))), "not a blobs/<algorithm>/<hex> name"},
		{"index names a missing manifest", indexWith(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("gone"), Size: 4}), "does not hold blob"},
		{"index gets a size wrong", indexWith(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(p.manifest), Size: 3}), "the descriptor says 3"},
		{"manifest names a missing layer", replace(layerName, reg("other", []byte("x"))), "does not hold blob"},
		{"index with unknown media type", indexWith(ocispec.Descriptor{MediaType: "text/plain", Digest: digest.FromBytes(p.config), Size: int64(len(p.config))}), "unsupported media type"},
		{"no oci-layout", replace(fileOCILayout, reg("README", []byte("hi"))), "has no oci-layout"},
		{"future layout version", replace(fileOCILayout, reg(fileOCILayout, []byte(`{"imageLayoutVersion":"2.0.0"}`))), "layout version"},
		{"oversize index.json", replace(fileIndex, reg(fileIndex, bytes.Repeat([]byte(" "), MaxJSONSize+1))), "more than the 4194304 allowed"},
		{"oversize manifest.json", makeTar(t, reg(fileManifest, bytes.Repeat([]byte(" "), MaxJSONSize+1))), "more than the 4194304 allowed"},
		{"index.json not JSON", replace(fileIndex, reg(fileIndex, []byte("<xml/>"))), "not a JSON document"},
		{"unknown format", makeTar(t, reg("hello.txt", []byte("hi"))), "unknown archive format"},
		{"pre-1.10 docker archive", makeTar(t, reg(fileRepositories, []byte(`{}`))), "before 1.10"},
		{"not a tar", bytes.Repeat([]byte("garbage!"), 200), "not a tar archive"},
		{"empty", nil, "archive is empty"},
		{"truncated", lg.tar[:len(lg.tar)/2], "read archive"},
		{"manifest.json lists nothing", makeTar(t, reg(fileManifest, []byte(`[]`))), "lists no images"},
		{"manifest.json names a missing config", dockerWith([]dockerItem{{Config: "nope.json"}}), `names "nope.json", which the archive does not hold`},
		{"manifest.json names a missing layer", dockerWith([]dockerItem{{Config: cfgName, Layers: []string{"gone/layer.tar"}}}), `names "gone/layer.tar"`},
		{"manifest.json escapes", dockerWith([]dockerItem{{Config: "../" + cfgName}}), "paths with .."},
		{"manifest.json uses a legacy file as layer", dockerWith([]dockerItem{{Config: cfgName, Layers: []string{"x/json"}}},
			reg("x/json", []byte("{}"))), "is not a layer file"},
		{"layer count differs from the config", dockerWith([]dockerItem{{Config: cfgName, Layers: []string{"l.tar", "l.tar"}}},
			reg("l.tar", raw)), "2 layers, but the config lists 1"},
		{"layer does not match its diff ID", dockerWith([]dockerItem{{Config: cfgName, Layers: []string{"l.tar"}}},
			reg("l.tar", wrongLayer)), "but the config says"},
		{"dangling symlink", dockerWith([]dockerItem{{Config: cfgName, Layers: []string{"a/layer.tar"}}},
			tarEntry{name: "a/layer.tar", typ: tar.TypeSymlink, link: "../b/layer.tar"}), "which the archive does not hold"},
		{"symlink loop", dockerWith([]dockerItem{{Config: cfgName, Layers: []string{"a/layer.tar"}}},
			tarEntry{name: "a/layer.tar", typ: tar.TypeSymlink, link: "../b/layer.tar"},
			tarEntry{name: "b/layer.tar", typ: tar.TypeSymlink, link: "../a/layer.tar"}), "chain of more than"},
		{"config too large to be a config", dockerWith([]dockerItem{{Config: "big.tar"}}, reg("big.tar", raw)), "not a JSON document"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(context.Background(), bytes.NewReader(c.archive), newMemStore())
			if err == nil {
				t.Fatal("hostile archive loaded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %q is not ErrInvalidArgument", err)
			}
		})
	}
	// The unbroken parts load, so each case fails for its own reason.
	if _, err := Load(context.Background(), bytes.NewReader(makeTar(t, good...)), newMemStore()); err != nil {
		t.Fatalf("the valid OCI layout fails: %v", err)
	}
	if _, err := Load(context.Background(), bytes.NewReader(dockerWith([]dockerItem{{Config: cfgName, Layers: []string{"l.tar"}}},
		reg("l.tar", raw))), newMemStore()); err != nil {
		t.Fatalf("the valid docker archive fails: %v", err)
	}
}

func TestCleanName(t *testing.T) {
	ok := map[string]string{"./manifest.json": "manifest.json", "a//b": "a/b", "blobs/sha256/": "blobs/sha256", "./": "."}
	for in, want := range ok {
		if got, err := cleanName(in); err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/x", "..", "a/..", "../a", "a/../b", "a\x00b"} {
		if _, err := cleanName(bad); err == nil {
			t.Errorf("cleanName(%q) accepted", bad)
		}
	}
}

func TestLinkTarget(t *testing.T) {
	if got, err := linkTarget("id/layer.tar", "../abc.tar", true); err != nil || got != "abc.tar" {
		t.Errorf("symlink: %q, %v", got, err)
	}
	if got, err := linkTarget("id/layer.tar", "other/layer.tar", false); err != nil || got != "other/layer.tar" {
		t.Errorf("hard link: %q, %v", got, err)
	}
	for _, bad := range [][2]string{{"a", "../x"}, {"a/b", "../../x"}, {"a", "/x"}, {"a", ""}} {
		if _, err := linkTarget(bad[0], bad[1], true); err == nil {
			t.Errorf("linkTarget(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestSniff(t *testing.T) {
	cases := map[string]kind{"\x1f\x8b\x08": kindGzip, "\x28\xb5\x2f\xfd": kindZstd, "  \n{\"a\":1}": kindJSON, "[]": kindJSON, "bin/sh\x00": kindTar, "": kindTar}
	for in, want := range cases {
		if got := sniff([]byte(in)); got != want {
			t.Errorf("sniff(%q) = %v, want %v", in, got, want)
		}
	}
}
