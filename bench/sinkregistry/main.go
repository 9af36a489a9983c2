// Command sinkregistry is a registry that stores nothing: it answers the
// push API (POST, PATCH and PUT of blob uploads, PUT of manifests), checks
// each blob's sha256 as the bytes arrive, and throws them away. A push to
// it costs the client everything a push costs it, and the server only
// reading and hashing: no registry that checks digests stores a push in
// less time. bench/registry.sh times skopeo pushing to it as the floor of
// the push measurements.
//
//	sinkregistry 127.0.0.1:PORT
package main

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
)

// sink keeps, per upload session, the running hash of what it received.
type sink struct {
	mu       sync.Mutex
	next     int
	sessions map[string]session
}

// session is an upload received so far.
type session struct {
	state []byte // marshalled sha256
	size  int64
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sinkregistry ADDRESS")
		os.Exit(2)
	}
	s := &sink{sessions: map[string]session{}}
	if err := http.ListenAndServe(os.Args[1], s); err != nil {
		fmt.Fprintln(os.Stderr, "sinkregistry:", err)
		os.Exit(1)
	}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/v2/" || p == "/v2":
		w.WriteHeader(http.StatusOK)
	case strings.HasSuffix(p, "/blobs/uploads/") && r.Method == http.MethodPost:
		s.mu.Lock()
		s.next++
		id := fmt.Sprint(s.next)
		s.mu.Unlock()
		s.receive(w, r, p+id, http.StatusAccepted)
	case strings.Contains(p, "/blobs/uploads/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		s.receive(w, r, p, http.StatusAccepted)
	case strings.Contains(p, "/blobs/"):
		// Nothing is ever stored: every blob is missing.
		w.WriteHeader(http.StatusNotFound)
	case strings.Contains(p, "/manifests/") && r.Method == http.MethodPut:
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// receive hashes the request's body into the session at loc; a PUT (or
// a POST with ?digest=) then checks the digest and ends the session.
func (s *sink) receive(w http.ResponseWriter, r *http.Request, loc string, status int) {
	h := sha256.New()
	s.mu.Lock()
	sess, ok := s.sessions[loc]
	s.mu.Unlock()
	if ok {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(sess.state); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	n, err := io.CopyBuffer(h, r.Body, make([]byte, 256<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sess.size += n
	want := r.URL.Query().Get("digest")
	if want == "" {
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.mu.Lock()
		s.sessions[loc] = session{state: state, size: sess.size}
		s.mu.Unlock()
		w.Header().Set("Location", loc)
		w.Header().Set("Range", fmt.Sprintf("0-%d", max(sess.size-1, 0)))
		w.WriteHeader(status)
		return
	}
	s.mu.Lock()
	delete(s.sessions, loc)
	s.mu.Unlock()
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want {
		http.Error(w, "digest mismatch: got "+got, http.StatusBadRequest)
		return
	}
	w.Header().Set("Docker-Content-Digest", want)
	w.WriteHeader(http.StatusCreated)
}
