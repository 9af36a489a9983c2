package storagetest

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/berth-containers/berth/registry/storage"
)

// Bench measures, on a fresh backend from backend, what the registry
// does most: whole Puts of a manifest-sized and a layer-sized object,
// reading a layer back, and a chunked upload committed at the end.
func Bench(b *testing.B, backend Backend) {
	for _, size := range []int{4 << 10, 1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("Put/%s", byteSize(size)), func(b *testing.B) {
			d := backend(b)()
			data := content(1, size)
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				// A few paths in turn, so some Puts replace an object
				// and none is only ever the same file.
				p := fmt.Sprintf("bench/put/%d/data", i%8)
				if _, err := d.Put(b.Context(), p, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	b.Run("Read/16MiB", func(b *testing.B) {
		d := backend(b)()
		data := content(2, 16<<20)
		if _, err := d.Put(b.Context(), "bench/read/data", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			rc, err := d.Reader(b.Context(), "bench/read/data", 0)
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Upload/4x4MiB", func(b *testing.B) {
		d := backend(b)()
		chunk := content(3, 4<<20)
		b.SetBytes(4 * int64(len(chunk)))
		for b.Loop() {
			if err := benchUpload(b, d, chunk); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchUpload writes four chunks, closing and resuming after the second
// as a chunked push through two replicas does, and commits.
func benchUpload(b *testing.B, d storage.Driver, chunk []byte) error {
	ctx := b.Context()
	w, err := d.Writer(ctx, "bench/upload/data", false)
	if err != nil {
		return err
	}
	for i := range 4 {
		if i == 2 {
			if err := w.Close(); err != nil {
				return err
			}
			if w, err = d.Writer(ctx, "bench/upload/data", true); err != nil {
				return err
			}
		}
		if _, err := w.Write(chunk); err != nil {
			_ = w.Cancel(ctx) // the write's error is the one to report
			return err
		}
	}
	return w.Commit(ctx)
}

// byteSize names a power-of-two size for a benchmark's name.
func byteSize(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
