package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"io"
	"runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// discardSink takes blobs without keeping them.
type discardSink struct{ bytes int64 }

func (d *discardSink) WriteBlob(_ context.Context, _ ocispec.Descriptor, r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	d.bytes += n
	return err
}

// TestLoadStreamsLayers loads an archive with a large layer that comes
// before manifest.json and checks that Load did not hold it in memory.
func TestLoadStreamsLayers(t *testing.T) {
	const size = 64 << 20
	zeros := make([]byte, 32<<10)
	h := sha256.New()
	for range size / len(zeros) {
		h.Write(zeros)
	}
	diffID := digest.NewDigest(digest.SHA256, h)
	cfg := mustJSON(t, ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}})
	manifest := mustJSON(t, []dockerItem{{Config: "c.json", RepoTags: []string{"big:1"}, Layers: []string{"big/layer.tar"}}})

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		write := func(name string, n int64, chunks func() error) {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: n, Mode: 0o644}); err != nil {
				pw.CloseWithError(err)
			}
			if err := chunks(); err != nil {
				pw.CloseWithError(err)
			}
		}
		write("big/layer.tar", size, func() error {
			for range size / len(zeros) {
				if _, err := tw.Write(zeros); err != nil {
					return err
				}
			}
			return nil
		})
		write("c.json", int64(len(cfg)), func() error { _, err := tw.Write(cfg); return err })
		write("manifest.json", int64(len(manifest)), func() error { _, err := tw.Write(manifest); return err })
		pw.CloseWithError(tw.Close())
	}()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sink := &discardSink{}
	loaded, err := Load(context.Background(), pr, sink)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].Names[0] != "big:1" {
		t.Fatalf("loaded %+v", loaded)
	}
	if sink.bytes < size {
		t.Errorf("sink got %d bytes, want at least %d", sink.bytes, size)
	}
	// The producer reuses one buffer; everything Load allocates is small.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Errorf("loading allocated %d bytes for a %d-byte layer", alloc, size)
	}
}
