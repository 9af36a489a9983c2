package remote

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/image/reference"
)

// fakeRegistry is a small in-memory distribution server for protocol
// tests: blobs, manifests, upload sessions (monolithic, chunked, mount),
// and a hook that may answer a request first.
type fakeRegistry struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	blobs     map[string][]byte // "repo@digest"
	manifests map[string]fakeManifest
	uploads   map[string]*fakeUpload
	nextID    int
	log       []string // "METHOD path" of every request
	ranges    []string // Content-Range of every PATCH
	// hook answers a request itself when it returns true.
	hook func(w http.ResponseWriter, r *http.Request) bool
}

type fakeManifest struct {
	mediaType string
	data      []byte
}

type fakeUpload struct {
	repo  string
	data  []byte
	state int // bumped by each PATCH; the location carries it
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	f := &fakeRegistry{t: t, blobs: map[string][]byte{}, manifests: map[string]fakeManifest{}, uploads: map[string]*fakeUpload{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeRegistry) ref(path, tag string) reference.Reference {
	return reference.Reference{Domain: f.host(), Path: path, Tag: tag}
}

func (f *fakeRegistry) requests(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, l := range f.log {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeRegistry) putManifest(repo, tag, mt string, data []byte) digest.Digest {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := digest.FromBytes(data)
	f.manifests[repo+":"+tag] = fakeManifest{mt, data}
	f.manifests[repo+":"+d.String()] = fakeManifest{mt, data}
	return d
}

func (f *fakeRegistry) putBlob(repo string, data []byte) digest.Digest {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := digest.FromBytes(data)
	f.blobs[repo+"@"+d.String()] = data
	return d
}

func (f *fakeRegistry) blob(repo string, d digest.Digest) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blobs[repo+"@"+d.String()]
	return b, ok
}

// split cuts "/v2/<repo>/<kind>/<rest>" at the last /blobs/, /manifests/
// or /tags/.
func split(path string) (repo, kind, rest string, ok bool) {
	p, found := strings.CutPrefix(path, "/v2/")
	if !found {
		return "", "", "", false
	}
	for _, k := range []string{"/blobs/uploads/", "/blobs/", "/manifests/", "/tags/"} {
		if i := strings.LastIndex(p, k); i >= 0 {
			return p[:i], strings.Trim(k, "/"), p[i+len(k):], true
		}
	}
	return "", "", "", false
}

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.log = append(f.log, r.Method+" "+r.URL.Path)
	hook := f.hook
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	if r.URL.Path == "/v2/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	repo, kind, rest, ok := split(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch kind {
	case "manifests":
		f.serveManifest(w, r, repo, rest)
	case "blobs":
		f.serveBlob(w, r, repo, digest.Digest(rest))
	case "blobs/uploads":
		f.serveUpload(w, r, repo, rest)
	case "tags":
		f.serveTags(w, repo)
	}
}

func writeErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, strings.ToLower(strings.ReplaceAll(code, "_", " ")))
}

func (f *fakeRegistry) serveManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		m, ok := f.manifests[repo+":"+ref]
		if !ok {
			writeErr(w, http.StatusNotFound, "MANIFEST_UNKNOWN")
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(m.data).String())
		w.Header().Set("Content-Length", strconv.Itoa(len(m.data)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(m.data)
		}
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		d := digest.FromBytes(b)
		m := fakeManifest{r.Header.Get("Content-Type"), b}
		f.manifests[repo+":"+ref] = m
		f.manifests[repo+":"+d.String()] = m
		w.Header().Set("Docker-Content-Digest", d.String())
		w.WriteHeader(http.StatusCreated)
	}
}

func (f *fakeRegistry) serveBlob(w http.ResponseWriter, r *http.Request, repo string, d digest.Digest) {
	b, ok := f.blob(repo, d)
	if !ok {
		writeErr(w, http.StatusNotFound, "BLOB_UNKNOWN")
		return
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	// ServeContent honours Range requests.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (f *fakeRegistry) serveUpload(w http.ResponseWriter, r *http.Request, repo, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	switch r.Method {
	case http.MethodPost:
		if from, d := q.Get("from"), q.Get("mount"); d != "" {
			if b, ok := f.blobs[from+"@"+d]; ok {
				f.blobs[repo+"@"+d] = b
				w.Header().Set("Docker-Content-Digest", d)
				w.WriteHeader(http.StatusCreated)
				return
			}
		}
		f.nextID++
		id := strconv.Itoa(f.nextID)
		f.uploads[id] = &fakeUpload{repo: repo}
		w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id+"?_state=0")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	u, ok := f.uploads[id]
	if !ok {
		writeErr(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		return
	}
	if q.Get("_state") != strconv.Itoa(u.state) {
		// The client must follow the latest Location.
		writeErr(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		return
	}
	switch r.Method {
	case http.MethodPatch:
		cr := r.Header.Get("Content-Range")
		f.ranges = append(f.ranges, cr)
		if r.Header.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(cr, strconv.Itoa(len(u.data))+"-") {
			writeErr(w, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
			return
		}
		b, _ := io.ReadAll(r.Body)
		if int64(len(b)) != r.ContentLength {
			writeErr(w, http.StatusBadRequest, "SIZE_INVALID")
			return
		}
		u.data = append(u.data, b...)
		u.state++
		w.Header().Set("Location", fmt.Sprintf("%s/v2/%s/blobs/uploads/%s?_state=%d", f.srv.URL, repo, id, u.state))
		w.Header().Set("Range", fmt.Sprintf("0-%d", len(u.data)-1))
		w.WriteHeader(http.StatusAccepted)
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		u.data = append(u.data, b...)
		d := digest.Digest(q.Get("digest"))
		if digest.FromBytes(u.data) != d {
			writeErr(w, http.StatusBadRequest, "DIGEST_INVALID")
			return
		}
		f.blobs[repo+"@"+d.String()] = u.data
		delete(f.uploads, id)
		w.Header().Set("Docker-Content-Digest", d.String())
		w.WriteHeader(http.StatusCreated)
	case http.MethodDelete:
		delete(f.uploads, id)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeRegistry) serveTags(w http.ResponseWriter, repo string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var tags []string
	for k := range f.manifests {
		if r, t, _ := strings.Cut(k, ":"); r == repo && !strings.HasPrefix(t, "sha256") {
			tags = append(tags, strconv.Quote(t))
		}
	}
	fmt.Fprintf(w, `{"name":%q,"tags":[%s]}`, repo, strings.Join(tags, ","))
}

// testClient is a client with an empty auth file of its own, no docker
// config, and quick retries.
func testClient(t *testing.T, opts Options) *Client {
	t.Helper()
	if opts.AuthFile == "" {
		opts.AuthFile = filepath.Join(t.TempDir(), "auth.json")
	}
	opts.NoDockerConfig = true
	if opts.Retry == (RetryPolicy{}) {
		opts.Retry = RetryPolicy{MaxAttempts: 4, InitialDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, MaxElapsed: 5 * time.Second}
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// patterned makes n bytes that differ from position to position, so a
// misplaced chunk changes the digest.
func patterned(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ byte(i>>8) ^ seed
	}
	return b
}

// streamOnly hides io.ReaderAt, so the upload must stream in order.
type streamOnly struct{ r io.Reader }

func (s streamOnly) Read(p []byte) (int, error) { return s.r.Read(p) }

func testRef(host, path string) reference.Reference {
	return reference.Reference{Domain: host, Path: path}
}
