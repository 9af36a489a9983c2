package fs

import (
	"context"
	"fmt"
	iofs "io/fs"
	"slices"
	"strings"
	"syscall"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// List returns the objects and directories directly in the directory
// prefix, as full paths sorted as strings.
func (d *Driver) List(ctx context.Context, prefix string) ([]string, error) {
	if err := checkPath(prefix); err != nil {
		return nil, err
	}
	entries, err := d.readDir(prefix)
	if err != nil {
		return nil, readErr("list", prefix, err)
	}
	paths := make([]string, 0, len(entries))
	for _, e := range entries {
		paths = append(paths, prefix+"/"+e.Name())
	}
	// One prefix before every name: sorting the paths sorts the names.
	slices.Sort(paths)
	return paths, nil
}

// Walk calls fn for each object under the directory prefix, in lexical
// order of path, and returns fn's first error as it is.
func (d *Driver) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := checkPath(prefix); err != nil {
		return err
	}
	fi, err := d.root.Stat(prefix)
	if err != nil {
		return readErr("walk", prefix, err)
	}
	if !fi.IsDir() {
		return errdefs.NotFound("walk %s: not a directory", prefix)
	}
	return d.walk(ctx, prefix, fn)
}

// walk visits dir depth first. Within a directory it orders entries by
// name with "/" after each directory's name, which is where the paths
// under it fall in lexical order: "a.txt" comes before "a/x" as '.' sorts
// before '/', though "a" sorts before "a.txt".
func (d *Driver) walk(ctx context.Context, dir string, fn func(storage.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("walk %s: %w", dir, err)
	}
	entries, err := d.readDir(dir)
	if missing(err) {
		// fn, or another process, removed it since it was listed.
		return nil
	}
	if err != nil {
		return fmt.Errorf("walk %s: %w", dir, bare(err))
	}
	slices.SortFunc(entries, func(a, b iofs.DirEntry) int {
		return strings.Compare(sortKey(a), sortKey(b))
	})
	for _, e := range entries {
		p := dir + "/" + e.Name()
		if e.IsDir() {
			if err := d.walk(ctx, p, fn); err != nil {
				return err
			}
			continue
		}
		fi, err := e.Info()
		if missing(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, bare(err))
		}
		if err := fn(storage.Info{Path: p, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// sortKey is the name walk orders an entry by.
func sortKey(e iofs.DirEntry) string {
	if e.IsDir() {
		return e.Name() + "/"
	}
	return e.Name()
}

// readDir returns the regular files and directories in dir, leaving out
// temporary files and anything else (links, sockets) the driver does not
// make. A dir that is a file is missing.
func (d *Driver) readDir(dir string) ([]iofs.DirEntry, error) {
	f, err := d.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &iofs.PathError{Op: "readdir", Path: dir, Err: syscall.ENOTDIR}
	}
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	kept := entries[:0]
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if e.IsDir() || e.Type().IsRegular() {
			kept = append(kept, e)
		}
	}
	return kept, nil
}
