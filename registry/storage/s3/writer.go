package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// tailMagic opens every tail object, so a stray object is not taken for
// one.
const tailMagic = "berth-s3-upload 1\n"

// Writer implements storage.Driver. Write and Close run under ctx, as
// they have no context of their own.
//
// The upload at p is, in the bucket, a multipart upload at p's key whose
// parts are all full (partSize, or whatever an earlier writer's part size
// was), plus, while no writer has it open, a tail object under the
// reserved directory: the multipart upload's id, its part count, and the
// bytes written after the last part. The tail is the upload's marker: it
// exists, even empty, for every closed upload.
func (d *Driver) Writer(ctx context.Context, p string, resume bool) (storage.Writer, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	w := &writer{d: d, ctx: ctx, path: p, key: d.key(p)}
	if resume {
		if err := w.load(ctx); err != nil {
			return nil, err
		}
		return w, nil
	}
	// A new upload discards any earlier one at the same path, closed or
	// left behind by a writer that died.
	if err := d.dropUpload(ctx, p); err != nil {
		return nil, fmt.Errorf("upload %s: discard earlier upload: %w", p, err)
	}
	return w, nil
}

// dropUpload removes the upload at p, if any: its tail, and every
// multipart upload at its key, those of writers that died included.
func (d *Driver) dropUpload(ctx context.Context, p string) error {
	if err := d.c.remove(ctx, d.tailKey(p)); err != nil {
		return err
	}
	ups, err := d.c.listUploads(ctx, d.key(p))
	if err != nil {
		return err
	}
	for _, u := range ups {
		if u.Key != d.key(p) {
			continue
		}
		if err := d.c.abortUpload(ctx, u.Key, u.UploadID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return nil
}

// writer appends to an upload. It is used by one goroutine at a time.
type writer struct {
	d    *Driver
	ctx  context.Context // Write has none of its own
	path string
	key  string

	uploadID string // "" until the first part is sent
	parts    []part
	sent     int64  // bytes in parts
	buf      []byte // the bytes after the parts, fewer than a part
	closed   bool
}

// load resumes the closed upload from its tail and the parts S3 holds.
func (w *writer) load(ctx context.Context) error {
	rc, err := w.d.c.get(ctx, w.d.tailKey(w.path), 0)
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.NotFound("upload %q does not exist", w.path)
	}
	if err != nil {
		return fmt.Errorf("resume upload %s: %w", w.path, err)
	}
	b, err := io.ReadAll(io.LimitReader(rc, MaxPartSize+1024))
	rc.Close()
	if err != nil {
		return fmt.Errorf("resume upload %s: read tail: %w", w.path, err)
	}
	id, nparts, data, err := parseTail(b)
	if err != nil {
		return fmt.Errorf("resume upload %s: %w", w.path, err)
	}
	if id == "" {
		w.buf = data
		return nil
	}
	parts, err := w.d.c.listParts(ctx, w.key, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.NotFound("upload %q does not exist", w.path)
	}
	if err != nil {
		return fmt.Errorf("resume upload %s: %w", w.path, err)
	}
	for i, pt := range parts {
		if pt.Number != i+1 {
			return fmt.Errorf("resume upload %s: part %d missing", w.path, i+1)
		}
		w.sent += pt.Size
	}
	switch {
	case len(parts) == nparts:
		w.buf = data
	case len(parts) > nparts:
		// A writer resumed from this tail sent it on in a part, then
		// died before it closed: the parts hold all that survived.
	default:
		return fmt.Errorf("resume upload %s: %d parts, the tail expects %d", w.path, len(parts), nparts)
	}
	w.uploadID, w.parts = id, parts
	return nil
}

// Write implements io.Writer: bytes fill the buffer, and each full
// buffer goes up as a part.
func (w *writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, storage.ErrClosed
	}
	written := 0
	for len(p) > 0 {
		if int64(len(w.buf)) == w.d.partSize {
			if err := w.flush(w.ctx); err != nil {
				return written, err
			}
		}
		n := min(len(p), int(w.d.partSize)-len(w.buf))
		w.grow(n)
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
		written += n
	}
	// Send a full buffer now rather than at the next Write, so Close
	// never keeps a whole part as a tail.
	if int64(len(w.buf)) == w.d.partSize {
		if err := w.flush(w.ctx); err != nil {
			return written, err
		}
	}
	return written, nil
}

// grow makes room for n more bytes in the buffer, doubling up to one
// part: small uploads such as manifests do not pay for a whole part.
func (w *writer) grow(n int) {
	need := len(w.buf) + n
	if need <= cap(w.buf) {
		return
	}
	size := min(max(2*cap(w.buf), need, 64<<10), int(w.d.partSize))
	nb := make([]byte, len(w.buf), size)
	copy(nb, w.buf)
	w.buf = nb
}

// flush sends the buffer as the next part, starting the multipart
// upload on the first.
func (w *writer) flush(ctx context.Context) error {
	if len(w.parts) == maxParts {
		return fmt.Errorf("upload %s: more than %d parts", w.path, maxParts)
	}
	if w.uploadID == "" {
		id, err := w.d.c.createUpload(ctx, w.key)
		if err != nil {
			return fmt.Errorf("upload %s: %w", w.path, err)
		}
		w.uploadID = id
	}
	pt, err := w.d.c.uploadPart(ctx, w.key, w.uploadID, len(w.parts)+1, w.buf)
	if err != nil {
		return fmt.Errorf("upload %s: part %d: %w", w.path, len(w.parts)+1, err)
	}
	w.parts = append(w.parts, pt)
	w.sent += pt.Size
	w.buf = w.buf[:0]
	return nil
}

// Size implements storage.Writer.
func (w *writer) Size() int64 { return w.sent + int64(len(w.buf)) }

// Close implements io.Closer: it stores the buffer as the upload's tail
// for a resuming writer. Closing a finished writer does nothing.
func (w *writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.d.c.put(w.ctx, w.d.tailKey(w.path), w.tail()); err != nil {
		return fmt.Errorf("close upload %s: %w", w.path, err)
	}
	return nil
}

// tail encodes the upload's state and its buffer.
func (w *writer) tail() []byte {
	id := w.uploadID
	if id == "" {
		id = "-"
	}
	var b bytes.Buffer
	b.Grow(len(tailMagic) + len(id) + 16 + len(w.buf))
	b.WriteString(tailMagic)
	b.WriteString(id + "\n" + strconv.Itoa(len(w.parts)) + "\n")
	b.Write(w.buf)
	return b.Bytes()
}

// parseTail reads what tail wrote: the upload id ("" for none), the
// part count, and the bytes after the parts.
func parseTail(b []byte) (string, int, []byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte(tailMagic))
	if !ok {
		return "", 0, nil, errors.New("tail: not an upload tail")
	}
	id, rest, ok1 := bytes.Cut(rest, []byte("\n"))
	count, data, ok2 := bytes.Cut(rest, []byte("\n"))
	n, err := strconv.Atoi(string(count))
	if !ok1 || !ok2 || err != nil || n < 0 || strings.TrimSpace(string(id)) == "" {
		return "", 0, nil, errors.New("tail: malformed header")
	}
	if string(id) == "-" {
		if n != 0 {
			return "", 0, nil, errors.New("tail: parts without an upload")
		}
		id = nil
	}
	// Copy so the buffer may grow to a part without the header.
	return string(id), n, append([]byte(nil), data...), nil
}

// Commit implements storage.Writer.
func (w *writer) Commit(ctx context.Context) error {
	if w.closed {
		return storage.ErrClosed
	}
	w.closed = true
	if w.uploadID == "" {
		if err := w.d.c.put(ctx, w.key, w.buf); err != nil {
			return fmt.Errorf("commit upload %s: %w", w.path, err)
		}
	} else {
		if len(w.buf) > 0 {
			if err := w.flush(ctx); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
		}
		if err := w.d.c.completeUpload(ctx, w.key, w.uploadID, w.parts); err != nil {
			return fmt.Errorf("commit upload %s: %w", w.path, err)
		}
	}
	if err := w.d.c.remove(ctx, w.d.tailKey(w.path)); err != nil {
		return fmt.Errorf("commit upload %s: remove tail: %w", w.path, err)
	}
	return nil
}

// Cancel implements storage.Writer.
func (w *writer) Cancel(ctx context.Context) error {
	if w.closed {
		return storage.ErrClosed
	}
	w.closed = true
	if w.uploadID != "" {
		if err := w.d.c.abortUpload(ctx, w.key, w.uploadID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("cancel upload %s: %w", w.path, err)
		}
	}
	if err := w.d.c.remove(ctx, w.d.tailKey(w.path)); err != nil {
		return fmt.Errorf("cancel upload %s: %w", w.path, err)
	}
	return nil
}
