package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// legacy is a docker archive in the layout docker 1.10 to 24 wrote.
type legacy struct {
	tar     []byte
	entries []tarEntry
	configs []digest.Digest
	diffIDs [][]digest.Digest
}

// legacyArchive builds two images: one of two layers, one sharing the
// first layer through a symlink, as docker save did.
func legacyArchive(t *testing.T, order ...int) legacy {
	t.Helper()
	l1 := layerTar(t, map[string]string{"bin/sh": "#!"})
	l2 := layerTar(t, map[string]string{"etc/motd": "hello"})
	d1, d2 := digest.FromBytes(l1), digest.FromBytes(l2)
	cfg := func(cmd string, diffIDs ...digest.Digest) []byte {
		return mustJSON(t, ocispec.Image{
			Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
			Config:   ocispec.ImageConfig{Cmd: []string{cmd}},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		})
	}
	c1, c2 := cfg("one", d1, d2), cfg("two", d1)
	id1, id2, id3 := hexOf("1"), hexOf("2"), hexOf("3")
	manifest := mustJSON(t, []dockerItem{
		{Config: digest.FromBytes(c1).Encoded() + ".json", RepoTags: []string{"old/one:latest"},
			Layers: []string{id1 + "/layer.tar", id2 + "/layer.tar"}},
		{Config: digest.FromBytes(c2).Encoded() + ".json", RepoTags: []string{"old/two:1", "old/two:2"},
			Layers: []string{id3 + "/layer.tar"}},
	})
	entries := []tarEntry{
		{name: id1 + "/", typ: tar.TypeDir},
		reg(id1+"/VERSION", []byte("1.0")),
		reg(id1+"/json", []byte(`{"id":"`+id1+`"}`)),
		reg(id1+"/layer.tar", l1),
		reg(id2+"/layer.tar", l2),
		reg(id2+"/json", []byte(`{}`)),
		{name: id3 + "/layer.tar", typ: tar.TypeSymlink, link: "../" + id1 + "/layer.tar"},
		reg(digest.FromBytes(c1).Encoded()+".json", c1),
		reg(digest.FromBytes(c2).Encoded()+".json", c2),
		reg("manifest.json", manifest),
		reg("repositories", []byte(`{"old/one":{"latest":"`+id2+`"}}`)),
	}
	if len(order) == len(entries) {
		shuffled := make([]tarEntry, len(entries))
		for i, j := range order {
			shuffled[i] = entries[j]
		}
		entries = shuffled
	}
	return legacy{
		tar:     makeTar(t, entries...),
		entries: entries,
		configs: []digest.Digest{digest.FromBytes(c1), digest.FromBytes(c2)},
		diffIDs: [][]digest.Digest{{d1, d2}, {d1}},
	}
}

func hexOf(s string) string { return digest.FromString(s).Encoded() }

func TestLoadLegacyDockerArchive(t *testing.T) {
	orders := map[string][]int{
		"docker order":      nil,
		"manifest first":    {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 10},
		"symlink before it": {6, 9, 0, 10, 1, 2, 3, 4, 5, 7, 8},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			lg := legacyArchive(t, order...)
			sink := newMemStore()
			loaded, err := Load(ctx, bytes.NewReader(lg.tar), sink)
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 2 {
				t.Fatalf("loaded %+v", loaded)
			}
			if loaded[1].Names[0] != "old/two:1" || loaded[1].Names[1] != "old/two:2" {
				t.Errorf("names %v", loaded[1].Names)
			}
			for i, l := range loaded {
				if l.Config != lg.configs[i] {
					t.Errorf("image %d config %s, want %s", i, l.Config, lg.configs[i])
				}
				sink.get(t, l.Config)
				if l.Manifest.MediaType != ocispec.MediaTypeImageManifest {
					t.Errorf("image %d manifest type %q", i, l.Manifest.MediaType)
				}
				mb := sink.get(t, l.Manifest.Digest)
				if digest.FromBytes(mb) != l.Manifest.Digest || int64(len(mb)) != l.Manifest.Size {
					t.Fatalf("image %d: stored manifest does not match its descriptor", i)
				}
				var m ocispec.Manifest
				if err := json.Unmarshal(mb, &m); err != nil {
					t.Fatal(err)
				}
				if m.Config.Digest != lg.configs[i] || m.Config.MediaType != ocispec.MediaTypeImageConfig {
					t.Errorf("image %d manifest config %+v", i, m.Config)
				}
				if len(m.Layers) != len(lg.diffIDs[i]) {
					t.Fatalf("image %d has layers %s", i, fmtDigests(m.Layers))
				}
				for j, ld := range m.Layers {
					if ld.Digest != lg.diffIDs[i][j] || ld.MediaType != ocispec.MediaTypeImageLayer {
						t.Errorf("image %d layer %d: %+v, want diff ID %s", i, j, ld, lg.diffIDs[i][j])
					}
					if b := sink.get(t, ld.Digest); int64(len(b)) != ld.Size {
						t.Errorf("layer %s size %d, descriptor says %d", ld.Digest, len(b), ld.Size)
					}
				}
			}
		})
	}
}

// TestLoadDockerArchiveCompressedLayer reads a docker archive whose layer
// file is gzip-compressed, which docker load accepts too.
func TestLoadDockerArchiveCompressedLayer(t *testing.T) {
	raw := layerTar(t, map[string]string{"x": "y"})
	gz := gzipped(t, raw)
	cfg := mustJSON(t, ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw)}}})
	archive := makeTar(t,
		reg("manifest.json", mustJSON(t, []dockerItem{{Config: "c.json", Layers: []string{"l.tar.gz"}}})),
		reg("c.json", cfg),
		reg("l.tar.gz", gz),
	)
	sink := newMemStore()
	loaded, err := Load(context.Background(), bytes.NewReader(archive), sink)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(sink.get(t, loaded[0].Manifest.Digest), &m); err != nil {
		t.Fatal(err)
	}
	if m.Layers[0].Digest != digest.FromBytes(gz) || m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("layer %+v", m.Layers[0])
	}
	if len(loaded[0].Names) != 0 {
		t.Errorf("an untagged image got names %v", loaded[0].Names)
	}
}
