package source

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-containers/berth/internal/errdefs"
)

// maxLinks bounds the symlinks one resolution follows, as the kernel's
// ELOOP limit does.
const maxLinks = 255

// escapeError says a symlink led out of a build context.
type escapeError struct{ link string }

func (e *escapeError) Error() string {
	return e.link + " is a symlink pointing outside the build context"
}

// clean turns a source as written into a root-relative, slash-separated
// path ("." for the root): a leading "/" or "./" means the root. A path
// that climbs out of the root is refused.
func (c *Context) clean(src string) (string, error) {
	p := filepath.ToSlash(src)
	p = strings.TrimLeft(p, "/")
	p = path.Clean(p)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errdefs.Invalid("source %s: path is outside the build context", src)
	}
	return p, nil
}

// host is the host path of a resolved root-relative path.
func (c *Context) host(rel string) string {
	if rel == "" || rel == "." {
		return c.dir
	}
	return filepath.Join(c.dir, filepath.FromSlash(rel))
}

// resolve follows rel inside the root, component by component, following
// symlinks in the parents and, when follow is set, in the last component.
// It returns the resolved root-relative path ("." for the root). In a root
// filesystem absolute targets start again at the root and ".." stops
// there; in a build context a link that leaves it is an *escapeError.
func (c *Context) resolve(rel string, follow bool) (string, error) {
	todo := splitPath(rel)
	var done []string
	links := 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				if c.rootfs {
					continue
				}
				return "", &escapeError{link: rel}
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(done, comp)...)
		fi, err := os.Lstat(c.host(cur))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 || (len(todo) == 0 && !follow) {
			done = append(done, comp)
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", rel)
		}
		target, err := os.Readlink(c.host(cur))
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			inside, ok := c.inside(target)
			if !ok {
				return "", &escapeError{link: cur}
			}
			done, target = nil, inside
		}
		if !c.rootfs && climbsOut(done, target) {
			return "", &escapeError{link: cur}
		}
		todo = append(splitPath(target), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// inside maps an absolute symlink target to a root-relative path: in a
// root filesystem it is one already; in a build context it must name a
// host path under the context.
func (c *Context) inside(target string) (string, bool) {
	if c.rootfs {
		return strings.TrimLeft(filepath.ToSlash(target), "/"), true
	}
	r, err := filepath.Rel(c.dir, filepath.Clean(target))
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// climbsOut reports whether a relative target, read from the directory
// done, goes above the root at some point.
func climbsOut(done []string, target string) bool {
	depth := len(done)
	for _, comp := range splitPath(target) {
		switch comp {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

func splitPath(p string) []string {
	if p == "" || p == "." {
		return nil
	}
	return strings.Split(filepath.ToSlash(p), "/")
}

// resolveError turns a resolution failure of source src into the error a
// user reads.
func (c *Context) resolveError(src string, err error) error {
	var esc *escapeError
	switch {
	case errors.As(err, &esc):
		return errdefs.Invalid("source %s: %s", src, esc.Error())
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrInvalid), isNotDir(err):
		return c.notFound(src)
	}
	return fmt.Errorf("source %s: %w", src, err)
}

// notFound is the error for a source that names nothing.
func (c *Context) notFound(src string) error {
	if c.rootfs {
		return errdefs.NotFound("source %s: no such file or directory", src)
	}
	return errdefs.NotFound("source %s: no such file or directory in the build context", src)
}

// isNotDir reports ENOTDIR: a path through a file names nothing.
func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
