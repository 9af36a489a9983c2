// Package registry_test drives `berth registry serve` and `berth registry
// gc` through the built binary, with the clients people push and pull
// with: berth itself, skopeo and docker. Every test starts its own
// registry on 127.0.0.1 with a root of its own and stops it at its end.
package registry_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-containers/berth/internal/testutil"
)

// Bounds of the waits on a registry process.
const (
	startTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	httpTimeout  = 10 * time.Second
)

// Test user of the registries behind authentication.
const (
	testUser     = "alice"
	testPassword = "alice-secret-1"
)

// server is one running `berth registry serve`.
type server struct {
	t      *testing.T
	host   string // 127.0.0.1:PORT
	root   string
	scheme string       // http or https
	client *http.Client // speaks to it: trusts its certificate over HTTPS
	cmd    *exec.Cmd
	logs   *testutil.SyncBuffer
	done   chan struct{} // closed when the process has exited
}

// launch is how startWith runs a registry.
type launch struct {
	root string      // --root; empty: none, the storage is --config's
	tls  *tls.Config // the client's, for a registry serving HTTPS; nil: plain HTTP
	args []string    // more flags of serve
}

// startServer runs `berth registry serve --root root extra...` on a free
// port of 127.0.0.1 and waits until GET /v2/ answers (with any status:
// behind authentication it is a 401). A port taken between choosing and
// binding it is retried on another, at most three times.
func startServer(t *testing.T, root string, extra ...string) *server {
	t.Helper()
	return startWith(t, launch{root: root, args: extra})
}

// startWith is startServer with the settings of l.
func startWith(t *testing.T, l launch) *server {
	t.Helper()
	var last string
	for range 3 {
		s, err := tryStart(t, l)
		if err == nil {
			return s
		}
		last = err.Error()
	}
	t.Fatalf("registry did not start: %s", last)
	return nil
}

func tryStart(t *testing.T, l launch) (*server, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	s := &server{t: t, host: fmt.Sprintf("127.0.0.1:%d", port), root: l.root, scheme: "http",
		client: &http.Client{Timeout: httpTimeout}, logs: &testutil.SyncBuffer{}, done: make(chan struct{})}
	if l.tls != nil {
		s.scheme = "https"
		tr := &http.Transport{TLSClientConfig: l.tls}
		s.client.Transport = tr
		t.Cleanup(tr.CloseIdleConnections)
	}
	args := []string{"registry", "serve", "--listen", s.host}
	if l.root != "" {
		args = append(args, "--root", l.root)
	}
	args = append(args, l.args...)
	s.cmd = exec.Command(testutil.BerthBinary(t), args...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("exited at start: %s", s.logs.String())
		default:
		}
		probe := *s.client
		probe.Timeout = time.Second
		resp, err := probe.Get(s.url("/v2/"))
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("GET /v2/ got no answer within %s; logs: %s", startTimeout, s.logs.String())
}

// stop ends the server with SIGTERM, then SIGKILL after stopTimeout.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("registry on %s did not stop within %s of SIGTERM", s.host, stopTimeout)
	}
}

func (s *server) url(path string) string { return s.scheme + "://" + s.host + path }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// request sends one request to the registry and returns the status and
// the body.
func (s *server) request(method, path string, header map[string]string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url(path), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// blobPath is where the filesystem storage keeps a blob's content.
func blobPath(root, hexDigest string) string {
	return filepath.Join(root, "blobs", "sha256", hexDigest[:2], hexDigest, "data")
}

// run runs a command that has to succeed and returns its stdout.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, errOut, code := testutil.RunCommand(t, env, nil, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d: %s", name, strings.Join(args, " "), code, errOut)
	}
	return out
}

// requireTool skips the test, saying why, when a client is not installed.
func requireTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testutil.Missing(t, "%s not installed (apt-get install %s)", name, pkg)
	}
}

// store is a private berth image store driven through the binary, with a
// HOME of its own so that logins stay in the test.
type store struct {
	t    *testing.T
	root string
	env  []string
}

func newStore(t *testing.T) *store {
	t.Helper()
	testutil.RequiresRoot(t)
	s := &store{t: t, root: t.TempDir(), env: append(os.Environ(), "HOME="+t.TempDir())}
	// A store that ran a container may have made host networking (its
	// bridge, a firewall table) even for --network none: reset removes
	// whatever it has before its directory goes.
	t.Cleanup(func() {
		if _, errOut, code := s.run(nil, "", "system", "reset", "--force"); code != 0 {
			t.Errorf("cleanup: system reset: %s", errOut)
		}
	})
	return s
}

// run runs `berth --root ROOT [--insecure-registry HOST] args...`.
func (s *store) run(stdin []byte, host string, args ...string) (string, string, int) {
	s.t.Helper()
	full := []string{"--root", s.root}
	if host != "" {
		full = append(full, "--insecure-registry", host)
	}
	full = append(full, args...)
	return testutil.RunCommand(s.t, s.env, stdin, testutil.BerthBinary(s.t), full...)
}

// must runs a berth command that has to succeed and returns its stdout.
func (s *store) must(host string, args ...string) string {
	s.t.Helper()
	out, errOut, code := s.run(nil, host, args...)
	if code != 0 {
		s.t.Fatalf("berth %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// inspect reads one field of an image.
func (s *store) inspect(ref, tmpl string) string {
	s.t.Helper()
	return strings.TrimSpace(s.must("", "image", "inspect", "--format", tmpl, ref))
}

// importBusybox imports a busybox root filesystem as name.
func (s *store) importBusybox(name string) {
	s.t.Helper()
	if _, errOut, code := s.run(busyboxTar(s.t), "", "import", "--change", `CMD ["/bin/sh"]`, "-", name); code != 0 {
		s.t.Fatalf("import: %s", errOut)
	}
}

// busyboxTar is a busybox root filesystem as a tar.
func busyboxTar(t *testing.T) []byte {
	t.Helper()
	dir := testutil.BusyboxRootfs(t, t.TempDir())
	data, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-cf", "-", ".").Output()
	if err != nil {
		t.Fatalf("tar rootfs: %v", err)
	}
	return data
}

// image is an OCI image written as an OCI layout by writeLayout.
type image struct {
	layout   string   // the layout's directory
	manifest string   // digest of the manifest, sha256:...
	blobs    []string // hex digests of the config and the layers
}

// writeLayout writes an OCI layout in a fresh directory holding one image
// tagged "latest": one layer of random bytes per size given,
// so that every image made is distinct and its blobs are its own (and
// its config, which names the layers).
func writeLayout(t *testing.T, sizes ...int) image {
	t.Helper()
	layers := make([][]byte, len(sizes))
	for i, n := range sizes {
		layers[i] = randomLayer(t, fmt.Sprintf("layer-%d", i), n)
	}
	return writeLayoutOf(t, layers...)
}

// writeLayoutOf writes an OCI layout in a fresh directory holding one
// image tagged "latest" made of the given layers (tars), gzip-compressed.
func writeLayoutOf(t *testing.T, layerData ...[]byte) image {
	t.Helper()
	dir := t.TempDir()
	img := image{layout: dir}
	put := func(data []byte) (string, string) {
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		p := filepath.Join(dir, "blobs", "sha256", h)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return "sha256:" + h, h
	}
	type desc struct {
		MediaType string            `json:"mediaType"`
		Digest    string            `json:"digest"`
		Size      int               `json:"size"`
		Ann       map[string]string `json:"annotations,omitempty"`
	}
	var layers []desc
	var diffIDs []string
	for _, layer := range layerData {
		// Compressed, as registries hold layers: skopeo would otherwise
		// compress them on the way and push other digests.
		gz := gzipped(t, layer)
		d, h := put(gz)
		img.blobs = append(img.blobs, h)
		layers = append(layers, desc{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d, Size: len(gz)})
		sum := sha256.Sum256(layer)
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(sum[:]))
	}
	config := mustJSON(t, map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	cd, ch := put(config)
	img.blobs = append([]string{ch}, img.blobs...)
	manifest := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cd, Size: len(config)},
		"layers":        layers,
	})
	md, _ := put(manifest)
	img.manifest = md
	index := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"manifests": []desc{{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: md, Size: len(manifest),
			Ann: map[string]string{"org.opencontainers.image.ref.name": "latest"}}},
	})
	for name, data := range map[string][]byte{"index.json": index, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// gzipped compresses data (fast: random data does not shrink anyway).
func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// randomLayer is a tar holding one file of n random bytes.
func randomLayer(t *testing.T, name string, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(n), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// skopeoPush copies an OCI layout's image to ref on a registry over plain
// HTTP and returns the digest of the manifest pushed; creds ("user:pw")
// may be empty. It fails the test when the push fails.
func skopeoPush(t *testing.T, img image, ref, creds string) string {
	t.Helper()
	digest, errOut, code := trySkopeoPush(t, img, ref, creds)
	if code != 0 {
		t.Fatalf("skopeo push to %s: exit %d: %s", ref, code, errOut)
	}
	return digest
}

// trySkopeoPush is skopeoPush that returns stderr and the exit code
// instead of failing.
func trySkopeoPush(t *testing.T, img image, ref, creds string) (string, string, int) {
	t.Helper()
	flags := []string{"--dest-tls-verify=false"}
	if creds != "" {
		flags = append(flags, "--dest-creds", creds)
	}
	return trySkopeoPushWith(t, img, ref, flags...)
}

// trySkopeoPushWith is trySkopeoPush with skopeo copy's destination flags
// given (TLS, credentials).
func trySkopeoPushWith(t *testing.T, img image, ref string, flags ...string) (string, string, int) {
	t.Helper()
	df := filepath.Join(t.TempDir(), "digest")
	args := append([]string{"copy", "--retry-times", "0", "--digestfile", df}, flags...)
	args = append(args, "oci:"+img.layout+":latest", "docker://"+ref)
	_, errOut, code := testutil.RunCommand(t, nil, nil, "skopeo", args...)
	if code != 0 {
		return "", errOut, code
	}
	d, err := os.ReadFile(df)
	if err != nil {
		t.Fatalf("skopeo digest file: %v", err)
	}
	return strings.TrimSpace(string(d)), errOut, 0
}

// skopeoPull copies ref to a fresh dir: layout and checks that what came
// back is what was pushed: the manifest's digest, and every blob of img.
func skopeoPull(t *testing.T, ref, creds string, img image) {
	t.Helper()
	flags := []string{"--src-tls-verify=false"}
	if creds != "" {
		flags = append(flags, "--src-creds", creds)
	}
	skopeoPullWith(t, ref, img, flags...)
}

// skopeoPullWith is skopeoPull with skopeo copy's source flags given.
func skopeoPullWith(t *testing.T, ref string, img image, flags ...string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pulled")
	args := append([]string{"copy", "--retry-times", "0"}, flags...)
	run(t, nil, "skopeo", append(args, "docker://"+ref, "dir:"+dir)...)
	m, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("pulled manifest: %v", err)
	}
	sum := sha256.Sum256(m)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != img.manifest {
		t.Errorf("pulled %s: manifest digest %s, pushed %s", ref, got, img.manifest)
	}
	for _, h := range img.blobs {
		data, err := os.ReadFile(filepath.Join(dir, h))
		if err != nil {
			t.Errorf("pulled %s: blob %s missing: %v", ref, h, err)
			continue
		}
		if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != h {
			t.Errorf("pulled %s: blob %s has other content", ref, h)
		}
	}
}

// writeHtpasswd writes an htpasswd file with testUser's bcrypt hash.
func writeHtpasswd(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(testUser+":"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
