package s3

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil/s3test"
)

const (
	testAccessKey = "berthtestaccess"
	testSecretKey = "berthtestsecret0123456789"
)

// server is a versitygw process serving a temporary directory.
type server struct {
	endpoint string
	buckets  atomic.Int64
}

// startServer runs versitygw until the test ends, or skips the test when
// the binary is missing.
func startServer(t *testing.T) *server {
	t.Helper()
	return &server{endpoint: s3test.Start(t, testAccessKey, testSecretKey).Endpoint}
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
