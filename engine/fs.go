package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
)

// withRootfs runs fn with the container's root filesystem mounted,
// mounting it for the call when the container is stopped.
func (e *Engine) withRootfs(ctx context.Context, ref string, fn func(c *state.Container, rootfs string) error) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	lock, err := flock.Exclusive(ctx, e.containerPath(c.ID, lockName))
	if err != nil {
		return fmt.Errorf("lock container %s: %w", c.ID[:12], err)
	}
	defer func() { _ = lock.Unlock() }()
	rootfs := e.containerPath(c.ID, rootfsDir)
	if !mounted(rootfs) {
		if err := e.mountRootfs(c.ID); err != nil {
			return err
		}
		defer func() {
			if cur, err := e.Container(ctx, c.ID); err == nil && !active(cur.State.Status) {
				_ = e.unmountRootfs(c.ID)
			}
		}()
	}
	return fn(c, rootfs)
}

// Change is one line of diff: kind A (added), C (changed) or D (deleted).
type Change struct {
	Kind string
	Path string
}

// Diff lists what the container changed in its image's filesystem.
func (e *Engine) Diff(ctx context.Context, ref string) ([]Change, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	upper, err := e.Snapshots.UpperDir(c.ID)
	if err != nil {
		return nil, err
	}
	lowers, err := e.layerDirs(ctx, c)
	if err != nil {
		return nil, err
	}
	return diffUpper(upper, lowers)
}

// layerDirs are the container's image layers, top first.
func (e *Engine) layerDirs(ctx context.Context, c *state.Container) ([]string, error) {
	img, err := e.Images.Get(ctx, c.ImageID)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := len(img.DiffIDs) - 1; i >= 0; i-- {
		p, err := e.Snapshots.LayerPath(img.DiffIDs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// diffUpper walks an overlay upper directory: a whiteout is a deletion,
// anything present below is a change, the rest additions.
func diffUpper(upper string, lowers []string) ([]Change, error) {
	var out []Change
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == upper {
			return err
		}
		rel := "/" + strings.TrimPrefix(p, upper+"/")
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*unix.Stat_t); ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			out = append(out, Change{Kind: "D", Path: rel})
			return nil
		}
		kind := "A"
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
				kind = "C"
				break
			}
		}
		out = append(out, Change{Kind: kind, Path: rel})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// Export writes the container's whole filesystem as a tar stream.
func (e *Engine) Export(ctx context.Context, ref string, w io.Writer) error {
	return e.withRootfs(ctx, ref, func(_ *state.Container, rootfs string) error {
		tw := tar.NewWriter(w)
		if err := writeTree(ctx, tw, rootfs, ""); err != nil {
			return err
		}
		return tw.Close()
	})
}

// writeTree adds dir's content to tw under prefix, never following a
// symlink; hard links inside the tree stay links.
func writeTree(ctx context.Context, tw *tar.Writer, dir, prefix string) error {
	links := map[[2]uint64]string{}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(dir, p)
		name := path.Join(prefix, filepath.ToSlash(rel))
		if rel == "." {
			if prefix == "" {
				return nil
			}
			name = prefix
		}
		return writeEntry(tw, p, name, links)
	})
}

// writeEntry adds one file to tw.
func writeEntry(tw *tar.Writer, p, name string, links map[[2]uint64]string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	var link string
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	hdr.Name = name
	hdr.Uname, hdr.Gname = "", ""
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if st, ok := fi.Sys().(*unix.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			links[key] = name
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// CopyFrom writes a tar stream of path inside the container (a file or a
// directory, named by its base name) to w. The path is resolved inside
// the container's root: no symlink in it leads out.
func (e *Engine) CopyFrom(ctx context.Context, ref, src string, w io.Writer) error {
	return e.withRootfs(ctx, ref, func(_ *state.Container, rootfs string) error {
		root, err := os.OpenRoot(rootfs)
		if err != nil {
			return err
		}
		defer root.Close()
		rel := strings.TrimPrefix(path.Clean("/"+src), "/")
		if rel == "" {
			rel = "."
		}
		if _, err := root.Lstat(rel); err != nil {
			return copyPathError(src, err)
		}
		// Resolve through /proc/self/fd of the root's handle, so the walk
		// stays inside it.
		dirf, err := root.Open(".")
		if err != nil {
			return err
		}
		defer dirf.Close()
		real, err := resolveIn(root, rel)
		if err != nil {
			return copyPathError(src, err)
		}
		base := path.Base("/" + rel)
		if base == "/" {
			base = "."
		}
		tw := tar.NewWriter(w)
		if err := writeTree(ctx, tw, filepath.Join(fmt.Sprintf("/proc/self/fd/%d", dirf.Fd()), real), base); err != nil {
			return err
		}
		return tw.Close()
	})
}

// resolveIn follows the symlinks of every component but the last of rel
// inside root and returns the resulting path, still relative to root.
func resolveIn(root *os.Root, rel string) (string, error) {
	dir, file := path.Split(rel)
	if dir == "" {
		return rel, nil
	}
	sub, err := root.OpenRoot(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return "", err
	}
	defer sub.Close()
	// An os.Root opened through symlinks that stay inside: its own path
	// is what the kernel resolved.
	f, err := sub.Open(".")
	if err != nil {
		return "", err
	}
	defer f.Close()
	real, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return "", err
	}
	rootDir, err := root.Open(".")
	if err != nil {
		return "", err
	}
	defer rootDir.Close()
	top, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", rootDir.Fd()))
	if err != nil {
		return "", err
	}
	inner, ok := strings.CutPrefix(real, top)
	if !ok {
		return "", errdefs.Invalid("%s leads outside the container", rel)
	}
	return path.Join(strings.TrimPrefix(inner, "/"), file), nil
}

func copyPathError(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("could not find the file %s in container", p)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// CopyTo extracts a tar stream into the container at dst, an existing
// directory, or a new name in an existing directory (the stream's top
// entry is renamed to it). Every path is created inside the container's
// root: entries that would climb out or go through symlinks out are
// refused.
func (e *Engine) CopyTo(ctx context.Context, ref, dst string, r io.Reader) error {
	return e.withRootfs(ctx, ref, func(c *state.Container, rootfs string) error {
		if c.HostConfig.ReadonlyRootfs {
			return errdefs.Precondition("container rootfs is marked read-only")
		}
		root, err := os.OpenRoot(rootfs)
		if err != nil {
			return err
		}
		defer root.Close()
		rel := strings.TrimPrefix(path.Clean("/"+dst), "/")
		if rel == "" {
			rel = "."
		}
		dir, rename := rel, ""
		if fi, err := root.Stat(rel); err != nil || !fi.IsDir() {
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return copyPathError(dst, err)
			}
			dir, rename = path.Dir(rel), path.Base(rel)
			if fi, err := root.Stat(dir); err != nil || !fi.IsDir() {
				return errdefs.NotFound("could not find the directory %s in container", path.Dir("/"+rel))
			}
		}
		return extractInto(ctx, root, dir, rename, tar.NewReader(r))
	})
}

// extractInto unpacks tr under dir inside root, renaming the top-level
// entry when rename is set.
func extractInto(ctx context.Context, root *os.Root, dir, rename string, tr *tar.Reader) error {
	var top string
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		if name == ".." || strings.HasPrefix(name, "../") {
			return errdefs.Invalid("archive entry %q leads outside the destination", hdr.Name)
		}
		first, rest, _ := strings.Cut(name, "/")
		if top == "" {
			top = first
		}
		if rename != "" && first == top {
			name = path.Join(rename, rest)
		}
		if err := extractEntry(root, path.Join(dir, name), hdr, tr); err != nil {
			return fmt.Errorf("copy %s: %w", hdr.Name, err)
		}
	}
}

func extractEntry(root *os.Root, name string, hdr *tar.Header, r io.Reader) error {
	mode := os.FileMode(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(name, 0o755); err != nil {
			return err
		}
	case tar.TypeReg:
		_ = root.Remove(name)
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	case tar.TypeSymlink:
		_ = root.Remove(name)
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
		return root.Lchown(name, hdr.Uid, hdr.Gid)
	case tar.TypeLink:
		_ = root.Remove(name)
		return root.Link(strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/"), name)
	default:
		return nil // devices and fifos are not copied
	}
	if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := root.Chmod(name, mode); err != nil {
		return err
	}
	return root.Chtimes(name, hdr.ModTime, hdr.ModTime)
}

// ExtractTar unpacks a tar stream under dir inside root, the top entry
// renamed when rename is set; cp uses it on the local side too.
func ExtractTar(ctx context.Context, root *os.Root, dir, rename string, tr *tar.Reader) error {
	return extractInto(ctx, root, dir, rename, tr)
}

// TarPath writes a local file or directory as a tar stream whose top
// entry is its base name.
func TarPath(ctx context.Context, w io.Writer, src string) error {
	tw := tar.NewWriter(w)
	if err := writeTree(ctx, tw, src, filepath.Base(filepath.Clean(src))); err != nil {
		return err
	}
	return tw.Close()
}
