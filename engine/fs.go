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
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"

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
		if err := e.mountRootfs(c.ID, false); err != nil {
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
// anything present below is a change, the rest additions. A directory
// that exists below, or that starting the container made
// (runtimefiles.go), is reported only when something under it is; the
// runtime's own files are left out.
func diffUpper(upper string, lowers []string) ([]Change, error) {
	var out []Change
	reported := map[string]bool{}
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == upper {
			return err
		}
		name := strings.TrimPrefix(p, upper+"/")
		rel := "/" + name
		if runtimeFiles[name] {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		kind := "A"
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			kind = "D"
		} else if inLowers(lowers, rel) || fi.IsDir() && mountPointDirs[name] {
			kind = "C"
			if fi.IsDir() {
				return nil // reported below if a child is
			}
		}
		out = append(out, Change{Kind: kind, Path: rel})
		reported[rel] = true
		return nil
	})
	// Parents of what changed are changed too, as Docker lists them.
	for _, c := range append([]Change(nil), out...) {
		for dir := path.Dir(c.Path); dir != "/"; dir = path.Dir(dir) {
			if !reported[dir] {
				reported[dir] = true
				out = append(out, Change{Kind: "C", Path: dir})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

func inLowers(lowers []string, rel string) bool {
	for _, l := range lowers {
		if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
			return true
		}
	}
	return false
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
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
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
// directory, named by its base name) to w. Symlinks on the way are
// resolved inside the container's root, as if chrooted there, so none
// leads out; a symlink as the last component is copied as a link.
func (e *Engine) CopyFrom(ctx context.Context, ref, src string, w io.Writer) error {
	return e.withRootfs(ctx, ref, func(_ *state.Container, rootfs string) error {
		clean := path.Clean("/" + src)
		full := rootfs
		name := "."
		if clean != "/" {
			dir, err := securejoin.SecureJoin(rootfs, path.Dir(clean))
			if err != nil {
				return copyPathError(src, err)
			}
			full, name = filepath.Join(dir, path.Base(clean)), path.Base(clean)
		}
		if _, err := os.Lstat(full); err != nil {
			return copyPathError(src, err)
		}
		tw := tar.NewWriter(w)
		if err := writeTree(ctx, tw, full, name); err != nil {
			return err
		}
		return tw.Close()
	})
}

func copyPathError(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("could not find the file %s in container", p)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// CopyTo extracts a tar stream into the container at dst: into it when it
// is a directory, else as dst (the stream's top entry renamed) in its
// existing parent directory. With intoDir, dst must be a directory (a
// tar stream from stdin). Paths are resolved inside the container's root
// and the extraction cannot leave the target directory.
func (e *Engine) CopyTo(ctx context.Context, ref, dst string, r io.Reader, intoDir bool) error {
	return e.withRootfs(ctx, ref, func(c *state.Container, rootfs string) error {
		if c.HostConfig.ReadonlyRootfs {
			return errdefs.Precondition("container rootfs is marked read-only")
		}
		full, err := securejoin.SecureJoin(rootfs, dst)
		if err != nil {
			return copyPathError(dst, err)
		}
		dir, rename := full, ""
		fi, err := os.Stat(full)
		switch {
		case err == nil && fi.IsDir():
		case intoDir && err == nil:
			return errdefs.Invalid("destination %q must be a directory", ref+":"+dst)
		case intoDir && errors.Is(err, fs.ErrNotExist):
			return errdefs.NotFound("could not find the directory %s in container", dst)
		case err == nil || errors.Is(err, fs.ErrNotExist):
			dir, rename = filepath.Dir(full), filepath.Base(full)
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return errdefs.NotFound("could not find the directory %s in container", path.Dir(path.Clean("/"+dst)))
			}
		default:
			return copyPathError(dst, err)
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			return err
		}
		defer root.Close()
		return extractInto(ctx, root, ".", rename, tar.NewReader(r))
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
		if hdr.Typeflag == tar.TypeLink {
			// A hard link names another entry of the archive: rename it
			// the same way.
			target := path.Clean(strings.TrimPrefix(hdr.Linkname, "/"))
			if lf, lrest, _ := strings.Cut(target, "/"); rename != "" && lf == top {
				target = path.Join(rename, lrest)
			}
			hdr.Linkname = path.Join(dir, target)
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
		return root.Link(hdr.Linkname, name)
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
