package source

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/ctxio"
)

// DigestOptions say which metadata counts in a Digest.
type DigestOptions struct {
	// Ownership hashes uid/gid. COPY --from a stage keeps ownership, so it
	// matters there; files from the context become root-owned, so there
	// it must not.
	Ownership bool
}

// bufPool holds the buffers file contents stream through.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Digest returns one sha256 over the matched trees as Walk sees them. Each
// entry contributes its path, type, permission and special bits, symlink
// target, content hash, device numbers for device nodes, and uid/gid when
// asked; never times, inode or filesystem device numbers, so a fresh copy
// of unchanged files hashes the same. Walk's lexical order makes it
// independent of directory read order.
func (c *Context) Digest(ctx context.Context, matches []Match, o DigestOptions) (digest.Digest, error) {
	h := sha256.New()
	for _, m := range matches {
		field(h, "match")
		field(h, m.Rel)
		err := c.Walk(m, func(rel, abs string, info fs.FileInfo) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return hashEntry(ctx, h, rel, abs, info, o)
		})
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", m.Source, err)
		}
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

// field writes s length-prefixed, so no two entry lists hash alike.
func field(h hash.Hash, s string) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
	h.Write([]byte(s))
}

// hashEntry adds one entry's record to h.
func hashEntry(ctx context.Context, h hash.Hash, rel, abs string, info fs.FileInfo, o DigestOptions) error {
	mode := info.Mode()
	field(h, "entry")
	field(h, rel)
	field(h, typeOf(mode))
	field(h, strconv.FormatUint(uint64(mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)), 8))
	st, _ := info.Sys().(*syscall.Stat_t)
	if o.Ownership && st != nil {
		field(h, strconv.FormatUint(uint64(st.Uid), 10)+":"+strconv.FormatUint(uint64(st.Gid), 10))
	}
	switch {
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(abs)
		if err != nil {
			return err
		}
		field(h, target)
	case mode&fs.ModeDevice != 0 && st != nil:
		field(h, strconv.FormatUint(st.Rdev, 10))
	case mode.IsRegular():
		sum, err := fileSum(ctx, abs)
		if err != nil {
			return err
		}
		field(h, sum)
	}
	return nil
}

// typeOf names a file type.
func typeOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "char"
	case m&fs.ModeDevice != 0:
		return "block"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "file"
}

// fileSum streams a file through sha256.
func fileSum(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	fh := sha256.New()
	if _, err := io.CopyBuffer(fh, ctxio.Reader(ctx, f), *buf); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(fh.Sum(nil)), nil
}
