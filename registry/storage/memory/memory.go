// Package memory is a storage.Driver that keeps its objects in process
// memory. It is for tests: several registries given one Driver behave as
// replicas on one backend. Uploads in progress are kept apart from
// objects, as a real backend keeps them, so an upload is readable only
// after it is committed.
package memory

import (
	"bytes"
	"context"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// Driver is an in-memory storage.Driver, safe for concurrent use.
type Driver struct {
	mu      sync.Mutex
	objects map[string]object
	uploads map[string][]byte
}

type object struct {
	data    []byte
	modTime time.Time
}

// New makes an empty Driver.
func New() *Driver {
	return &Driver{objects: map[string]object{}, uploads: map[string][]byte{}}
}

var _ storage.Driver = (*Driver)(nil)

// Name is "memory".
func (d *Driver) Name() string { return "memory" }

// checkPath refuses the paths the storage package forbids.
func checkPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return errdefs.Invalid("storage path %q: not a relative path", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return errdefs.Invalid("storage path %q: bad element %q", p, el)
		}
	}
	return nil
}

// under reports whether p lies inside the directory dir.
func under(p, dir string) bool { return strings.HasPrefix(p, dir+"/") }

// Reader implements storage.Driver.
func (d *Driver) Reader(_ context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	d.mu.Lock()
	o, ok := d.objects[p]
	d.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFound("storage object %q does not exist", p)
	}
	if offset < 0 || offset > int64(len(o.data)) {
		return nil, errdefs.Invalid("storage object %q: offset %d out of range", p, offset)
	}
	return io.NopCloser(bytes.NewReader(o.data[offset:])), nil
}

// Stat implements storage.Driver.
func (d *Driver) Stat(_ context.Context, p string) (storage.Info, error) {
	if err := checkPath(p); err != nil {
		return storage.Info{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.objects[p]; ok {
		return storage.Info{Path: p, Size: int64(len(o.data)), ModTime: o.modTime}, nil
	}
	if d.isDirLocked(p) {
		return storage.Info{Path: p, IsDir: true}, nil
	}
	return storage.Info{}, errdefs.NotFound("storage path %q does not exist", p)
}

// isDirLocked reports whether anything, objects or uploads, lies under p.
func (d *Driver) isDirLocked(p string) bool {
	for k := range d.objects {
		if under(k, p) {
			return true
		}
	}
	for k := range d.uploads {
		if under(k, p) {
			return true
		}
	}
	return false
}

// Put implements storage.Driver.
func (d *Driver) Put(ctx context.Context, p string, r io.Reader) (int64, error) {
	if err := checkPath(p); err != nil {
		return 0, err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d.mu.Lock()
	d.objects[p] = object{data: b, modTime: time.Now()}
	d.mu.Unlock()
	return int64(len(b)), nil
}

// Writer implements storage.Driver.
func (d *Driver) Writer(_ context.Context, p string, resume bool) (storage.Writer, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.uploads[p]; resume && !ok {
		return nil, errdefs.NotFound("upload %q does not exist", p)
	}
	if !resume {
		d.uploads[p] = []byte{}
	}
	return &writer{d: d, path: p}, nil
}

// List implements storage.Driver.
func (d *Driver) List(_ context.Context, prefix string) ([]string, error) {
	if err := checkPath(prefix); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[string]bool{}
	add := func(k string) {
		if !under(k, prefix) {
			return
		}
		rest := k[len(prefix)+1:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		seen[prefix+"/"+rest] = true
	}
	for k := range d.objects {
		add(k)
	}
	for k := range d.uploads {
		add(k)
	}
	if len(seen) == 0 {
		return nil, errdefs.NotFound("storage directory %q does not exist", prefix)
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// Walk implements storage.Driver.
func (d *Driver) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := checkPath(prefix); err != nil {
		return err
	}
	d.mu.Lock()
	var infos []storage.Info
	if _, isObject := d.objects[prefix]; isObject {
		d.mu.Unlock()
		return errdefs.NotFound("storage directory %q is an object", prefix)
	}
	for k, o := range d.objects {
		if under(k, prefix) {
			infos = append(infos, storage.Info{Path: k, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	d.mu.Unlock()
	if len(infos) == 0 {
		return errdefs.NotFound("storage directory %q does not exist", prefix)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Path < infos[j].Path })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Move implements storage.Driver.
func (d *Driver) Move(_ context.Context, src, dst string) error {
	if err := checkPath(src); err != nil {
		return err
	}
	if err := checkPath(dst); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.objects[src]
	if !ok {
		return errdefs.NotFound("storage object %q does not exist", src)
	}
	delete(d.objects, src)
	d.objects[dst] = o
	return nil
}

// Delete implements storage.Driver.
func (d *Driver) Delete(_ context.Context, p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	found := false
	for k := range d.objects {
		if k == p || under(k, p) {
			delete(d.objects, k)
			found = true
		}
	}
	for k := range d.uploads {
		if k == p || under(k, p) {
			delete(d.uploads, k)
			found = true
		}
	}
	if !found {
		return errdefs.NotFound("storage path %q does not exist", p)
	}
	return nil
}

// ObjectCount is how many committed objects the driver holds, for tests
// that check that refused input stored nothing.
func (d *Driver) ObjectCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.objects)
}

// Paths lists the committed objects' paths, sorted.
func (d *Driver) Paths() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.objects))
	for k := range d.objects {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writer appends straight to the shared upload, so a Writer resumed by
// another registry sees every byte written before.
type writer struct {
	d      *Driver
	path   string
	closed bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if w.closed {
		return 0, storage.ErrClosed
	}
	b, ok := w.d.uploads[w.path]
	if !ok {
		return 0, errdefs.NotFound("upload %q was removed", w.path)
	}
	w.d.uploads[w.path] = append(b, p...)
	return len(p), nil
}

func (w *writer) Size() int64 {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return int64(len(w.d.uploads[w.path]))
}

func (w *writer) Close() error {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.closed = true
	return nil
}

func (w *writer) Commit(_ context.Context) error {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if w.closed {
		return storage.ErrClosed
	}
	w.closed = true
	b, ok := w.d.uploads[w.path]
	if !ok {
		return errdefs.NotFound("upload %q was removed", w.path)
	}
	delete(w.d.uploads, w.path)
	w.d.objects[w.path] = object{data: b, modTime: time.Now()}
	return nil
}

func (w *writer) Cancel(_ context.Context) error {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if w.closed {
		return storage.ErrClosed
	}
	w.closed = true
	delete(w.d.uploads, w.path)
	return nil
}
