package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// An upload session lives wholly in the driver, under
// repositories/<name>/_uploads/<id>/: "startedat" marks it open, "data"
// is the driver upload its bytes are appended to, and "hashstate" the
// running digest of those bytes (see hashstate.go). Any replica continues
// it, and the digest is checked at the end, from the running digest or by
// reading the data back.

// newUploadID makes a session ID: 128 random bits, hex.
func newUploadID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make upload id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

// startUpload serves POST /v2/<name>/blobs/uploads/: a mount, a
// monolithic upload with ?digest=, or a new session.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, name string) error {
	ctx := req.Context()
	q := req.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, ok, err := r.mount(ctx, name, mount, q.Get("from"))
		if err != nil {
			return err
		}
		if ok {
			blobCreated(w, name, d)
			return nil
		}
		// Anything else opens a session, as the spec asks.
	}
	var digests []digest.Digest
	if q.Has("digest") {
		ds, err := parseDigests(q["digest"])
		if err != nil {
			return err
		}
		digests = ds
	}
	id, err := newUploadID()
	if err != nil {
		return err
	}
	started := time.Now().UTC().Format(time.RFC3339Nano)
	if err := r.putSmall(ctx, uploadStartedPath(name, id), []byte(started)); err != nil {
		return err
	}
	if digests == nil {
		uploadAccepted(w, http.StatusAccepted, name, id, 0)
		return nil
	}
	if err := r.finishUpload(ctx, name, id, digests, req); err != nil {
		return err
	}
	blobCreated(w, name, digests[0])
	return nil
}

// parseDigests reads the digest parameters; any malformed or unsupported
// one is DIGEST_INVALID.
func parseDigests(values []string) ([]digest.Digest, error) {
	if len(values) == 0 {
		return nil, &Error{Code: CodeDigestInvalid, Message: "digest parameter required"}
	}
	out := make([]digest.Digest, 0, len(values))
	for _, v := range values {
		d, ok := parseDigest(v)
		if !ok {
			return nil, &Error{Code: CodeDigestInvalid, Message: "invalid or unsupported digest",
				Detail: map[string]string{"digest": v}}
		}
		out = append(out, d)
	}
	return out, nil
}

// mount links the blob from the repository from into name. It reports
// false, with no error, for anything it cannot mount: the caller opens a
// session instead.
func (r *Registry) mount(ctx context.Context, name, mount, from string) (digest.Digest, bool, error) {
	d, ok := parseDigest(mount)
	// Without from, a mount would reach any repository's blobs, past
	// whatever guards access to them: refuse it.
	if !ok || from == "" || !validName(from) {
		return "", false, nil
	}
	linked, err := r.exists(ctx, blobLinkPath(from, d))
	if err != nil || !linked {
		return "", false, err
	}
	present, err := r.exists(ctx, blobDataPath(d))
	if err != nil || !present {
		return "", false, err
	}
	if err := r.linkBlob(ctx, name, d); err != nil {
		return "", false, err
	}
	return d, true, nil
}

// upload serves the session URL: PATCH, PUT, GET and DELETE.
func (r *Registry) upload(w http.ResponseWriter, req *http.Request, name, id string) error {
	if !validUploadID(id) {
		return NewError(CodeBlobUploadUnknown, map[string]string{"session": id})
	}
	switch req.Method {
	case http.MethodPatch:
		return r.patchUpload(w, req, name, id)
	case http.MethodPut:
		return r.putUpload(w, req, name, id)
	case http.MethodGet, http.MethodHead:
		return r.uploadStatus(w, req, name, id)
	case http.MethodDelete:
		return r.cancelUpload(w, req, name, id)
	}
	return unsupported(req.Method)
}

// checkStarted answers BLOB_UPLOAD_UNKNOWN for a session that was never
// opened, or was finished or cancelled.
func (r *Registry) checkStarted(ctx context.Context, name, id string) error {
	ok, err := r.exists(ctx, uploadStartedPath(name, id))
	if err != nil {
		return err
	}
	if !ok {
		return NewError(CodeBlobUploadUnknown, map[string]string{"session": id})
	}
	return nil
}

// openUpload opens the session's driver upload for appending: the one
// earlier requests (on any replica) wrote, or a new one when none has
// written yet.
func (r *Registry) openUpload(ctx context.Context, name, id string) (storage.Writer, error) {
	if err := r.checkStarted(ctx, name, id); err != nil {
		return nil, err
	}
	p := uploadDataPath(name, id)
	fw, err := r.d.Writer(ctx, p, true)
	if errors.Is(err, errdefs.ErrNotFound) {
		fw, err = r.d.Writer(ctx, p, false)
	}
	if err != nil {
		return nil, fmt.Errorf("open upload %s: %w", id, err)
	}
	return fw, nil
}

// uploadSize is how many bytes the session holds.
func (r *Registry) uploadSize(ctx context.Context, name, id string) (int64, error) {
	if err := r.checkStarted(ctx, name, id); err != nil {
		return 0, err
	}
	// Where the data is an object as it grows (the filesystem), its size
	// is known without holding the upload, which a running chunk does.
	if fi, err := r.d.Stat(ctx, uploadDataPath(name, id)); err == nil && !fi.IsDir {
		return fi.Size, nil
	}
	fw, err := r.d.Writer(ctx, uploadDataPath(name, id), true)
	if errors.Is(err, errdefs.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open upload %s: %w", id, err)
	}
	size := fw.Size()
	if err := fw.Close(); err != nil {
		return 0, fmt.Errorf("close upload %s: %w", id, err)
	}
	return size, nil
}

// parseContentRange reads "start-end" (the spec's form; "bytes start-end"
// and "bytes=start-end" are also taken).
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "bytes"), " ")
	s = strings.TrimPrefix(s, "=")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// rangeNotSatisfiable is the 416 the spec asks for an out-of-order or
// malformed chunk, telling the client where the session stands.
type rangeNotSatisfiable struct {
	name, id string
	size     int64
}

func (e *rangeNotSatisfiable) Error() string {
	return fmt.Sprintf("chunk out of order: upload %s holds %d bytes", e.id, e.size)
}

// bodyError marks a failure reading the client's body, not the storage.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &bodyError{err}
	}
	return n, err
}

// appendChunk appends the request body to fw. With a Content-Range the
// chunk must start where the session ends and be as long as the range
// says; without one the whole body is appended.
func appendChunk(fw storage.Writer, req *http.Request, name, id string) error {
	body := bodyReader{req.Body}
	cr := req.Header.Get("Content-Range")
	if cr == "" {
		if _, err := copyChunk(fw, body); err != nil {
			return chunkError(err)
		}
		return nil
	}
	start, end, ok := parseContentRange(cr)
	if !ok || start != fw.Size() {
		return &rangeNotSatisfiable{name: name, id: id, size: fw.Size()}
	}
	length := end - start + 1
	if req.ContentLength >= 0 && req.ContentLength != length {
		return &Error{Code: CodeSizeInvalid, Message: fmt.Sprintf(
			"Content-Range %s is %d bytes, Content-Length is %d", cr, length, req.ContentLength)}
	}
	n, err := copyChunk(fw, io.LimitReader(body, length))
	if err != nil {
		return chunkError(err)
	}
	if n != length {
		return &Error{Code: CodeSizeInvalid, Message: fmt.Sprintf(
			"Content-Range %s is %d bytes, body was %d", cr, length, n)}
	}
	return nil
}

// chunkBuffers hold the buffers chunks are copied through: large
// enough that a big blob takes few system calls to store.
var chunkBuffers = sync.Pool{New: func() any { return new([chunkBufferSize]byte) }}

const chunkBufferSize = 256 << 10

// copyChunk copies a chunk's body into the upload.
func copyChunk(fw storage.Writer, r io.Reader) (int64, error) {
	buf := chunkBuffers.Get().(*[chunkBufferSize]byte)
	defer chunkBuffers.Put(buf)
	return io.CopyBuffer(fw, r, buf[:])
}

// chunkError tells a broken request body (the client's fault, 400) from a
// failing driver (500). Bytes appended before the failure stay: the
// client asks where the session stands and resumes from there.
func chunkError(err error) error {
	var be *bodyError
	if errors.As(err, &be) {
		return &Error{Code: CodeBlobUploadInvalid, Message: be.Error()}
	}
	return fmt.Errorf("append to upload: %w", err)
}

func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, name, id string) error {
	ctx := req.Context()
	fw, err := r.openUpload(ctx, name, id)
	if err != nil {
		return err
	}
	h, err := r.resumeHash(ctx, fw, name, id)
	if err == nil {
		err = appendChunk(withHash(fw, h), req, name, id)
		// An out-of-order chunk appended nothing: the state holds.
		var rns *rangeNotSatisfiable
		if err == nil || errors.As(err, &rns) {
			r.keepHash(req, name, id, h, fw.Size())
		}
	}
	size := fw.Size()
	if cerr := fw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close upload %s: %w", id, cerr)
	}
	if err != nil {
		return err
	}
	uploadAccepted(w, http.StatusAccepted, name, id, size)
	return nil
}

func (r *Registry) putUpload(w http.ResponseWriter, req *http.Request, name, id string) error {
	ctx := req.Context()
	digests, err := parseDigests(req.URL.Query()["digest"])
	if err != nil {
		return err
	}
	if err := r.finishUpload(ctx, name, id, digests, req); err != nil {
		return err
	}
	blobCreated(w, name, digests[0])
	return nil
}

// finishUpload appends the request's body (the last chunk, if any),
// commits the session, checks it against every digest given, and makes
// it the blob digests[0] of the repository. On a digest mismatch the
// session is removed and nothing is stored.
func (r *Registry) finishUpload(ctx context.Context, name, id string, digests []digest.Digest, req *http.Request) error {
	fw, err := r.openUpload(ctx, name, id)
	if err != nil {
		return err
	}
	h, err := r.resumeHash(ctx, fw, name, id)
	if err != nil {
		return errors.Join(err, fw.Close())
	}
	if err := appendChunk(withHash(fw, h), req, name, id); err != nil {
		var rns *rangeNotSatisfiable
		if errors.As(err, &rns) {
			// The session stays as it was; its state, removed above,
			// is saved again.
			r.keepHash(req, name, id, h, fw.Size())
			if cerr := fw.Close(); cerr != nil {
				return fmt.Errorf("close upload %s: %w", id, cerr)
			}
			return err
		}
		// A broken last chunk leaves a blob that cannot verify: drop it.
		_ = fw.Cancel(ctx)
		_ = r.remove(ctx, uploadDir(name, id))
		return err
	}
	if ex, ok := fw.(storage.ExclusiveWriter); ok {
		return r.finishHeld(ctx, ex, h, name, id, digests)
	}
	if err := fw.Commit(ctx); err != nil {
		return fmt.Errorf("commit upload %s: %w", id, err)
	}
	data := uploadDataPath(name, id)
	if err := r.verifyObject(ctx, data, digests); err != nil {
		if rerr := r.remove(ctx, uploadDir(name, id)); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	d := digests[0]
	present, err := r.exists(ctx, blobDataPath(d))
	if err != nil {
		return err
	}
	if !present {
		if err := r.d.Move(ctx, data, blobDataPath(d)); err != nil {
			return fmt.Errorf("store blob %s: %w", d, err)
		}
	}
	if err := r.linkBlob(ctx, name, d); err != nil {
		return err
	}
	return r.remove(ctx, uploadDir(name, id))
}

// finishHeld ends a session whose upload ex holds alone: it checks the
// digest and stores the blob before it lets go, so no request appends to
// the session between the check and the blob's new name.
func (r *Registry) finishHeld(ctx context.Context, ex storage.ExclusiveWriter, h hash.Hash, name, id string, digests []digest.Digest) error {
	if err := r.verifyHashed(ctx, h, name, id, digests); err != nil {
		return errors.Join(err, ex.Cancel(ctx), r.remove(ctx, uploadDir(name, id)))
	}
	d := digests[0]
	present, err := r.exists(ctx, blobDataPath(d))
	if err != nil {
		return errors.Join(err, ex.Close())
	}
	if present {
		err = ex.Cancel(ctx)
	} else {
		err = ex.CommitTo(ctx, blobDataPath(d))
	}
	if err != nil {
		return fmt.Errorf("store blob %s: %w", d, err)
	}
	if err := r.linkBlob(ctx, name, d); err != nil {
		return err
	}
	return r.remove(ctx, uploadDir(name, id))
}

// verifyObject hashes the object at p once with every algorithm digests
// use and compares. A mismatch is DIGEST_INVALID.
func (r *Registry) verifyObject(ctx context.Context, p string, digests []digest.Digest) error {
	rc, err := r.d.Reader(ctx, p, 0)
	if err != nil {
		return fmt.Errorf("read upload back: %w", err)
	}
	defer rc.Close()
	verifiers := make([]digest.Verifier, len(digests))
	writers := make([]io.Writer, len(digests))
	for i, d := range digests {
		verifiers[i] = d.Verifier()
		writers[i] = verifiers[i]
	}
	if _, err := io.Copy(io.MultiWriter(writers...), rc); err != nil {
		return fmt.Errorf("read upload back: %w", err)
	}
	for i, v := range verifiers {
		if !v.Verified() {
			return digestMismatch(digests[i])
		}
	}
	return nil
}

// digestMismatch is the DIGEST_INVALID of content that is not d.
func digestMismatch(d digest.Digest) error {
	return &Error{Code: CodeDigestInvalid, Message: "provided digest did not match uploaded content",
		Detail: map[string]string{"digest": d.String()}}
}

func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, name, id string) error {
	size, err := r.uploadSize(req.Context(), name, id)
	if err != nil {
		return err
	}
	uploadAccepted(w, http.StatusNoContent, name, id, size)
	return nil
}

func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, name, id string) error {
	ctx := req.Context()
	if err := r.checkStarted(ctx, name, id); err != nil {
		return err
	}
	if err := r.CancelUpload(ctx, name, id); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// uploadAccepted writes the headers every session response carries.
func uploadAccepted(w http.ResponseWriter, status int, name, id string, size int64) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, id))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Blob-Upload-Session-ID", id)
	// The end is inclusive; an empty session is "0-0", as registries
	// have always written it.
	h.Set("Range", "0-"+strconv.FormatInt(max(size-1, 0), 10))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// blobCreated answers a finished upload or a mount.
func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
