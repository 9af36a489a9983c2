package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/content"
	"github.com/berth-containers/berth/image/mediatype"
)

// twoImages stores two images sharing a base layer: one with an OCI
// manifest and gzip layers, one with a Docker schema 2 manifest and a zstd
// layer on top.
func twoImages(t *testing.T, s *memStore) (a, b testImage) {
	t.Helper()
	base := testLayer{tar: layerTar(t, map[string]string{"etc/os-release": "ID=test\n"}), comp: kindGzip}
	a = putImage(t, s, false, "a", base,
		testLayer{tar: layerTar(t, map[string]string{"a.txt": "aaa"}), comp: kindGzip})
	b = putImage(t, s, true, "b", base,
		testLayer{tar: layerTar(t, map[string]string{"b.txt": "bbb"}), comp: kindZstd})
	return a, b
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{DockerArchive, OCIArchive} {
		t.Run(f.String(), func(t *testing.T) {
			ctx := context.Background()
			src := newMemStore()
			a, b := twoImages(t, src)
			images := []Image{
				{Names: []string{"example.com/a:v1", "example.com/a:latest"}, Manifest: a.manifest},
				{Names: []string{"example.com/b:v2"}, Manifest: b.manifest},
				// The same manifest again merges into the first entry.
				{Names: []string{"example.com/a:v1", "example.com/a:again"}, Manifest: a.manifest},
			}
			var buf bytes.Buffer
			if err := Save(ctx, &buf, src, images, f); err != nil {
				t.Fatal(err)
			}
			archive := buf.Bytes()

			// The shared base layer is written once.
			count := 0
			for _, n := range listTar(t, archive) {
				if n == blobPathOf(a.layers[0].Digest) {
					count++
				}
			}
			if count != 1 {
				t.Fatalf("shared layer written %d times, want 1", count)
			}

			dst := newMemStore()
			loaded, err := Load(ctx, bytes.NewReader(archive), dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 2 {
				t.Fatalf("loaded %d images, want 2: %+v", len(loaded), loaded)
			}
			wantNames := [][]string{
				{"example.com/a:v1", "example.com/a:latest", "example.com/a:again"},
				{"example.com/b:v2"},
			}
			for i, img := range []testImage{a, b} {
				l := loaded[i]
				if strings.Join(l.Names, ",") != strings.Join(wantNames[i], ",") {
					t.Errorf("image %d names %v, want %v", i, l.Names, wantNames[i])
				}
				// Both layouts keep the image's own manifest, except that an
				// OCI archive turns Docker manifests into OCI ones.
				if img.manifest.MediaType == mediatype.DockerManifest && f == OCIArchive {
					if l.Manifest.MediaType != ocispec.MediaTypeImageManifest {
						t.Errorf("image %d: manifest type %q in an OCI archive", i, l.Manifest.MediaType)
					}
					var m ocispec.Manifest
					if err := json.Unmarshal(dst.get(t, l.Manifest.Digest), &m); err != nil {
						t.Fatal(err)
					}
					if m.Config.Digest != img.config.Digest || fmtDigests(m.Layers) != fmtDigests(img.layers) ||
						m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip || m.Config.MediaType != ocispec.MediaTypeImageConfig {
						t.Errorf("image %d: converted manifest %+v", i, m)
					}
				} else if l.Manifest.Digest != img.manifest.Digest || l.Manifest.MediaType != img.manifest.MediaType {
					t.Errorf("image %d manifest %v, want %v", i, l.Manifest, img.manifest)
				}
				if l.Config != img.config.Digest {
					t.Errorf("image %d config %s, want %s", i, l.Config, img.config.Digest)
				}
				for _, d := range append([]ocispec.Descriptor{img.config}, img.layers...) {
					if !bytes.Equal(dst.get(t, d.Digest), src.get(t, d.Digest)) {
						t.Errorf("blob %s differs after the round trip", d.Digest)
					}
				}
			}

			// The same images give the same bytes.
			var again bytes.Buffer
			if err := Save(ctx, &again, src, images, f); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), archive) {
				t.Error("saving twice gave different archives")
			}
		})
	}
}

func TestDockerArchiveLayout(t *testing.T) {
	src := newMemStore()
	a, b := twoImages(t, src)
	var buf bytes.Buffer
	images := []Image{
		{Names: []string{"docker.io/library/a:v1"}, Manifest: a.manifest},
		{Names: []string{"b", "b@sha256:" + strings.Repeat("0", 64)}, Manifest: b.manifest},
	}
	if err := Save(context.Background(), &buf, src, images, DockerArchive); err != nil {
		t.Fatal(err)
	}
	var items []dockerItem
	if err := json.Unmarshal(readTarFile(t, buf.Bytes(), fileManifest), &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("manifest.json has %d entries", len(items))
	}
	if items[0].Config != "blobs/sha256/"+a.config.Digest.Encoded() {
		t.Errorf("config path %q", items[0].Config)
	}
	// Layers are the stored (compressed) blobs, as Docker 25 writes them.
	if items[1].Layers[1] != "blobs/sha256/"+b.layers[1].Digest.Encoded() {
		t.Errorf("layer path %q", items[1].Layers[1])
	}
	// Digest references are not tags; a bare name gets :latest.
	if strings.Join(items[1].RepoTags, ",") != "b:latest" {
		t.Errorf("RepoTags %v", items[1].RepoTags)
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(readTarFile(t, buf.Bytes(), fileRepositories), &repos); err != nil {
		t.Fatal(err)
	}
	if repos["docker.io/library/a"]["v1"] != a.diffIDs[1].Encoded() {
		t.Errorf("repositories %v", repos)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(readTarFile(t, buf.Bytes(), fileIndex), &idx); err != nil {
		t.Fatal(err)
	}
	ann := idx.Manifests[0].Annotations
	if ann[annotationImageName] != "docker.io/library/a:v1" || ann[annotationRefName] != "v1" {
		t.Errorf("index annotations %v", ann)
	}
	if p := idx.Manifests[0].Platform; p == nil || p.OS != "linux" || p.Architecture != "amd64" {
		t.Errorf("index platform %v", p)
	}
	if string(readTarFile(t, buf.Bytes(), fileOCILayout)) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Error("bad oci-layout")
	}
}

func TestSaveRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	src := newMemStore()
	a, _ := twoImages(t, src)
	idx := src.put(ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"manifests":[]}`))
	cases := map[string]struct {
		images []Image
		format Format
		want   string
	}{
		"no images":      {nil, DockerArchive, "no images"},
		"bad format":     {[]Image{{Manifest: a.manifest}}, Format(7), "unknown archive format"},
		"index":          {[]Image{{Manifest: idx}}, OCIArchive, "is an index"},
		"missing":        {[]Image{{Manifest: ocispec.Descriptor{Digest: a.layers[0].Digest + "0"}}}, DockerArchive, "bad digest"},
		"wrong size":     {[]Image{{Manifest: ocispec.Descriptor{Digest: a.manifest.Digest, Size: 3}}}, DockerArchive, "does not match"},
		"not in store":   {[]Image{{Manifest: ocispec.Descriptor{Digest: idx.Digest[:10] + "ff" + idx.Digest[12:]}}}, DockerArchive, "not found"},
		"layer not json": {[]Image{{Manifest: a.layers[0]}}, DockerArchive, "manifest"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Save(ctx, &buf, src, c.images, c.format)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestSaveChecksLayers(t *testing.T) {
	src := newMemStore()
	a, _ := twoImages(t, src)
	// Corrupt a stored layer: Save must notice as it streams.
	src.blobs[a.layers[1].Digest] = gzipped(t, []byte("not the layer"))
	err := Save(context.Background(), &bytes.Buffer{}, src, []Image{{Manifest: a.manifest}}, OCIArchive)
	if err == nil || !strings.Contains(err.Error(), "does not match its descriptor") {
		t.Fatalf("got %v", err)
	}
}

// TestLoadIntoContentStore loads into berth's content store, which takes
// blobs of unknown digest for the old docker layout.
func TestLoadIntoContentStore(t *testing.T) {
	ctx := context.Background()
	cs, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, archive := range [][]byte{legacyArchive(t).tar, savedArchive(t, DockerArchive), savedArchive(t, OCIArchive)} {
		loaded, err := Load(ctx, bytes.NewReader(archive), cs)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range loaded {
			b, err := cs.ReadBlob(ctx, l.Manifest.Digest, MaxJSONSize)
			if err != nil {
				t.Fatal(err)
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if info, err := cs.Info(ctx, d.Digest); err != nil || info.Size != d.Size {
					t.Errorf("blob %s: %v %+v", d.Digest, err, info)
				}
			}
		}
	}
}

func savedArchive(t *testing.T, f Format) []byte {
	t.Helper()
	src := newMemStore()
	a, b := twoImages(t, src)
	var buf bytes.Buffer
	images := []Image{{Names: []string{"x/a:1"}, Manifest: a.manifest}, {Names: []string{"x/b:1"}, Manifest: b.manifest}}
	if err := Save(context.Background(), &buf, src, images, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadCompressedArchive(t *testing.T) {
	plain := savedArchive(t, DockerArchive)
	for name, b := range map[string][]byte{"gzip": gzipped(t, plain), "zstd": zstded(t, plain)} {
		t.Run(name, func(t *testing.T) {
			loaded, err := Load(context.Background(), bytes.NewReader(b), newMemStore())
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 2 || loaded[1].Names[0] != "x/b:1" {
				t.Fatalf("loaded %+v", loaded)
			}
		})
	}
}

func TestFormatNames(t *testing.T) {
	for _, s := range []string{"docker-archive", "oci-archive", "docker", "oci"} {
		f, err := ParseFormat(s)
		if err != nil || !strings.HasPrefix(f.String(), s) {
			t.Errorf("ParseFormat(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseFormat("tar"); err == nil {
		t.Error("ParseFormat accepted tar")
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	archive := savedArchive(t, OCIArchive)
	if _, err := Load(ctx, bytes.NewReader(archive), newMemStore()); !errors.Is(err, context.Canceled) {
		t.Errorf("Load: %v", err)
	}
	src := newMemStore()
	a, _ := twoImages(t, src)
	if err := Save(ctx, &bytes.Buffer{}, src, []Image{{Manifest: a.manifest}}, DockerArchive); !errors.Is(err, context.Canceled) {
		t.Errorf("Save: %v", err)
	}
}
