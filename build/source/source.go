// Package source is what a build reads files from: the build context (a
// directory or a tar stream, filtered by .dockerignore rules) or another
// stage's root filesystem. It resolves COPY and ADD sources to files,
// walks them as the copy sees them and hashes them for the build cache.
package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth-containers/berth/build/source/archive"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Context is a tree a build reads files from: the build context (a
// directory, with .dockerignore rules) or a stage's root filesystem (no
// rules).
type Context struct {
	dir string
	// rootfs says dir is a root filesystem: absolute symlinks resolve
	// inside it and ".." stops at its top, so nothing can escape. A build
	// context instead refuses symlinks that leave it.
	rootfs bool
	// pm holds the ignore rules; nil when there are none. Its lazily
	// compiled patterns are not safe for concurrent use, hence mu, which
	// views made by Excluding share.
	pm *patternmatcher.PatternMatcher
	mu *sync.Mutex
	// excl holds COPY --exclude's patterns in a view made by Excluding.
	excl *patternmatcher.PatternMatcher
	// tmp is a directory Close removes (a context unpacked from a tar).
	tmp string
}

// FromDir opens a directory as the build context. ignoreFile, if not "",
// is a path (relative to dir or absolute) of a Dockerfile-specific ignore
// file (<Dockerfile>.dockerignore), which wins over .dockerignore when it
// exists; otherwise dir/.dockerignore is read if present.
func FromDir(dir, ignoreFile string) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	// Absolute symlink targets are compared with this path, so it must
	// be the real one.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound("build context %s: no such directory", dir)
		}
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, errdefs.Invalid("build context %s: not a directory", dir)
	}
	c := &Context{dir: real, mu: new(sync.Mutex)}
	patterns, err := readIgnore(real, ignoreFile)
	if err != nil {
		return nil, err
	}
	if len(patterns) > 0 {
		if c.pm, err = patternmatcher.New(patterns); err != nil {
			return nil, errdefs.Invalid("ignore rules: %v", err)
		}
	}
	return c, nil
}

// readIgnore reads the ignore rules that apply: the Dockerfile's own
// ignore file when it exists, else the context's .dockerignore.
func readIgnore(dir, ignoreFile string) ([]string, error) {
	candidates := []string{}
	if ignoreFile != "" {
		if !filepath.IsAbs(ignoreFile) {
			ignoreFile = filepath.Join(dir, ignoreFile)
		}
		candidates = append(candidates, ignoreFile)
	}
	candidates = append(candidates, filepath.Join(dir, ".dockerignore"))
	for _, p := range candidates {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read ignore file: %w", err)
		}
		patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
		if err != nil {
			return nil, errdefs.Invalid("ignore file %s: %v", filepath.Base(p), err)
		}
		return patterns, nil
	}
	return nil, nil
}

// FromTar unpacks a build context sent as a tar stream (plain, gzip,
// bzip2, xz or zstd) into a new directory under tmpRoot and opens it like
// FromDir. Entries with absolute names or names leaving the directory are
// refused, and no symlink is followed while unpacking. Close removes the
// directory.
func FromTar(r io.Reader, tmpRoot, ignoreFile string) (*Context, error) {
	dir, err := os.MkdirTemp(tmpRoot, "context-")
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if err := archive.Extract(context.Background(), r, dir, archive.Options{NoFollow: true}); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("build context: %w", err)
	}
	c, err := FromDir(dir, ignoreFile)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	c.tmp = dir
	return c, nil
}

// FromRoot opens a root filesystem (another stage's, or an image's) as a
// source: no ignore rules, and symlinks resolve inside dir as if dir were
// "/".
func FromRoot(dir string) *Context {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return &Context{dir: filepath.Clean(dir), rootfs: true, mu: new(sync.Mutex)}
}

// Excluding is a view of c that also leaves out what the patterns (COPY
// --exclude's, in .dockerignore syntax) match: a matched source whose
// path or name matches, and an entry below a matched directory whose path
// relative to that directory matches. The view shares c's directory and
// is not to be closed.
func (c *Context) Excluding(patterns []string) (*Context, error) {
	if len(patterns) == 0 {
		return c, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, errdefs.Invalid("--exclude: %v", err)
	}
	return &Context{dir: c.dir, rootfs: c.rootfs, pm: c.pm, mu: c.mu, excl: pm}, nil
}

// Dir is the directory the context reads.
func (c *Context) Dir() string { return c.dir }

// Close removes what the context created (the unpacked tar); a context
// over an existing directory leaves it alone.
func (c *Context) Close() error {
	if c.tmp == "" {
		return nil
	}
	if err := os.RemoveAll(c.tmp); err != nil {
		return fmt.Errorf("remove build context: %w", err)
	}
	c.tmp = ""
	return nil
}

// ReadFile reads a file of the context by a relative name, resolved
// inside it; the ignore rules do not apply (Docker reads an ignored
// Dockerfile all the same).
func (c *Context) ReadFile(name string) ([]byte, error) {
	rel, err := c.clean(name)
	if err != nil {
		return nil, err
	}
	res, err := c.resolve(rel, true)
	if err != nil {
		return nil, c.resolveError(name, err)
	}
	data, err := os.ReadFile(c.host(res))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound("%s: no such file in the build context", name)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}
