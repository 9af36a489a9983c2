package registry_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
	"github.com/berth-containers/berth/internal/testutil/s3test"
)

// testCert is a self-signed certificate for 127.0.0.1, its own authority.
type testCert struct {
	cert     *x509.Certificate
	certFile string // PEM
	keyFile  string // PEM, PKCS #8
	pool     *x509.CertPool
}

// newTestCert makes an ECDSA P-256 certificate for the IP address
// 127.0.0.1 and writes it and its key as PEM files in a fresh directory.
func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "berth registry test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tc := testCert{cert: cert, certFile: filepath.Join(dir, "registry.crt"), keyFile: filepath.Join(dir, "registry.key"),
		pool: x509.NewCertPool()}
	tc.pool.AddCert(cert)
	writePEM(t, tc.certFile, "CERTIFICATE", der)
	writePEM(t, tc.keyFile, "PRIVATE KEY", keyDER)
	return tc
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// certDir is a directory as skopeo's --cert-dir wants it (docker's
// certs.d convention): the authorities to trust as *.crt files.
func (c testCert) certDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", c.cert.Raw)
	return dir
}

// TestTLS serves HTTPS with a self-signed certificate: clients that trust
// it (Go's, skopeo given it in a cert dir) push and pull with
// verification on; clients that do not are refused at the handshake, and
// plain HTTP gets no registry answer.
func TestTLS(t *testing.T) {
	tc := newTestCert(t)
	reg := startWith(t, launch{root: t.TempDir(), tls: &tls.Config{RootCAs: tc.pool},
		args: []string{"--tls-cert", tc.certFile, "--tls-key", tc.keyFile}})

	t.Run("go client", func(t *testing.T) {
		resp, err := reg.client.Get(reg.url("/v2/"))
		if err != nil {
			t.Fatalf("HTTPS GET /v2/: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
			t.Errorf("HTTPS GET /v2/: status %d, API version header %q", resp.StatusCode, resp.Header.Get("Docker-Distribution-Api-Version"))
		}
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || !resp.TLS.PeerCertificates[0].Equal(tc.cert) {
			t.Errorf("the registry did not present the certificate it was given")
		} else if resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("negotiated TLS version %x, below 1.2", resp.TLS.Version)
		}

		// A client that does not trust the certificate is refused.
		resp, err = (&http.Client{Timeout: httpTimeout}).Get(reg.url("/v2/"))
		var unknown x509.UnknownAuthorityError
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET /v2/ without trusting the certificate: status %d, want an unknown authority error", resp.StatusCode)
		} else if !errors.As(err, &unknown) {
			t.Errorf("GET /v2/ without trusting the certificate: %v, want an unknown authority error", err)
		}
		// TLS below 1.2 is refused (docs/REGISTRY.md).
		old := &http.Client{Timeout: httpTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: tc.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
		resp, err = old.Get(reg.url("/v2/"))
		if err == nil {
			resp.Body.Close()
			t.Errorf("a TLS 1.1 client was served (status %d)", resp.StatusCode)
		} else if !strings.Contains(err.Error(), "protocol version not supported") {
			t.Errorf("a TLS 1.1 client was refused, but not for its version: %v", err)
		}
	})

	t.Run("plain HTTP", func(t *testing.T) {
		// Go's TLS server answers a plain HTTP request on its port with a
		// bare 400 of its own, before any registry handler.
		resp, err := (&http.Client{Timeout: httpTimeout}).Get("http://" + reg.host + "/v2/")
		if err != nil {
			t.Fatalf("plain HTTP GET /v2/: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP GET /v2/: status %d, want 400", resp.StatusCode)
		}
		if v := resp.Header.Get("Docker-Distribution-Api-Version"); v != "" {
			t.Errorf("plain HTTP GET /v2/ got a registry answer (API version header %q)", v)
		}
		if !strings.Contains(string(body), "HTTP request to an HTTPS server") {
			t.Errorf("plain HTTP GET /v2/: body %q", body)
		}
	})

	t.Run("skopeo", func(t *testing.T) {
		requireTool(t, "skopeo", "skopeo")
		certs := tc.certDir(t)
		img := writeLayout(t, 100<<10, 1000)
		ref := reg.host + "/tls/img:1"
		digest, errOut, code := trySkopeoPushWith(t, img, ref, "--dest-tls-verify=true", "--dest-cert-dir", certs)
		if code != 0 {
			t.Fatalf("skopeo push over verified TLS: exit %d: %s", code, errOut)
		}
		if digest != img.manifest {
			t.Errorf("skopeo pushed digest %s, layout's manifest is %s", digest, img.manifest)
		}
		skopeoPullWith(t, ref, img, "--src-tls-verify=true", "--src-cert-dir", certs)
		skopeoPullWith(t, reg.host+"/tls/img@"+img.manifest, img, "--src-tls-verify=true", "--src-cert-dir", certs)

		// Without the certificate, verification fails both ways.
		other := writeLayout(t, 1000)
		_, errOut, code = trySkopeoPushWith(t, other, reg.host+"/tls/other:1", "--dest-tls-verify=true")
		if code == 0 {
			t.Fatal("skopeo push without trusting the certificate succeeded")
		}
		if !strings.Contains(errOut, "unknown authority") {
			t.Errorf("skopeo push without trusting the certificate failed, but not on it: %s", errOut)
		}
		if code, _ := reg.request("GET", "/v2/tls/other/manifests/1", nil); code != 404 {
			t.Errorf("manifest of the refused push: status %d, want 404", code)
		}
		_, errOut, code = testutil.RunCommand(t, nil, nil, "skopeo", "copy", "--retry-times", "0", "--src-tls-verify=true",
			"docker://"+ref, "dir:"+filepath.Join(t.TempDir(), "pulled"))
		if code == 0 {
			t.Error("skopeo pull without trusting the certificate succeeded")
		} else if !strings.Contains(errOut, "unknown authority") {
			t.Errorf("skopeo pull without trusting the certificate failed, but not on it: %s", errOut)
		}
	})

	// berth has no option to trust an authority of one's own: like
	// docker, it reaches loopback registries over HTTPS without
	// verifying them (and over plain HTTP when HTTPS fails). This checks
	// that it speaks HTTPS to the registry: the plain HTTP fallback
	// would get the 400 above.
	t.Run("berth", func(t *testing.T) {
		testutil.RequiresBusybox(t)
		src, dst := newStore(t), newStore(t)
		ref := reg.host + "/tls/busybox:1"
		src.importBusybox(ref)
		digest := pushedDigest(t, src.must("", "push", ref))
		dst.must("", "pull", ref)
		if got := repoDigest(dst.inspect(ref, "{{index .RepoDigests 0}}")); got != digest {
			t.Errorf("pulled manifest digest %s, pushed %s", got, digest)
		}
		if got, want := dst.inspect(ref, "{{.Id}}"), src.inspect(ref, "{{.Id}}"); got != want {
			t.Errorf("pulled image id %s, pushed %s", got, want)
		}
	})
}

// Credentials of the S3 server's single account.
const (
	s3AccessKey = "berthe2eaccess"
	s3SecretKey = "berthe2esecret0123456789"
)

// newBucket makes an empty bucket: with the posix backend, a directory.
func newBucket(t *testing.T, s *s3test.Server, name string) string {
	t.Helper()
	dir := filepath.Join(s.Root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("bucket %s: %v", name, err)
	}
	return dir
}

// s3Config writes a registry configuration file keeping content under
// prefix in bucket on s.
func s3Config(t *testing.T, s *s3test.Server, bucket, prefix string) string {
	t.Helper()
	cfg := mustJSON(t, map[string]any{
		"storage": map[string]any{"s3": map[string]any{
			"endpoint": s.Endpoint, "region": "us-east-1", "bucket": bucket, "prefix": prefix,
			"accessKey": s.AccessKey, "secretKey": s.SecretKey, "forcePathStyle": true,
		}},
		"log": map[string]any{"access": true},
	})
	p := filepath.Join(t.TempDir(), "registry.json")
	if err := os.WriteFile(p, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestS3Storage runs two registries on one S3 bucket: what one stores,
// the other serves; what one deletes, the other no longer serves; the
// content really is in the bucket, and gc through the same configuration
// deletes it there.
func TestS3Storage(t *testing.T) {
	requireTool(t, "skopeo", "skopeo")
	s3 := s3test.Start(t, s3AccessKey, s3SecretKey)
	bucket := newBucket(t, s3, "images")
	cfg := s3Config(t, s3, "images", "registry")
	a := startWith(t, launch{args: []string{"--config", cfg}})
	b := startWith(t, launch{args: []string{"--config", cfg}})
	for _, s := range []*server{a, b} {
		if !strings.Contains(s.logs.String(), `"storage":"s3"`) {
			t.Fatalf("registry on %s does not say it serves S3 storage; logs:\n%s", s.host, s.logs.String())
		}
	}

	img := writeLayout(t, 300<<10, 2000)
	if got := skopeoPush(t, img, a.host+"/s3/img:1", ""); got != img.manifest {
		t.Errorf("skopeo pushed digest %s, layout's manifest is %s", got, img.manifest)
	}
	skopeoPull(t, b.host+"/s3/img:1", "", img)
	skopeoPull(t, b.host+"/s3/img@"+img.manifest, "", img)

	// The blobs are objects of the bucket, under the prefix, at the
	// layout's path (docs/REGISTRY.md), with their content.
	for _, h := range append([]string{strings.TrimPrefix(img.manifest, "sha256:")}, img.blobs...) {
		p := blobPath(filepath.Join(bucket, "registry"), h)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("blob %s is not in the bucket: %v; bucket holds:\n%s", h, err, listTree(t, bucket))
			continue
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != h {
			t.Errorf("object of blob %s in the bucket has other content", h)
		}
	}

	accept := map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}
	code, body := b.request("DELETE", "/v2/s3/img/manifests/"+img.manifest, nil)
	if code != 202 {
		t.Fatalf("DELETE manifest through the second replica: status %d: %s", code, body)
	}
	for _, ref := range []string{img.manifest, "1"} {
		code, body := a.request("GET", "/v2/s3/img/manifests/"+ref, accept)
		if code != 404 || !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
			t.Errorf("GET manifest %s from the first replica after the delete: status %d: %s, want 404 MANIFEST_UNKNOWN", ref, code, body)
		}
	}

	// gc with the replicas' configuration deletes the image's blobs
	// from the bucket.
	time.Sleep(20 * time.Millisecond)
	out := run(t, nil, testutil.BerthBinary(t), "registry", "gc", "--config", cfg, "--grace", "1ms")
	t.Logf("gc: %s", strings.TrimSpace(out))
	for _, h := range append([]string{strings.TrimPrefix(img.manifest, "sha256:")}, img.blobs...) {
		if _, err := os.Stat(blobPath(filepath.Join(bucket, "registry"), h)); !os.IsNotExist(err) {
			t.Errorf("blob %s still in the bucket after gc (%v)", h, err)
		}
	}
	// And the replicas serve on: a push to the second, a pull from the first.
	img2 := writeLayout(t, 50<<10)
	skopeoPush(t, img2, b.host+"/s3/img:2", "")
	skopeoPull(t, a.host+"/s3/img:2", "", img2)
}

// listTree lists the files under dir, for failure messages.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			b.WriteString(rel + "\n")
		}
		return nil
	})
	return b.String()
}
