package remote

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// PushBlob uploads the blob desc describes, reading exactly desc.Size
// bytes from r: in one PUT when it is at most Options.MonolithicLimit,
// otherwise in PATCH chunks of Options.ChunkSize with Content-Range, then
// a closing PUT. The blob is streamed, never held in memory. When r is
// also an io.ReaderAt, each request body reads from its offset and can be
// sent again (after an expired token); otherwise r is read once, in order.
func (c *Client) PushBlob(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, r io.Reader) error {
	if err := checkBlobDesc(desc); err != nil {
		return err
	}
	rp, err := c.repository(ctx, ref)
	if err != nil {
		return err
	}
	ctx = rp.scope(ctx, actionPull, actionPush)
	loc, err := c.startUpload(ctx, rp, nil)
	if err != nil {
		return fmt.Errorf("push blob %s to %s: %w", desc.Digest, ref.Name(), err)
	}
	if err := c.upload(ctx, loc, desc, r); err != nil {
		return fmt.Errorf("push blob %s to %s: %w", desc.Digest, ref.Name(), err)
	}
	return nil
}

// MountBlob asks the registry to link blob d from the repository from into
// ref's repository, with no data sent. It reports false when the registry
// does not mount (a different registry, a blob it cannot find, or a
// registry without mounting); the upload session a refused mount opens
// is cancelled, and the caller pushes the blob instead.
func (c *Client) MountBlob(ctx context.Context, ref, from reference.Reference, d digest.Digest) (bool, error) {
	if err := d.Validate(); err != nil {
		return false, errdefs.Invalid("blob digest %q: %v", d, err)
	}
	if from.Domain != ref.Domain {
		return false, nil
	}
	rp, err := c.repository(ctx, ref)
	if err != nil {
		return false, err
	}
	ctx = scopeFrom(rp.scope(ctx, actionPull, actionPush), rp.host, from)
	mounted, loc, err := c.tryMount(ctx, rp, from, d)
	if err != nil || mounted {
		return mounted, err
	}
	c.cancelUpload(ctx, loc)
	return false, nil
}

// MountOrPushBlob mounts the blob from the repository from when the
// registry can, and otherwise uploads it from r through the session the
// refused mount opened. It reports whether the blob was mounted.
func (c *Client) MountOrPushBlob(ctx context.Context, ref, from reference.Reference, desc ocispec.Descriptor, r io.Reader) (bool, error) {
	if err := checkBlobDesc(desc); err != nil {
		return false, err
	}
	if from.Domain != ref.Domain {
		return false, c.PushBlob(ctx, ref, desc, r)
	}
	rp, err := c.repository(ctx, ref)
	if err != nil {
		return false, err
	}
	ctx = scopeFrom(rp.scope(ctx, actionPull, actionPush), rp.host, from)
	mounted, loc, err := c.tryMount(ctx, rp, from, desc.Digest)
	if err != nil || mounted {
		return mounted, err
	}
	if err := c.upload(ctx, loc, desc, r); err != nil {
		return false, fmt.Errorf("push blob %s to %s: %w", desc.Digest, ref.Name(), err)
	}
	return false, nil
}

func checkBlobDesc(desc ocispec.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return errdefs.Invalid("blob digest %q: %v", desc.Digest, err)
	}
	if desc.Size < 0 {
		return errdefs.Invalid("blob %s: negative size", desc.Digest)
	}
	return nil
}

// tryMount sends the mount request: 201 means mounted, 202 means the
// registry opened an upload session instead, at loc.
func (c *Client) tryMount(ctx context.Context, rp repo, from reference.Reference, d digest.Digest) (bool, *url.URL, error) {
	q := url.Values{"mount": {d.String()}, "from": {from.Path}}
	req, err := newRequest(ctx, http.MethodPost, rp.base+"/blobs/uploads/?"+q.Encode(), nil)
	if err != nil {
		return false, nil, err
	}
	resp, err := c.expect(req, http.StatusCreated, http.StatusAccepted) //nolint:bodyclose // drainClose closes it
	if err != nil {
		return false, nil, fmt.Errorf("mount blob %s from %s into %s: %w", d, from.Name(), rp.ref.Name(), err)
	}
	drainClose(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		return true, nil, nil
	}
	loc, err := resolveLocation(resp)
	if err != nil {
		return false, nil, err
	}
	return false, loc, nil
}

// startUpload opens an upload session and returns its location.
func (c *Client) startUpload(ctx context.Context, rp repo, query url.Values) (*url.URL, error) {
	u := rp.base + "/blobs/uploads/"
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := newRequest(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.expect(req, http.StatusAccepted) //nolint:bodyclose // closed by drainClose or the caller
	if err != nil {
		return nil, fmt.Errorf("start upload: %w", err)
	}
	drainClose(resp.Body)
	return resolveLocation(resp)
}

// cancelUpload abandons a session; failure is harmless, registries purge
// stale sessions.
func (c *Client) cancelUpload(ctx context.Context, loc *url.URL) {
	req, err := newRequest(ctx, http.MethodDelete, loc.String(), nil)
	if err != nil {
		return
	}
	if resp, err := c.do(req); err == nil { //nolint:bodyclose // closed by drainClose or the caller
		drainClose(resp.Body)
	}
}

// upload sends the data to an open session, whole or in chunks.
func (c *Client) upload(ctx context.Context, loc *url.URL, desc ocispec.Descriptor, r io.Reader) error {
	if c.opts.MonolithicLimit < 0 || desc.Size <= c.opts.MonolithicLimit {
		return c.putBlob(ctx, loc, desc, body(r, 0, desc.Size))
	}
	for _, ch := range PlanChunks(desc.Size, c.opts.ChunkSize) {
		next, err := c.patchChunk(ctx, loc, ch, body(r, ch.Offset, ch.Length))
		if err != nil {
			return err
		}
		loc = next
	}
	return c.putBlob(ctx, loc, desc, nil)
}

// Chunk is one PATCH of a chunked upload.
type Chunk struct {
	Offset, Length int64
}

// ContentRange is the chunk's Content-Range header, "first-last" as the
// distribution API writes it (no unit).
func (ch Chunk) ContentRange() string {
	return fmt.Sprintf("%d-%d", ch.Offset, ch.Offset+ch.Length-1)
}

// PlanChunks splits size bytes into chunks of chunkSize, the last one
// shorter.
func PlanChunks(size, chunkSize int64) []Chunk {
	if size <= 0 || chunkSize <= 0 {
		return nil
	}
	out := make([]Chunk, 0, (size+chunkSize-1)/chunkSize)
	for off := int64(0); off < size; off += chunkSize {
		out = append(out, Chunk{Offset: off, Length: min(chunkSize, size-off)})
	}
	return out
}

// bodySource is a request body: its length and how to read it, again if
// it can be read again.
type bodySource struct {
	length  int64
	open    func() io.Reader
	replays bool
}

// body reads length bytes at off: from a section when r is an
// io.ReaderAt (replayable), else the next bytes of the stream.
func body(r io.Reader, off, length int64) *bodySource {
	if ra, ok := r.(io.ReaderAt); ok {
		return &bodySource{length: length, replays: true,
			open: func() io.Reader { return io.NewSectionReader(ra, off, length) }}
	}
	return &bodySource{length: length, open: func() io.Reader { return io.LimitReader(r, length) }}
}

// request builds a request carrying b (nil: empty body).
func (b *bodySource) request(ctx context.Context, method, u string) (*http.Request, error) {
	if b == nil || b.length == 0 {
		req, err := newRequest(ctx, method, u, http.NoBody)
		if err != nil {
			return nil, err
		}
		req.ContentLength = 0
		return req, nil
	}
	req, err := newRequest(ctx, method, u, io.NopCloser(b.open()))
	if err != nil {
		return nil, err
	}
	req.ContentLength = b.length
	if b.replays {
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(b.open()), nil }
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	return req, nil
}

// patchChunk sends one chunk and returns the session's next location.
func (c *Client) patchChunk(ctx context.Context, loc *url.URL, ch Chunk, b *bodySource) (*url.URL, error) {
	req, err := b.request(ctx, http.MethodPatch, loc.String())
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Range", ch.ContentRange())
	resp, err := c.expect(req, http.StatusAccepted, http.StatusNoContent) //nolint:bodyclose // closed by drainClose or the caller
	if err != nil {
		return nil, fmt.Errorf("upload bytes %s: %w", ch.ContentRange(), err)
	}
	drainClose(resp.Body)
	if rg := resp.Header.Get("Range"); rg != "" {
		if end, ok := rangeEnd(rg); !ok || end != ch.Offset+ch.Length-1 {
			return nil, fmt.Errorf("upload bytes %s: registry has range %q", ch.ContentRange(), rg)
		}
	}
	if resp.Header.Get("Location") == "" {
		return loc, nil
	}
	return resolveLocation(resp)
}

// rangeEnd reads the last byte of "0-1023" (or "bytes=0-1023").
func rangeEnd(rg string) (int64, bool) {
	_, last, ok := cutLast(rg, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(last, 10, 64)
	return n, err == nil
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// putBlob closes the session with the digest, sending b (or nothing after
// chunks).
func (c *Client) putBlob(ctx context.Context, loc *url.URL, desc ocispec.Descriptor, b *bodySource) error {
	u := *loc
	q := u.Query()
	q.Set("digest", desc.Digest.String())
	u.RawQuery = q.Encode()
	req, err := b.request(ctx, http.MethodPut, u.String())
	if err != nil {
		return err
	}
	resp, err := c.expect(req, http.StatusCreated, http.StatusNoContent, http.StatusAccepted) //nolint:bodyclose // closed by drainClose
	if err != nil {
		return fmt.Errorf("complete upload: %w", err)
	}
	drainClose(resp.Body)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != desc.Digest.String() {
		return fmt.Errorf("complete upload: registry stored digest %s, expected %s", got, desc.Digest)
	}
	return nil
}
