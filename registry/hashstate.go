package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// A session's digest is computed as its bytes arrive, so that the closing
// PUT hashes only what it brings instead of reading the whole blob back.
// The running sha256 state is kept beside the data (uploadHashPath), with
// the offset it covers, so any replica continues it.
//
// The state is trusted only where the driver's writer holds the upload
// alone (storage.ExclusiveWriter): each request removes the state before
// it appends a byte and writes the new one after its last, all while it
// holds the upload. A state whose offset is the upload's size therefore
// covers exactly the upload's bytes; a request that failed half-way, or a
// crash, leaves no state, and the session is read back at the end as
// before. sha512 sessions, and drivers without exclusive writers, are
// always read back.

// hashStateLimit bounds the state object read back: a header and a
// marshalled sha256 state of about a hundred bytes.
const hashStateLimit = 1 << 10

// resumeHash returns the running hash of the upload fw holds, or nil when
// there is none to continue. It removes the stored state either way: from
// here on only this request may write one.
func (r *Registry) resumeHash(ctx context.Context, fw storage.Writer, name, id string) (hash.Hash, error) {
	if _, ok := fw.(storage.ExclusiveWriter); !ok {
		return nil, nil
	}
	p := uploadHashPath(name, id)
	var h hash.Hash
	if fw.Size() == 0 {
		h = sha256.New()
	} else {
		b, err := r.readSmall(ctx, p, hashStateLimit)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return nil, err
		}
		h = parseHashState(b, fw.Size())
	}
	if err := r.remove(ctx, p); err != nil {
		return nil, err
	}
	return h, nil
}

// parseHashState reads "sha256 OFFSET\n" and the marshalled state, and
// returns the hash when OFFSET is size; nil otherwise.
func parseHashState(b []byte, size int64) hash.Hash {
	head, state, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return nil
	}
	alg, off, ok := bytes.Cut(head, []byte(" "))
	if !ok || string(alg) != digest.SHA256.String() {
		return nil
	}
	if n, err := strconv.ParseInt(string(off), 10, 64); err != nil || n != size {
		return nil
	}
	h := sha256.New()
	u, ok := h.(encoding.BinaryUnmarshaler)
	if !ok || u.UnmarshalBinary(state) != nil {
		return nil
	}
	return h
}

// saveHash stores h as the state of the session's first size bytes. It
// must run while the request still holds the upload.
func (r *Registry) saveHash(ctx context.Context, name, id string, h hash.Hash, size int64) error {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil
	}
	state, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("save upload %s hash state: %w", id, err)
	}
	b := append([]byte(digest.SHA256.String()+" "+strconv.FormatInt(size, 10)+"\n"), state...)
	return r.putSmall(ctx, uploadHashPath(name, id), b)
}

// keepHash saves h after a chunk was appended. A state that cannot be
// saved only costs the read-back at the end: it is reported, not failed.
func (r *Registry) keepHash(req *http.Request, name, id string, h hash.Hash, size int64) {
	if h == nil {
		return
	}
	if err := r.saveHash(req.Context(), name, id, h, size); err != nil && r.opts.OnError != nil {
		r.opts.OnError(req, err)
	}
}

// hashingWriter hashes exactly the bytes its upload accepted.
type hashingWriter struct {
	storage.Writer
	h hash.Hash
}

func (w hashingWriter) Write(b []byte) (int, error) {
	n, err := w.Writer.Write(b)
	w.h.Write(b[:n])
	return n, err
}

// withHash wraps fw so that h follows what is appended; fw as it is when
// h is nil.
func withHash(fw storage.Writer, h hash.Hash) storage.Writer {
	if h == nil {
		return fw
	}
	return hashingWriter{Writer: fw, h: h}
}

// verifyHashed checks the session's content against digests with the
// running hash h when every digest is sha256, and by reading the upload
// back otherwise.
func (r *Registry) verifyHashed(ctx context.Context, h hash.Hash, name, id string, digests []digest.Digest) error {
	if h == nil {
		return r.verifyObject(ctx, uploadDataPath(name, id), digests)
	}
	for _, d := range digests {
		if d.Algorithm() != digest.SHA256 {
			return r.verifyObject(ctx, uploadDataPath(name, id), digests)
		}
	}
	got := digest.NewDigest(digest.SHA256, h)
	for _, d := range digests {
		if d != got {
			return digestMismatch(d)
		}
	}
	return nil
}
