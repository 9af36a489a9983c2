package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// BlobExists reports whether ref's repository has the blob d.
func (c *Client) BlobExists(ctx context.Context, ref reference.Reference, d digest.Digest) (bool, error) {
	size, err := c.BlobSize(ctx, ref, d)
	return size >= 0, err
}

// BlobSize asks the registry (HEAD) for a blob's size: -1 when it does
// not have the blob.
func (c *Client) BlobSize(ctx context.Context, ref reference.Reference, d digest.Digest) (int64, error) {
	if err := d.Validate(); err != nil {
		return -1, errdefs.Invalid("blob digest %q: %v", d, err)
	}
	r, err := c.repository(ctx, ref)
	if err != nil {
		return -1, err
	}
	req, err := newRequest(r.scope(ctx, actionPull), http.MethodHead, r.base+"/blobs/"+d.String(), nil)
	if err != nil {
		return -1, err
	}
	resp, err := c.do(req)
	if err != nil {
		return -1, fmt.Errorf("check blob %s in %s: %w", d, ref.Name(), err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		drainClose(resp.Body)
		if resp.ContentLength < 0 {
			return -1, fmt.Errorf("check blob %s in %s: the registry gives no length", d, ref.Name())
		}
		return resp.ContentLength, nil
	case http.StatusNotFound:
		drainClose(resp.Body)
		return -1, nil
	}
	return -1, fmt.Errorf("check blob %s in %s: %w", d, ref.Name(), responseError(resp))
}

// FetchBlob streams the blob desc describes from ref's repository,
// following redirects to storage hosts. If the connection drops, the
// stream reconnects with a Range request from where it stopped (at most
// Options.MaxResumes times). The stream checks the length against
// desc.Size and fails on a short or long blob; the caller verifies the
// digest as it stores the content.
func (c *Client) FetchBlob(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, errdefs.Invalid("blob digest %q: %v", desc.Digest, err)
	}
	if desc.Size < 0 {
		return nil, errdefs.Invalid("blob %s: negative size", desc.Digest)
	}
	r, err := c.repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	br := &blobReader{ctx: r.scope(ctx, actionPull), c: c, url: r.base + "/blobs/" + desc.Digest.String(),
		size: desc.Size, name: ref.Name() + "@" + desc.Digest.String(), maxResumes: c.opts.MaxResumes}
	if err := br.open(); err != nil {
		return nil, err
	}
	return br, nil
}

// blobReader is a blob download that picks up where it stopped when the
// connection fails.
type blobReader struct {
	ctx        context.Context
	c          *Client
	url        string
	name       string
	size       int64
	off        int64
	body       io.ReadCloser
	resumes    int
	maxResumes int
	closed     bool
}

// open starts (or restarts at r.off) the download.
func (r *blobReader) open() error {
	req, err := newRequest(r.ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	if r.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
	}
	resp, err := r.c.do(req)
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", r.name, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != r.size {
			drainClose(resp.Body)
			return fmt.Errorf("fetch blob %s: registry sends %d bytes, descriptor says %d", r.name, resp.ContentLength, r.size)
		}
		if r.off > 0 {
			// The server ignored the Range: skip what we already have.
			if _, err := io.CopyN(io.Discard, resp.Body, r.off); err != nil {
				resp.Body.Close()
				return fmt.Errorf("fetch blob %s: skip to %d: %w", r.name, r.off, err)
			}
		}
	case resp.StatusCode == http.StatusPartialContent && r.off > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != r.off {
			drainClose(resp.Body)
			return fmt.Errorf("fetch blob %s: asked for bytes from %d, got range %q", r.name, r.off, resp.Header.Get("Content-Range"))
		}
	default:
		return fmt.Errorf("fetch blob %s: %w", r.name, responseError(resp))
	}
	r.body = resp.Body
	return nil
}

// rangeStart reads the first byte of "bytes 100-199/200".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("read of a closed blob stream")
	}
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if r.off > r.size {
			return n, errdefs.Invalid("fetch blob %s: more than the %d bytes the descriptor says", r.name, r.size)
		}
		if err == nil {
			return n, nil
		}
		if errors.Is(err, io.EOF) && r.off == r.size {
			return n, io.EOF
		}
		// A short body or a broken connection: start again from r.off.
		r.body.Close()
		r.body = nil
		if r.ctx.Err() != nil {
			return n, r.ctx.Err()
		}
		if r.resumes >= r.maxResumes {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("fetch blob %s: stopped at byte %d of %d: %w", r.name, r.off, r.size, err)
		}
		r.resumes++
		if err := sleep(r.ctx, r.c.opts.Retry.Delay(r.resumes, "")); err != nil {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *blobReader) Close() error {
	r.closed = true
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}
