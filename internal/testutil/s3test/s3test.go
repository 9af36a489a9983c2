// Package s3test runs a real S3 server, versitygw with its posix backend,
// on 127.0.0.1 for tests of berth's S3 storage.
package s3test

import (
	"errors"
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

	"github.com/berth-containers/berth/internal/testutil"
)

// Install is how CI (scripts/test.sh) installs the server.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// startTimeout bounds the wait for the server to answer.
const startTimeout = 30 * time.Second

// Server is a running versitygw.
type Server struct {
	// Endpoint is its URL, http://127.0.0.1:PORT.
	Endpoint string
	// Root is the posix backend's directory: each bucket is a directory
	// in it, each object a file.
	Root string
	// AccessKey and SecretKey are its one account's credentials.
	AccessKey, SecretKey string
}

// find looks for the server in PATH, then in GOPATH/bin, where go install
// puts it.
func find() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			return "", fmt.Errorf("versitygw not in PATH, and go env GOPATH failed: %w", err)
		}
		gopath = strings.TrimSpace(string(out))
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("versitygw not in PATH nor in $(go env GOPATH)/bin")
}

// Start runs versitygw on a free port of 127.0.0.1 over a temporary
// directory until tb ends, with the given credentials, or skips tb when
// the server is not installed. It dies with the test binary, even one
// killed.
func Start(tb testing.TB, accessKey, secretKey string) *Server {
	tb.Helper()
	bin, err := find()
	if err != nil {
		testutil.Missing(tb, "S3 tests need versitygw (%v); install it with: %s", err, Install)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		tb.Fatalf("free port: %v", err)
	}
	s := &Server{Endpoint: "http://" + addr, Root: tb.TempDir(), AccessKey: accessKey, SecretKey: secretKey}
	logs := &testutil.SyncBuffer{}
	cmd := exec.Command(bin, "--port", addr, "--access", accessKey, "--secret", secretKey, "--quiet", "posix", s.Root)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			tb.Fatalf("versitygw exited at start: %s", logs.String())
		default:
		}
		// Any answer (403 without a signature) means it serves.
		resp, err := (&http.Client{Timeout: time.Second}).Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("versitygw did not answer on %s within %s: %s", addr, startTimeout, logs.String())
	return nil
}
