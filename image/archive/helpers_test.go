package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/internal/errdefs"
)

// memStore is an in-memory BlobSource and BlobSink that verifies what it
// is given, as a real store does.
type memStore struct {
	mu    sync.Mutex
	blobs map[digest.Digest][]byte
}

func newMemStore() *memStore { return &memStore{blobs: map[digest.Digest][]byte{}} }

func (m *memStore) OpenBlob(_ context.Context, d digest.Digest) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return nil, errdefs.NotFound("blob %s not found", d)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memStore) WriteBlob(_ context.Context, desc ocispec.Descriptor, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if desc.Size >= 0 && int64(len(b)) != desc.Size {
		return errdefs.Invalid("blob %s: size %d, expected %d", desc.Digest, len(b), desc.Size)
	}
	d := desc.Digest
	if d == "" {
		d = digest.FromBytes(b)
	} else if got := d.Algorithm().FromBytes(b); got != d {
		return errdefs.Invalid("blob digest mismatch: got %s, expected %s", got, d)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[d] = b
	return nil
}

func (m *memStore) get(t *testing.T, d digest.Digest) []byte {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		t.Fatalf("blob %s not in store", d)
	}
	return b
}

func (m *memStore) put(mt string, b []byte) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[d.Digest] = b
	return d
}

// layerTar makes an uncompressed layer holding the given files.
func layerTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t *testing.T, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// testLayer is a layer of a test image: its uncompressed content and how
// the store keeps it.
type testLayer struct {
	tar  []byte
	comp kind // kindTar, kindGzip or kindZstd
}

// testImage is an image put into a memStore.
type testImage struct {
	manifest ocispec.Descriptor
	config   ocispec.Descriptor
	layers   []ocispec.Descriptor
	diffIDs  []digest.Digest
}

// putImage stores an image made of the given layers, with an OCI or a
// Docker schema 2 manifest.
func putImage(t *testing.T, s *memStore, docker bool, cmd string, layers ...testLayer) testImage {
	t.Helper()
	var img testImage
	for _, l := range layers {
		img.diffIDs = append(img.diffIDs, digest.FromBytes(l.tar))
		b, mt := l.tar, ocispec.MediaTypeImageLayer
		switch l.comp {
		case kindGzip:
			b, mt = gzipped(t, l.tar), ocispec.MediaTypeImageLayerGzip
			if docker {
				mt = "application/vnd.docker.image.rootfs.diff.tar.gzip"
			}
		case kindZstd:
			b, mt = zstded(t, l.tar), ocispec.MediaTypeImageLayerZstd
		}
		img.layers = append(img.layers, s.put(mt, b))
	}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh", "-c", cmd}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: img.diffIDs},
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgType, manType := ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest
	if docker {
		cfgType, manType = "application/vnd.docker.container.image.v1+json", mediatype.DockerManifest
	}
	img.config = s.put(cfgType, cb)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: manType,
		Config:    img.config,
		Layers:    img.layers,
	}
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	img.manifest = s.put(manType, mb)
	return img
}

// tarEntry is one entry of a hand-made archive.
type tarEntry struct {
	name string
	body []byte
	typ  byte // tar.TypeReg when zero
	link string
}

func reg(name string, body []byte) tarEntry { return tarEntry{name: name, body: body} }

func blobEntry(b []byte) tarEntry { return reg(blobPathOf(digest.FromBytes(b)), b) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// makeTar writes entries as a tar, in the order given.
func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Typeflag: typ, Name: e.name, Linkname: e.link, Mode: 0o644, ModTime: epoch}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("header %s: %v", e.name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listTar returns the names of an archive's entries, in order.
func listTar(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for range 10000 {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	t.Fatal("archive has too many entries")
	return nil
}

// readTarFile returns one file of an archive.
func readTarFile(t *testing.T, b []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	for range 10000 {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
	t.Fatalf("archive has no %s", name)
	return nil
}

func fmtDigests(ds []ocispec.Descriptor) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Digest.String())
	}
	return fmt.Sprint(s)
}
