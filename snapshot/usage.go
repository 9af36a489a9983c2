package snapshot

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// Usage is the space a directory tree takes.
type Usage struct {
	// Size is the bytes allocated on disk (hard-linked files counted once).
	Size int64
	// Inodes is the number of distinct files, directories and links.
	Inodes int64
}

// DirUsage measures any directory (a volume's data) as the snapshotter
// measures its own.
func DirUsage(ctx context.Context, dir string) (Usage, error) { return diskUsage(ctx, dir) }

// diskUsage walks dir like du(1), never following symlinks.
func diskUsage(ctx context.Context, dir string) (Usage, error) {
	var u Usage
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("stat %s: no unix attributes", p)
		}
		if st.Nlink > 1 && !fi.IsDir() {
			id := [2]uint64{st.Dev, st.Ino}
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	return u, err
}
