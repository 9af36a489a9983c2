package registry

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/registry/storage"
	"github.com/berth-containers/berth/registry/storage/fs"
	"github.com/berth-containers/berth/registry/storage/memory"
)

// readBacks counts how often a session's data is read back to be
// hashed.
type readBacks struct {
	storage.Driver
	n atomic.Int64
}

func (d *readBacks) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	if strings.Contains(p, "/_uploads/") && strings.HasSuffix(p, "/data") {
		d.n.Add(1)
	}
	return d.Driver.Reader(ctx, p, off)
}

func fsDriver(t *testing.T) storage.Driver {
	d, err := fs.New(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// chunked pushes data in three chunks, the first two on a, the closing
// PUT on b, and returns the PUT's answer.
func chunked(t *testing.T, a, b string, data []byte, dg digest.Digest) response {
	r := do(t, http.MethodPost, a+"/v2/h/blobs/uploads/", nil)
	require.Equal(t, http.StatusAccepted, r.StatusCode)
	loc := r.Header.Get("Location")
	third := len(data) / 3
	r = do(t, http.MethodPatch, abs(a, loc), data[:third])
	require.Equal(t, http.StatusAccepted, r.StatusCode, "body %s", r.body)
	r = do(t, http.MethodPatch, abs(b, r.Header.Get("Location")), data[third:2*third])
	require.Equal(t, http.StatusAccepted, r.StatusCode, "body %s", r.body)
	return do(t, http.MethodPut, abs(b, r.Header.Get("Location"))+"?digest="+dg.String(), data[2*third:])
}

func TestRunningHashSkipsReadBack(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10000)
	sum := sha512.Sum512(data)
	d512 := digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:]))
	for _, tc := range []struct {
		name      string
		driver    func(*testing.T) storage.Driver
		dg        digest.Digest
		readBacks int64
	}{
		// The filesystem driver's writers hold an upload alone: the
		// running sha256 is trusted across replicas.
		{"filesystem sha256", fsDriver, digest.FromBytes(data), 0},
		// sha512 is not kept running.
		{"filesystem sha512", fsDriver, d512, 1},
		// A driver without exclusive writers is always read back.
		{"memory", func(*testing.T) storage.Driver { return memory.New() }, digest.FromBytes(data), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &readBacks{Driver: tc.driver(t)}
			a, b := serve(t, d, Options{}), serve(t, d, Options{})
			r := chunked(t, a, b, data, tc.dg)
			require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
			require.Equal(t, tc.readBacks, d.n.Load())
			r = do(t, http.MethodGet, a+"/v2/h/blobs/"+tc.dg.String(), nil)
			require.Equal(t, data, r.body)
			for _, p := range snapshot(t, d) {
				require.NotContains(t, p, "_uploads")
			}
		})
	}
}

func TestRunningHashRefusesWrongDigest(t *testing.T) {
	d := &readBacks{Driver: fsDriver(t)}
	base := serve(t, d, Options{})
	before := snapshot(t, d)
	data := []byte(strings.Repeat("x", 3000))
	r := chunked(t, base, base, data, digest.FromString("not this"))
	expectError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
	require.Equal(t, int64(0), d.n.Load(), "the running hash decided")
	require.Equal(t, before, snapshot(t, d))
}

// sendHalf sends a PATCH of the upload at loc announcing 20000 bytes,
// sends 10000 and hangs up, as a client that goes away does.
func sendHalf(t *testing.T, base, loc string, data []byte) {
	u, err := url.Parse(abs(base, loc))
	require.NoError(t, err)
	c, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 20000\r\n\r\n", u.RequestURI(), u.Host)
	require.NoError(t, err)
	_, err = c.Write(data[:10000])
	require.NoError(t, err)
}

// heldUntil polls the session at loc, up to 5 s, until it holds
// want bytes.
func heldUntil(t *testing.T, base, loc string, want int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := do(t, http.MethodGet, abs(base, loc), nil)
		require.Equal(t, http.StatusNoContent, r.StatusCode)
		if rangeEnd(t, r.Header.Get("Range")) == want-1 {
			return
		}
		require.True(t, time.Now().Before(deadline), "session holds %s, want %d bytes", r.Header.Get("Range"), want)
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBrokenChunkDropsRunningHash(t *testing.T) {
	d := &readBacks{Driver: fsDriver(t)}
	base := serve(t, d, Options{})
	data := bytes.Repeat([]byte("abcdefgh"), 4096)
	dg := digest.FromBytes(data)
	r := do(t, http.MethodPost, base+"/v2/h/blobs/uploads/", nil)
	loc := r.Header.Get("Location")

	// A chunk whose sender goes away half-way: the server keeps what
	// arrived, but no running hash for it.
	sendHalf(t, base, loc, data)
	heldUntil(t, base, loc, 10000)
	held := 9999
	for _, p := range snapshot(t, d) {
		require.False(t, strings.HasSuffix(p, "/hashstate"), "state left after a broken chunk: %s", p)
	}

	// The client resumes where the server stands; the end is checked by
	// reading the whole upload back, and the blob is right.
	r = do(t, http.MethodPatch, abs(base, loc), data[held+1:len(data)/2], "Content-Range", strconv.Itoa(held+1)+"-"+strconv.Itoa(len(data)/2-1))
	require.Equal(t, http.StatusAccepted, r.StatusCode, "body %s", r.body)
	r = do(t, http.MethodPut, abs(base, r.Header.Get("Location"))+"?digest="+dg.String(), data[len(data)/2:])
	require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
	require.Equal(t, int64(1), d.n.Load())
	r = do(t, http.MethodGet, base+"/v2/h/blobs/"+dg.String(), nil)
	require.Equal(t, data, r.body)
}

func TestStaleHashStateIsIgnored(t *testing.T) {
	d := &readBacks{Driver: fsDriver(t)}
	base := serve(t, d, Options{})
	data := []byte(strings.Repeat("y", 4000))
	dg := digest.FromBytes(data)
	r := do(t, http.MethodPost, base+"/v2/h/blobs/uploads/", nil)
	id := r.Header.Get("Docker-Upload-UUID")
	r = do(t, http.MethodPatch, abs(base, r.Header.Get("Location")), data[:1000])
	require.Equal(t, http.StatusAccepted, r.StatusCode)
	// A state for another offset than the upload's size, as a crash
	// between a chunk and its state would leave.
	_, err := d.Put(context.Background(), uploadHashPath("h", id), strings.NewReader("sha256 999\nxx"))
	require.NoError(t, err)
	r = do(t, http.MethodPut, abs(base, r.Header.Get("Location"))+"?digest="+dg.String(), data[1000:])
	require.Equal(t, http.StatusCreated, r.StatusCode, "body %s", r.body)
	require.Equal(t, int64(1), d.n.Load())
}

// rangeEnd reads the last offset of a "0-N" Range header.
func rangeEnd(t *testing.T, s string) int {
	t.Helper()
	_, end, ok := strings.Cut(s, "-")
	require.True(t, ok, "Range %q", s)
	n, err := strconv.Atoi(end)
	require.NoError(t, err)
	return n
}
