// Package s3 is a storage.Driver over one bucket of an S3-compatible
// object store (AWS S3, MinIO, versitygw, ...), optionally under a key
// prefix.
//
// Directories are key prefixes: a directory exists while an object lies
// under it. Uploads are S3 multipart uploads at the upload's key; since
// S3 refuses parts under 5 MiB (but the last), a Writer buffers up to one
// part in memory and, when closed, keeps the remainder as an object of
// its own under the reserved top-level directory "_s3uploads", together
// with the multipart upload's id. A Writer resumed on any instance finds
// both there, so uploads move between registry replicas with no state
// outside the bucket. Paths whose first element is "_s3uploads" are
// refused.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// Part sizes of multipart uploads.
const (
	// DefaultPartSize is the part size when Config leaves it zero.
	DefaultPartSize = 8 << 20
	// MinPartSize is the smallest part S3 takes, but for the last.
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part S3 takes.
	MaxPartSize = 5 << 30
	// maxParts is how many parts one multipart upload may have.
	maxParts = 10000
)

// reserved is the top-level directory where closed uploads keep their
// tails; no storage path may begin with it.
const reserved = "_s3uploads"

// Config says where the driver keeps its objects.
type Config struct {
	// Endpoint is the service's URL ("http://127.0.0.1:7070"); empty
	// means AWS S3 in Region.
	Endpoint string
	// Region signs requests; "us-east-1" when empty.
	Region string
	// Bucket holds the objects; it must exist.
	Bucket string
	// Prefix, when set, is prepended to every key ("registry" keeps
	// "blobs/x" at "registry/blobs/x").
	Prefix string
	// AccessKey and SecretKey sign requests; both empty sends them
	// unsigned. SessionToken goes with temporary credentials.
	AccessKey    string
	SecretKey    string
	SessionToken string
	// ForcePathStyle names the bucket in the URL's path rather than its
	// host, as MinIO and versitygw want.
	ForcePathStyle bool
	// PartSize is the size of multipart upload parts: DefaultPartSize
	// when zero, at least MinPartSize, at most MaxPartSize. A Writer
	// holds up to one part in memory.
	PartSize int64
}

// Driver is a storage.Driver over an S3 bucket, safe for concurrent use.
type Driver struct {
	c        *client
	root     string // Prefix + "/", or ""
	partSize int64
	// copyLimit is the largest object Move copies in one call; larger
	// ones are copied in parts of copyPartSize. Tests lower both.
	copyLimit    int64
	copyPartSize int64
}

var _ storage.Driver = (*Driver)(nil)

// New opens the bucket cfg names, checking that it exists.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	d, err := newDriver(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.c.headBucket(ctx); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, errdefs.NotFound("s3 bucket %q does not exist", cfg.Bucket)
		}
		return nil, fmt.Errorf("s3 bucket %q: %w", cfg.Bucket, err)
	}
	return d, nil
}

// newDriver checks cfg and builds the driver without touching the network.
func newDriver(cfg Config) (*Driver, error) {
	if cfg.Bucket == "" {
		return nil, errdefs.Invalid("s3: no bucket given")
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return nil, errdefs.Invalid("s3: access key and secret key go together")
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "https://s3." + region + ".amazonaws.com"
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errdefs.Invalid("s3: endpoint %q: not an http or https URL", endpoint)
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize || partSize > MaxPartSize {
		return nil, errdefs.Invalid("s3: part size %d: not between %d and %d", partSize, MinPartSize, MaxPartSize)
	}
	root := strings.Trim(cfg.Prefix, "/")
	if root != "" {
		if err := checkPath(root); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
		root += "/"
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c := &client{
		http:        &http.Client{Transport: tr},
		scheme:      u.Scheme,
		host:        u.Host,
		basePath:    strings.TrimSuffix(u.Path, "/"),
		region:      region,
		bucket:      cfg.Bucket,
		pathStyle:   cfg.ForcePathStyle,
		accessKey:   cfg.AccessKey,
		secretKey:   cfg.SecretKey,
		token:       cfg.SessionToken,
		signPayload: u.Scheme == "http",
	}
	return &Driver{c: c, root: root, partSize: partSize, copyLimit: MaxPartSize, copyPartSize: 1 << 30}, nil
}

// Name is "s3".
func (d *Driver) Name() string { return "s3" }

// checkPath refuses the paths the storage package forbids, and the
// reserved directory.
func checkPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return errdefs.Invalid("storage path %q: not a relative path", p)
	}
	for i, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return errdefs.Invalid("storage path %q: bad element %q", p, el)
		}
		if i == 0 && el == reserved {
			return errdefs.Invalid("storage path %q: %q is reserved for uploads", p, reserved)
		}
	}
	return nil
}

// key is the object key of a storage path.
func (d *Driver) key(p string) string { return d.root + p }

// path is the storage path of an object key under root.
func (d *Driver) path(key string) string { return strings.TrimPrefix(key, d.root) }

// Reader implements storage.Driver.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, errdefs.Invalid("storage object %q: offset %d out of range", p, offset)
	}
	rc, err := d.c.get(ctx, d.key(p), offset)
	if err == nil {
		return rc, nil
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, errdefs.NotFound("storage object %q does not exist", p)
	}
	if errorCode(err) != "InvalidRange" {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	// S3 refuses a range that starts at the end; the end is a valid
	// offset, though, where there is nothing left to read.
	meta, err := d.stat(ctx, p)
	if err != nil {
		return nil, err
	}
	if offset == meta.size {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return nil, errdefs.Invalid("storage object %q: offset %d out of range", p, offset)
}

// stat heads the object at p.
func (d *Driver) stat(ctx context.Context, p string) (objectMeta, error) {
	meta, err := d.c.head(ctx, d.key(p))
	if errors.Is(err, errdefs.ErrNotFound) {
		return meta, errdefs.NotFound("storage object %q does not exist", p)
	}
	if err != nil {
		return meta, fmt.Errorf("stat %s: %w", p, err)
	}
	return meta, nil
}

// Stat implements storage.Driver.
func (d *Driver) Stat(ctx context.Context, p string) (storage.Info, error) {
	if err := checkPath(p); err != nil {
		return storage.Info{}, err
	}
	meta, err := d.stat(ctx, p)
	if err == nil {
		return storage.Info{Path: p, Size: meta.size, ModTime: meta.modTime}, nil
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		return storage.Info{}, err
	}
	found := false
	err = d.c.list(ctx, d.key(p)+"/", "", 1, func(res *listResult) (bool, error) {
		found = len(res.Contents) > 0
		return false, nil
	})
	if err != nil {
		return storage.Info{}, fmt.Errorf("stat %s: %w", p, err)
	}
	if !found {
		return storage.Info{}, errdefs.NotFound("storage path %q does not exist", p)
	}
	return storage.Info{Path: p, IsDir: true}, nil
}

// Put implements storage.Driver. An object of up to one part is sent in
// one request; a larger one goes up as a multipart upload, completed
// only once the reader is drained, so a failed Put leaves the earlier
// object in place.
func (d *Driver) Put(ctx context.Context, p string, r io.Reader) (int64, error) {
	if err := checkPath(p); err != nil {
		return 0, err
	}
	key := d.key(p)
	first, err := io.ReadAll(io.LimitReader(r, d.partSize))
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", p, err)
	}
	if int64(len(first)) < d.partSize {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("put %s: %w", p, err)
		}
		if err := d.c.put(ctx, key, first); err != nil {
			return 0, fmt.Errorf("put %s: %w", p, err)
		}
		return int64(len(first)), nil
	}
	n, err := d.putMultipart(ctx, key, first, r)
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", p, err)
	}
	return n, nil
}

// putMultipart uploads first and the rest of r in parts.
func (d *Driver) putMultipart(ctx context.Context, key string, first []byte, r io.Reader) (int64, error) {
	id, err := d.c.createUpload(ctx, key)
	if err != nil {
		return 0, err
	}
	var parts []part
	var total int64
	buf := first
	for len(buf) > 0 {
		if len(parts) == maxParts {
			err = fmt.Errorf("more than %d parts of %d bytes", maxParts, d.partSize)
			break
		}
		var pt part
		if pt, err = d.c.uploadPart(ctx, key, id, len(parts)+1, buf); err != nil {
			break
		}
		parts = append(parts, pt)
		total += pt.Size
		var n int
		if int64(cap(buf)) < d.partSize {
			buf = make([]byte, d.partSize)
		}
		n, err = io.ReadFull(r, buf[:d.partSize])
		buf = buf[:n]
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil
		} else if err != nil {
			break
		}
	}
	if err == nil {
		err = d.c.completeUpload(ctx, key, id, parts)
	}
	if err != nil {
		d.abort(ctx, key, id)
		return 0, err
	}
	return total, nil
}

// abort drops a multipart upload after a failure, even when ctx is what
// failed; its own error is dropped, the upload being garbage at worst.
func (d *Driver) abort(ctx context.Context, key, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = d.c.abortUpload(ctx, key, id)
}

// List implements storage.Driver.
func (d *Driver) List(ctx context.Context, prefix string) ([]string, error) {
	if err := checkPath(prefix); err != nil {
		return nil, err
	}
	dir := d.key(prefix) + "/"
	var out []string
	err := d.c.list(ctx, dir, "/", 0, func(res *listResult) (bool, error) {
		for _, e := range res.Contents {
			if e.Key != dir && !strings.HasSuffix(e.Key, "/") {
				out = append(out, d.path(e.Key))
			}
		}
		for _, cp := range res.CommonPrefixes {
			out = append(out, d.path(strings.TrimSuffix(cp.Prefix, "/")))
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if len(out) == 0 {
		return nil, errdefs.NotFound("storage directory %q does not exist", prefix)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Walk implements storage.Driver. S3 lists keys in byte order, which is
// the lexical order of paths.
func (d *Driver) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := checkPath(prefix); err != nil {
		return err
	}
	seen := false
	var fnErr error
	err := d.c.list(ctx, d.key(prefix)+"/", "", 0, func(res *listResult) (bool, error) {
		for _, e := range res.Contents {
			if strings.HasSuffix(e.Key, "/") {
				continue // a directory marker some tools make
			}
			seen = true
			if fnErr = fn(storage.Info{Path: d.path(e.Key), Size: e.Size, ModTime: e.LastModified}); fnErr != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("walk %s: %w", prefix, err)
	}
	if !seen {
		return errdefs.NotFound("storage directory %q does not exist", prefix)
	}
	return nil
}

// Move implements storage.Driver: a copy inside the service, then a
// delete of the source.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	if err := checkPath(src); err != nil {
		return err
	}
	if err := checkPath(dst); err != nil {
		return err
	}
	meta, err := d.stat(ctx, src)
	if err != nil {
		return fmt.Errorf("move %s: %w", src, err)
	}
	if src == dst {
		return nil
	}
	if meta.size <= d.copyLimit {
		err = d.c.copyObject(ctx, d.key(src), d.key(dst))
	} else {
		err = d.copyMultipart(ctx, d.key(src), d.key(dst), meta.size)
	}
	if err != nil {
		return fmt.Errorf("move %s to %s: %w", src, dst, err)
	}
	if err := d.c.remove(ctx, d.key(src)); err != nil {
		return fmt.Errorf("move %s to %s: remove source: %w", src, dst, err)
	}
	return nil
}

// copyMultipart copies an object too large for one copy call in parts.
func (d *Driver) copyMultipart(ctx context.Context, src, dst string, size int64) error {
	partSize := max(d.copyPartSize, (size+maxParts-1)/maxParts)
	id, err := d.c.createUpload(ctx, dst)
	if err != nil {
		return err
	}
	var parts []part
	for first := int64(0); first < size; first += partSize {
		last := min(first+partSize, size) - 1
		pt, err := d.c.copyPart(ctx, dst, id, len(parts)+1, src, first, last)
		if err != nil {
			d.abort(ctx, dst, id)
			return err
		}
		parts = append(parts, pt)
	}
	if err := d.c.completeUpload(ctx, dst, id, parts); err != nil {
		d.abort(ctx, dst, id)
		return err
	}
	return nil
}

// Delete implements storage.Driver: the object at p, every object under
// it, and the uploads in progress there.
func (d *Driver) Delete(ctx context.Context, p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	found := false
	if _, err := d.stat(ctx, p); err == nil {
		found = true
		if err := d.c.remove(ctx, d.key(p)); err != nil {
			return fmt.Errorf("delete %s: %w", p, err)
		}
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	n, err := d.removeUnder(ctx, d.key(p)+"/")
	if err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	found = found || n > 0
	n, err = d.dropUploads(ctx, p)
	if err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	found = found || n > 0
	if !found {
		return errdefs.NotFound("storage path %q does not exist", p)
	}
	return nil
}

// removeUnder deletes every key beginning with prefix and says how many
// there were.
func (d *Driver) removeUnder(ctx context.Context, prefix string) (int, error) {
	total := 0
	err := d.c.list(ctx, prefix, "", 0, func(res *listResult) (bool, error) {
		keys := make([]string, 0, len(res.Contents))
		for _, e := range res.Contents {
			keys = append(keys, e.Key)
		}
		total += len(keys)
		return true, d.c.removeKeys(ctx, keys)
	})
	return total, err
}

// dropUploads removes the uploads at p and under it: their tails and
// their multipart uploads.
func (d *Driver) dropUploads(ctx context.Context, p string) (int, error) {
	n := 0
	if _, err := d.c.head(ctx, d.tailKey(p)); err == nil {
		n++
		if err := d.c.remove(ctx, d.tailKey(p)); err != nil {
			return n, err
		}
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return n, err
	}
	m, err := d.removeUnder(ctx, d.tailKey(p)+"/")
	if err != nil {
		return n, err
	}
	n += m
	ups, err := d.c.listUploads(ctx, d.key(p))
	if err != nil {
		return n, err
	}
	for _, u := range ups {
		if u.Key != d.key(p) && !strings.HasPrefix(u.Key, d.key(p)+"/") {
			continue
		}
		n++
		if err := d.c.abortUpload(ctx, u.Key, u.UploadID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return n, err
		}
	}
	return n, nil
}

// tailKey is the key of the tail the upload at p keeps when closed.
func (d *Driver) tailKey(p string) string { return d.root + reserved + "/" + p }
