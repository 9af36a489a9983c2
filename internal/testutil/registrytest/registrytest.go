// Package registrytest runs the distribution registry (Debian's
// docker-registry) on 127.0.0.1 for tests, anonymous or behind htpasswd
// basic auth or bearer-token auth, with a token server inside the test
// process. Everything it starts is stopped and removed at the test's end.
package registrytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
)

// DefaultBinary is where Debian's docker-registry package installs the
// registry; $BERTH_TEST_REGISTRY overrides it.
const DefaultBinary = "/usr/bin/docker-registry"

// AuthMode selects how the registry authenticates clients.
type AuthMode int

// The registry's authentication modes.
const (
	// Anonymous accepts every request.
	Anonymous AuthMode = iota
	// Basic checks users against an htpasswd file (bcrypt).
	Basic
	// Token sends clients to a token server that issues signed JWTs.
	Token
)

func (m AuthMode) String() string {
	switch m {
	case Anonymous:
		return "anonymous"
	case Basic:
		return "basic"
	case Token:
		return "token"
	}
	return fmt.Sprintf("AuthMode(%d)", int(m))
}

// Default user, made when Options.Users is empty in Basic and Token modes.
const (
	DefaultUser     = "berth"
	DefaultPassword = "berth-test-password"
)

// Options configure Start.
type Options struct {
	// Auth is the authentication mode; Anonymous by default.
	Auth AuthMode
	// Users maps user names to passwords for Basic and Token modes;
	// empty means one user, DefaultUser with DefaultPassword.
	Users map[string]string
	// AnonymousPull lets the token server give anonymous clients pull
	// access (Token mode); without it they get no access at all.
	AnonymousPull bool
	// Binary is the registry executable; empty means $BERTH_TEST_REGISTRY
	// or DefaultBinary.
	Binary string
}

// Registry is a running registry.
type Registry struct {
	// Host is "127.0.0.1:port", the domain of references to this registry.
	Host string
	// URL is "http://" + Host.
	URL string
	// Auth is the mode it runs in.
	Auth AuthMode
	// Username and Password are one valid user (Basic and Token modes).
	Username, Password string
	// StorageDir is the registry's filesystem storage root.
	StorageDir string
	// TokenURL is the token server's realm (Token mode).
	TokenURL string

	tokens *tokenServer
	logs   *testutil.SyncBuffer
}

// TokenRequests counts the requests the token server answered with a
// token, so tests can check that clients cache tokens. Zero outside Token
// mode.
func (r *Registry) TokenRequests() int {
	if r.tokens == nil {
		return 0
	}
	return r.tokens.issued()
}

// Logs returns what the registry process has written so far.
func (r *Registry) Logs() string { return r.logs.String() }

// Binary returns the registry executable to use, skipping the test with
// a clear reason when it is not installed.
func Binary(t testing.TB) string {
	t.Helper()
	p := DefaultBinary
	if env := os.Getenv("BERTH_TEST_REGISTRY"); env != "" {
		p = env
	}
	if _, err := os.Stat(p); err != nil {
		testutil.Missing(t, "distribution registry not found at %s (apt-get install docker-registry)", p)
	}
	return p
}

// Start runs a registry for the test and stops it, and removes its files,
// at the test's end. It fails the test when the registry does not come up.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	bin := opts.Binary
	if bin == "" {
		bin = Binary(t)
	}
	dir := t.TempDir()
	r := &Registry{Auth: opts.Auth, StorageDir: filepath.Join(dir, "storage"), logs: &testutil.SyncBuffer{}}
	users := opts.Users
	if len(users) == 0 && opts.Auth != Anonymous {
		users = map[string]string{DefaultUser: DefaultPassword}
	}
	r.Username, r.Password = firstUser(users)

	port, err := freePort()
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	r.Host = fmt.Sprintf("127.0.0.1:%d", port)
	r.URL = "http://" + r.Host

	authYAML, err := r.setupAuth(t, dir, opts, users)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	cfg := configYAML(r.Host, r.StorageDir, randomHex(16), authYAML)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("registrytest: write config: %v", err)
	}
	r.start(t, bin, cfgPath)
	return r
}

func (r *Registry) setupAuth(t testing.TB, dir string, opts Options, users map[string]string) (string, error) {
	switch opts.Auth {
	case Anonymous:
		return "", nil
	case Basic:
		path := filepath.Join(dir, "htpasswd")
		if err := writeHtpasswd(path, users); err != nil {
			return "", err
		}
		return fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", path), nil
	case Token:
		ts, err := startTokenServer(t, dir, users, opts.AnonymousPull)
		if err != nil {
			return "", err
		}
		r.tokens = ts
		r.TokenURL = ts.realm
		return fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			ts.realm, tokenService, tokenIssuer, ts.certPath), nil
	}
	return "", fmt.Errorf("unknown auth mode %d", opts.Auth)
}

// configYAML is the registry's configuration: filesystem storage, deletes
// allowed, no background upload purging, quiet logs.
func configYAML(addr, storage, secret, auth string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
%s`, storage, addr, secret, auth)
}

// start runs the registry process and waits until /v2/ answers.
func (r *Registry) start(t testing.TB, bin, cfgPath string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout = r.logs
	cmd.Stderr = r.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("registrytest: start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case werr := <-exited:
			_ = werr // killed on purpose; its exit status says nothing
		case <-time.After(10 * time.Second):
			t.Errorf("registrytest: registry pid %d did not exit after kill", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("registry log:\n%s", r.logs.String())
		}
	})
	if err := waitReady(r.URL, exited, 15*time.Second); err != nil {
		t.Fatalf("registrytest: registry at %s: %v\n%s", r.Host, err, r.logs.String())
	}
}

// waitReady polls /v2/ until the registry answers at all (200 or 401),
// the process exits, or the time is up.
func waitReady(base string, exited <-chan error, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for i := 0; i < 1000; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before serving: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s", limit)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after 1000 polls")
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// could take it before the registry binds it; the readiness check then
// fails loudly rather than talking to a stranger for long.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func firstUser(users map[string]string) (string, string) {
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "", ""
	}
	sort.Strings(names)
	return names[0], users[names[0]]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
