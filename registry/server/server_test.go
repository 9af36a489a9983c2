package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-containers/berth/registry/config"
)

func finished(t *testing.T, c *config.Config) *config.Config {
	t.Helper()
	if c.Storage.Filesystem == nil {
		c.Storage.Filesystem = &config.Filesystem{Root: filepath.Join(t.TempDir(), "data")}
	}
	require.NoError(t, c.Finish())
	return c
}

func TestAuthMetricsAndAccessLog(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	htpasswd := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600))
	cfg := finished(t, &config.Config{Auth: config.Auth{Htpasswd: htpasswd, AnonymousPull: true}, Log: config.Log{Access: true}})
	var logs bytes.Buffer
	s, err := New(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	get := func(method, path string, user string) *http.Response {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		require.NoError(t, err)
		if user != "" {
			req.SetBasicAuth(user, "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	assert.Equal(t, 401, get("GET", "/v2/", "").StatusCode, "/v2/ asks for credentials")
	assert.Equal(t, 200, get("GET", "/v2/", "alice").StatusCode)
	assert.Equal(t, 404, get("GET", "/v2/app/manifests/v1", "").StatusCode, "pulls reach the registry")
	assert.Equal(t, 401, get("POST", "/v2/app/blobs/uploads/", "").StatusCode, "anonymous push refused")
	resp := get("POST", "/v2/app/blobs/uploads/", "alice")
	assert.Equal(t, 202, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Location"))

	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `berth_registry_requests_total{route="uploads",method="POST",code="202"} 1`)
	assert.Contains(t, string(body), `berth_registry_requests_total{route="uploads",method="POST",code="401"} 1`)
	assert.Contains(t, logs.String(), `"route":"uploads"`)
	assert.Equal(t, 6, strings.Count(logs.String(), `"msg":"request"`))
}

func TestServeTLSAndStop(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	cfg := finished(t, &config.Config{Listen: "127.0.0.1:0", TLS: config.TLS{Certificate: cert, Key: key}})
	s, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not start")
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's own certificate
	resp, err := client.Get("https://" + addr.String() + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "registry/2.0", resp.Header.Get("Docker-Distribution-API-Version"))
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(35 * time.Second):
		t.Fatal("the server did not stop")
	}
}

func TestBadSettingsFailAtStart(t *testing.T) {
	cfg := finished(t, &config.Config{Auth: config.Auth{Htpasswd: "/nonexistent/htpasswd"}})
	_, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	assert.ErrorContains(t, err, "htpasswd")
	cfg = finished(t, &config.Config{Auth: config.Auth{Token: &config.Token{Key: "/nonexistent/key.pem"}}})
	_, err = New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	assert.ErrorContains(t, err, "token key")
}

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certPath, keyPath
}
