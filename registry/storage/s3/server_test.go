package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// versitygwInstall is how CI installs the S3 server these tests run
// against.
const versitygwInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

const (
	testAccessKey = "berthtestaccess"
	testSecretKey = "berthtestsecret0123456789"
)

// server is a versitygw process serving a temporary directory.
type server struct {
	endpoint string
	buckets  atomic.Int64
}

// findVersitygw looks for the server binary in PATH, then in GOPATH/bin.
func findVersitygw() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			return "", fmt.Errorf("versitygw not in PATH, and go env GOPATH failed: %w", err)
		}
		gopath = string(out[:len(out)-1])
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("versitygw not in PATH nor in $(go env GOPATH)/bin")
}

// startServer runs versitygw on a free port of 127.0.0.1 over a
// temporary directory until the test ends, or skips the test when the
// binary is missing.
func startServer(t *testing.T) *server {
	t.Helper()
	bin, err := findVersitygw()
	if err != nil {
		t.Skipf("S3 tests need the versitygw binary (%v); install it with: %s", err, versitygwInstall)
	}
	root := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	logf, err := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	require.NoError(t, err)
	t.Cleanup(func() { logf.Close() })
	cmd := exec.Command(bin, "--port", addr, "--access", testAccessKey, "--secret", testSecretKey,
		"--quiet", "posix", root)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the test binary, even one killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	s := &server{endpoint: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw exited early: %v\n%s", waitErr, log)
		default:
		}
		resp, err := http.Get(s.endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw did not answer on %s within 30s: %v\n%s", addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// config is a Config for bucket on s.
func (s *server) config(bucket string) Config {
	return Config{
		Endpoint:       s.endpoint,
		Bucket:         bucket,
		Prefix:         "registry",
		AccessKey:      testAccessKey,
		SecretKey:      testSecretKey,
		ForcePathStyle: true,
	}
}

// newBucket makes an empty bucket, emptied and removed when tb ends,
// and returns its config.
func (s *server) newBucket(tb testing.TB) Config {
	tb.Helper()
	name := fmt.Sprintf("bucket%d", s.buckets.Add(1))
	cfg := s.config(name)
	d, err := newDriver(cfg)
	require.NoError(tb, err)
	resp, err := d.c.do(context.Background(), request{method: http.MethodPut, body: []byte{}})
	require.NoError(tb, err, "create bucket %s", name)
	require.NoError(tb, drain(resp))
	tb.Cleanup(func() {
		if err := removeBucket(d); err != nil {
			tb.Errorf("remove bucket %s: %v", name, err)
		}
	})
	return cfg
}

// removeBucket drops every upload and object of d's bucket, then the
// bucket.
func removeBucket(d *Driver) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ups, err := d.c.listUploads(ctx, "")
	if err != nil {
		return err
	}
	for _, u := range ups {
		if err := d.c.abortUpload(ctx, u.Key, u.UploadID); err != nil {
			return err
		}
	}
	if _, err := d.removeUnder(ctx, ""); err != nil {
		return err
	}
	resp, err := d.c.do(ctx, request{method: http.MethodDelete})
	if err != nil {
		return err
	}
	return drain(resp)
}

// open opens a driver on cfg.
func open(tb testing.TB, cfg Config) *Driver {
	tb.Helper()
	d, err := New(context.Background(), cfg)
	require.NoError(tb, err)
	return d
}
