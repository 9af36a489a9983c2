package files

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/build/source"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Fetch downloads rawURL for ADD into a new directory under tmpDir, as a
// file named by the URL's last path element ("download" when it has none),
// mode 0600, its mtime from Last-Modified when the server sends one. It
// returns that directory as a source, the file's Match (ready for Copy)
// and the sha256 of the bytes. A status other than 200, or a body over
// maxBytes, is an error naming the URL.
func Fetch(ctx context.Context, client *http.Client, rawURL, tmpDir string, maxBytes int64) (*source.Context, source.Match, digest.Digest, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, source.Match{}, "", errdefs.Invalid("ADD %s: %v", rawURL, err)
	}
	dir, err := os.MkdirTemp(tmpDir, "fetch-")
	if err != nil {
		return nil, source.Match{}, "", fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	name := downloadName(u)
	p := filepath.Join(dir, name)
	sum, err := download(ctx, client, rawURL, p, maxBytes)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, source.Match{}, "", err
	}
	info, err := os.Lstat(p)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, source.Match{}, "", fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	m := source.Match{Source: rawURL, Rel: name, Abs: p, Info: info}
	return source.FromRoot(dir), m, sum, nil
}

// downloadName is the file name a URL is saved under.
func downloadName(u *url.URL) string {
	name := path.Base(u.Path)
	switch name {
	case "", ".", "..", "/":
		return "download"
	}
	return name
}

// download writes the body of a GET of rawURL to p and returns its sha256.
func download(ctx context.Context, client *http.Client, rawURL, p string, maxBytes int64) (digest.Digest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", errdefs.Invalid("ADD %s: %v", rawURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			return "", errdefs.NotFound("ADD %s: server answered %s", rawURL, resp.Status)
		}
		return "", fmt.Errorf("ADD %s: server answered %s", rawURL, resp.Status)
	}
	if resp.ContentLength > maxBytes {
		return "", errdefs.Invalid("ADD %s: %d bytes is over the limit of %d", rawURL, resp.ContentLength, maxBytes)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, maxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("ADD %s: download: %w", rawURL, err)
	}
	if n > maxBytes {
		return "", errdefs.Invalid("ADD %s: body is over the limit of %d bytes", rawURL, maxBytes)
	}
	// The umask may have narrowed the mode; ADD's file is 0600.
	if err := os.Chmod(p, 0o600); err != nil {
		return "", fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			if err := os.Chtimes(p, t, t); err != nil {
				return "", fmt.Errorf("ADD %s: %w", rawURL, err)
			}
		}
	}
	return digest.NewDigest(digest.SHA256, h), nil
}
