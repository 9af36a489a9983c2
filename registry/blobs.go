package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// blob serves GET, HEAD and DELETE /v2/<name>/blobs/<digest>.
func (r *Registry) blob(w http.ResponseWriter, req *http.Request, name, ref string) error {
	d, ok := parseDigest(ref)
	if !ok {
		return NewError(CodeDigestInvalid, map[string]string{"digest": ref})
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		return r.getBlob(w, req, name, d)
	case http.MethodDelete:
		return r.deleteBlob(w, req, name, d)
	}
	return unsupported(req.Method)
}

// inRepo reports whether the repository may serve the content d: a blob
// pushed or mounted there, or one of its manifests (which clients may
// fetch through the blob endpoint too).
func (r *Registry) inRepo(ctx context.Context, name string, d digest.Digest) (bool, error) {
	ok, err := r.exists(ctx, blobLinkPath(name, d))
	if ok || err != nil {
		return ok, err
	}
	return r.exists(ctx, revisionLinkPath(name, d))
}

// blobInfo is the size of the blob d as the repository serves it, or
// BLOB_UNKNOWN.
func (r *Registry) blobInfo(ctx context.Context, name string, d digest.Digest) (storage.Info, error) {
	unknown := NewError(CodeBlobUnknown, map[string]string{"digest": d.String()})
	ok, err := r.inRepo(ctx, name, d)
	if err != nil {
		return storage.Info{}, err
	}
	if !ok {
		return storage.Info{}, unknown
	}
	info, err := r.d.Stat(ctx, blobDataPath(d))
	if errors.Is(err, errdefs.ErrNotFound) {
		// A link whose data was collected: the blob is gone.
		return storage.Info{}, unknown
	}
	if err != nil {
		return storage.Info{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return info, nil
}

func (r *Registry) getBlob(w http.ResponseWriter, req *http.Request, name string, d digest.Digest) error {
	ctx := req.Context()
	info, err := r.blobInfo(ctx, name, d)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	// Content is addressed by digest: it never changes, so the digest is
	// a strong validator and caches may keep it for good.
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	content := &driverSeeker{ctx: ctx, d: r.d, path: blobDataPath(d), size: info.Size}
	defer content.Close()
	// ServeContent answers Range (206, 416), If-Range and HEAD.
	http.ServeContent(w, req, "", time.Time{}, content)
	if content.err != nil && !errors.Is(content.err, context.Canceled) && r.opts.OnError != nil {
		r.opts.OnError(req, content.err)
	}
	return nil
}

func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request, name string, d digest.Digest) error {
	if r.opts.DisableDelete {
		return &Error{Code: CodeUnsupported, Message: "deletes are disabled"}
	}
	ctx := req.Context()
	ok, err := r.exists(ctx, blobLinkPath(name, d))
	if err != nil {
		return err
	}
	if !ok {
		return NewError(CodeBlobUnknown, map[string]string{"digest": d.String()})
	}
	// Only the link goes: the data may be shared with other
	// repositories, and garbage collection removes it once unreferenced.
	if err := r.remove(ctx, blobLinkDir(name, d)); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// linkBlob makes the blob d part of the repository.
func (r *Registry) linkBlob(ctx context.Context, name string, d digest.Digest) error {
	return r.putSmall(ctx, blobLinkPath(name, d), []byte(d.String()))
}

// driverSeeker is an io.ReadSeeker over a driver object that opens the
// object at the offset of the first Read after a Seek, so a Range request
// reads only the bytes it asks for.
type driverSeeker struct {
	ctx  context.Context
	d    storage.Driver
	path string
	size int64
	off  int64
	rc   io.ReadCloser
	// err is the last read error, for the caller to report: ServeContent
	// has already sent the headers when reading fails.
	err error
}

func (s *driverSeeker) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = s.off + offset
	case io.SeekEnd:
		abs = s.size + offset
	default:
		return 0, errors.New("seek: bad whence " + strconv.Itoa(whence))
	}
	if abs < 0 {
		return 0, errors.New("seek: negative offset")
	}
	if abs != s.off && s.rc != nil {
		_ = s.rc.Close()
		s.rc = nil
	}
	s.off = abs
	return abs, nil
}

func (s *driverSeeker) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	if s.rc == nil {
		rc, err := s.d.Reader(s.ctx, s.path, s.off)
		if err != nil {
			s.err = err
			return 0, err
		}
		s.rc = rc
	}
	n, err := s.rc.Read(p)
	s.off += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

// Close closes the open reader, if any.
func (s *driverSeeker) Close() error {
	if s.rc == nil {
		return nil
	}
	err := s.rc.Close()
	s.rc = nil
	return err
}
