package dns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Source supplies the records the resolver answers from. Records is called
// for every query and every listener rescan, so it must be cheap when
// nothing changed. On an error it may still return the last good records,
// which the resolver then keeps using.
type Source interface {
	Records(ctx context.Context) (*Records, error)
}

// StaticSource serves fixed records.
type StaticSource struct{ R *Records }

// Records returns the fixed records.
func (s StaticSource) Records(context.Context) (*Records, error) { return s.R, nil }

// FileSource reads records from a file written by WriteFile, re-reading it
// only when its identity changes: WriteFile renames a new inode over the
// old one, so (device, inode, size, mtime, ctime) differ after every write
// even when two writes fall in the same timestamp tick. A missing file
// holds no networks.
type FileSource struct {
	path     string
	interval time.Duration

	mu        sync.Mutex // serialises reloads
	cur       atomic.Pointer[fileState]
	lastCheck atomic.Int64 // unix nanoseconds of the last stat
}

// fileState is one loaded version of the file.
type fileState struct {
	key fileKey
	rec *Records
}

// fileKey identifies one version of the file.
type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
	missing      bool
}

// NewFileSource returns a source reading path. With interval 0 every call
// checks the file with one stat (about a microsecond), so a container is
// resolvable as soon as WriteFile returns; a positive interval skips the
// stat when the previous one is more recent, bounding staleness by it.
func NewFileSource(path string, interval time.Duration) *FileSource {
	return &FileSource{path: path, interval: interval}
}

// Records returns the file's current records.
func (s *FileSource) Records(context.Context) (*Records, error) {
	cur := s.cur.Load()
	if cur != nil && s.interval > 0 {
		if time.Now().UnixNano()-s.lastCheck.Load() < int64(s.interval) {
			return cur.rec, nil
		}
	}
	key, err := statKey(s.path)
	s.lastCheck.Store(time.Now().UnixNano())
	if err != nil {
		return recordsOf(cur), err
	}
	if cur != nil && cur.key == key {
		return cur.rec, nil
	}
	return s.reload()
}

func recordsOf(st *fileState) *Records {
	if st == nil {
		return nil
	}
	return st.rec
}

// reload reads the file under the lock; concurrent callers that saw the
// same change wait and share one read. A file that does not parse keeps
// the previous records and is not read again until it changes.
func (s *FileSource) reload() (*Records, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.cur.Load()
	key, rec, err := load(s.path)
	if prev != nil && prev.key == key && err == nil {
		return prev.rec, nil
	}
	if err != nil {
		if rec = recordsOf(prev); rec == nil {
			rec = &Records{}
		}
	}
	s.cur.Store(&fileState{key: key, rec: rec})
	return rec, err
}

// load reads the file and the identity of what it read (fstat of the open
// file, so a rename between stat and open cannot pair new contents with an
// old identity).
func load(path string) (fileKey, *Records, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileKey{missing: true}, &Records{}, nil
	}
	if err != nil {
		return fileKey{}, nil, fmt.Errorf("open dns records: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileKey{}, nil, fmt.Errorf("stat dns records: %w", err)
	}
	key := keyOf(fi)
	data, err := io.ReadAll(f)
	if err != nil {
		return key, nil, fmt.Errorf("read dns records: %w", err)
	}
	cfg, err := decodeConfig(data, path)
	if err != nil {
		return key, nil, err
	}
	rec, err := Compile(cfg)
	if err != nil {
		return key, nil, fmt.Errorf("dns records %s: %w", path, err)
	}
	return key, rec, nil
}

func statKey(path string) (fileKey, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileKey{missing: true}, nil
	}
	if err != nil {
		return fileKey{}, fmt.Errorf("stat dns records: %w", err)
	}
	return keyOf(fi), nil
}

func keyOf(fi fs.FileInfo) fileKey {
	k := fileKey{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = st.Dev, st.Ino
		k.ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return k
}
