// Package archive reads tar streams in the compressions build inputs come
// in (plain, gzip, bzip2, xz, zstd) and unpacks them inside a directory
// without letting any entry land outside it.
package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/berth-containers/berth/internal/errdefs"
)

// The leading bytes of each compression berth recognises.
var (
	magicGzip  = []byte{0x1f, 0x8b, 0x08}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress returns r with its compression undone, told by its first
// bytes; a stream in no known compression is returned as it is. Close
// releases the decoder (and ends the xz process, for xz).
func Decompress(ctx context.Context, r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(magicXz))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip stream: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, magicBzip2):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(head, magicXz):
		return xzReader(ctx, br)
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("zstd stream: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// xzProc is the output of an xz process decoding a stream.
type xzProc struct {
	io.ReadCloser
	cmd    *exec.Cmd
	cancel context.CancelFunc
}

// Close stops the process if it is still running and reaps it.
func (x *xzProc) Close() error {
	x.cancel()
	err := x.ReadCloser.Close()
	_ = x.cmd.Wait() // killed on purpose when closed early
	return err
}

// xzReader decodes xz with the xz tool, as Docker does: Go's standard
// library has no xz decoder.
func xzReader(ctx context.Context, r io.Reader) (io.ReadCloser, error) {
	bin, err := exec.LookPath("xz")
	if err != nil {
		return nil, errdefs.Invalid("xz stream: decoding xz needs the xz program: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, bin, "-d", "-c", "-q")
	cmd.Stdin = r
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("xz stream: %w", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("xz stream: %w", err)
	}
	return &xzProc{ReadCloser: out, cmd: cmd, cancel: cancel}, nil
}

// IsArchive reports whether the file at path is a tar archive, plain or
// compressed: whether its (decoded) start reads as a tar header. This is
// how Docker decides whether ADD unpacks a local file.
func IsArchive(ctx context.Context, path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	dr, err := Decompress(ctx, f)
	if err != nil {
		// A file that looks compressed but does not decode is copied
		// as it is, not refused.
		return false, nil //nolint:nilerr // not an archive is an answer, not an error
	}
	defer dr.Close()
	_, err = tar.NewReader(dr).Next()
	return err == nil, nil
}
