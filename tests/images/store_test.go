package images_test

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil/registrytest"
)

// A pull killed with SIGKILL half-way leaves a store the next pull
// completes, with nothing half-written used or left behind.
func TestPullKilledMidway(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	src := newStore(t)
	src.importImage("big:1", map[string][]byte{"big": randomBytes(t, 96<<20)})
	name := reg.Host + "/big/image:1"
	src.must("push", "big:1", name)
	want := src.id("big:1")

	ingest := filepath.Join(s.root, "images", "content", "ingest")
	killed := false
	for attempt := 0; attempt < 3 && !killed; attempt++ {
		cmd := exec.Command(s.bin, "--root", s.root, "pull", name)
		cmd.Env = s.env
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Kill once some bytes of the big layer are in the ingest area.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && !killed {
			if dirBytes(ingest) > 1<<20 {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
				break
			}
			select {
			case err := <-done:
				_ = err
				deadline = time.Time{} // finished before we could kill it
			case <-time.After(5 * time.Millisecond):
			}
		}
		if killed {
			werr := <-done
			t.Logf("killed pull: %v", werr)
		} else {
			s.must("rmi", name)
		}
	}
	require.True(t, killed, "the pull always finished before it could be killed")
	require.Empty(t, strings.TrimSpace(s.must("images", "-q")), "a killed pull must not leave an image")

	s.must("pull", name)
	require.Equal(t, want, s.id(name))
	entries, err := os.ReadDir(ingest)
	require.NoError(t, err)
	require.Empty(t, entries, "the next pull cleans up the partial write")
}

func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Two processes pulling one image at once both succeed and fetch each
// blob from the registry once.
func TestConcurrentPullsFetchOnce(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	src := newStore(t)
	src.importImage("img:1", map[string][]byte{"blob": randomBytes(t, 32<<20)})
	src.must("push", "img:1", reg.Host+"/shared/img:1")
	proxy := newCountingProxy(t, reg.URL)
	name := proxy.host + "/shared/img:1"

	var wg sync.WaitGroup
	errs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, s.bin, "--root", s.root, "pull", name)
			cmd.Env = s.env
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = err.Error() + ": " + string(out)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, []string{"", ""}, errs)
	require.Equal(t, src.id("img:1"), s.id(name))
	for _, blob := range blobDigests(t, src, "img:1") {
		require.Equal(t, 1, proxy.count("GET", "/blobs/"+blob), "blob %s must be fetched exactly once", blob)
	}
}

// blobDigests lists the layer blob digests of an image from its saved
// manifest, through inspect of the store.
func blobDigests(t *testing.T, s *store, name string) []string {
	t.Helper()
	dir := filepath.Join(s.root, "images", "content", "blobs", "sha256")
	var out []string
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Size() > 1<<20 {
			out = append(out, "sha256:"+e.Name())
		}
	}
	require.NotEmpty(t, out, "image %s has no large layer blob", name)
	return out
}

// countingProxy forwards to a registry and counts requests by method and
// path suffix.
type countingProxy struct {
	host string
	mu   sync.Mutex
	seen []string
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *countingProxy) count(method, suffix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.seen {
		if strings.HasPrefix(s, method+" ") && strings.HasSuffix(s, suffix) {
			n++
		}
	}
	return n
}

// prune removes dangling images first, everything unused with -a, and
// system df agrees with what is on disk at each step.
func TestPruneAndDiskUsage(t *testing.T) {
	s := newStore(t)
	s.importImage("keep:1", map[string][]byte{"k": randomBytes(t, 1<<20)})
	s.importImage("gone:1", map[string][]byte{"g": randomBytes(t, 1<<20)})
	s.must("rmi", "gone:1")
	s.importImage("", map[string][]byte{"d": randomBytes(t, 1<<20)}) // dangling
	require.Contains(t, s.must("images"), "<none>")

	checkDF(t, s)
	out := s.must("image", "prune")
	require.Contains(t, out, "deleted: sha256:")
	require.NotContains(t, s.must("images"), "<none>")
	require.Contains(t, s.must("images"), "keep")
	checkDF(t, s)

	s.must("image", "prune", "-a")
	require.Empty(t, strings.TrimSpace(s.must("images", "-q")))
	checkDF(t, s)
	blobs, err := os.ReadDir(filepath.Join(s.root, "images", "content", "blobs", "sha256"))
	require.NoError(t, err)
	require.Empty(t, blobs, "prune -a leaves no blob")
}

// checkDF compares system df's byte counts with a walk of the store.
func checkDF(t *testing.T, s *store) {
	t.Helper()
	out := s.must("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	imgs := len(strings.Fields(s.must("images", "-q", "--no-trunc")))
	require.Contains(t, out, "Images "+strconv.Itoa(imgs))
	v := s.must("system", "df", "-v")
	blobs := dirBytes(filepath.Join(s.root, "images", "content", "blobs"))
	require.Contains(t, v, "Blobs: "+humanBytes(blobs))
}

// humanBytes matches berth's decimal sizes ("1.05MB").
func humanBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return strconv.FormatFloat(f, 'g', 3, 64) + units[i]
}
