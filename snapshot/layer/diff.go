package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DiffOptions tunes Diff.
type DiffOptions struct {
	// ClampTime, when not zero, caps every modification time written, as
	// SOURCE_DATE_EPOCH does for reproducible builds.
	ClampTime time.Time
	// Exclude, when set, is asked about every entry by its path relative
	// to the upper directory ("etc/hosts"); an excluded directory is left
	// out with everything under it. It keeps the mount points a runtime
	// makes in a container's root (/etc/hosts, /proc, ...) out of commits.
	Exclude func(name string) bool
}

// Diff writes the overlay upper directory upper as an uncompressed layer
// tar to w: overlay whiteouts become .wh.NAME entries, opaque directories
// get a .wh..wh..opq entry, files hard-linked within upper are written once
// and then as links, and extended attributes travel as PAX records.
// Entries come in sorted order with normalised headers (no user or group
// names, whole-second modification times, no access or change times), so
// the same tree always gives the same bytes. The upper directory should
// not be changing while Diff runs; if a file changes size Diff fails.
func Diff(ctx context.Context, w io.Writer, upper string, opts DiffOptions) error {
	fd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open upper directory %s: %w", upper, err)
	}
	defer unix.Close(fd)
	d := &differ{ctx: ctx, tw: tar.NewWriter(w), opts: opts, links: map[inode]string{}}
	if err := d.walk(fd, ""); err != nil {
		return err
	}
	if err := d.tw.Close(); err != nil {
		return fmt.Errorf("finish layer tar: %w", err)
	}
	return nil
}

// inode identifies a file for hardlink detection.
type inode struct{ dev, ino uint64 }

type differ struct {
	ctx   context.Context
	tw    *tar.Writer
	opts  DiffOptions
	links map[inode]string // first path written for each hard-linked inode
}

// fileInfo is what Diff knows of one upper entry before making its header.
type fileInfo struct {
	mode     uint32 // st_mode
	uid, gid int
	size     int64
	mtime    time.Time
	rdev     uint64
	symlink  string            // target, for symlinks
	linkTo   string            // earlier path of the same inode, for hardlinks
	xattrs   map[string]string // already filtered
}

// epoch is the time given to whiteout markers, which have no meaningful
// time of their own; a fixed one keeps diffs reproducible.
var epoch = time.Unix(0, 0).UTC()

func (d *differ) walk(dfd int, rel string) error {
	names, err := readNames(dfd, rel)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if err := d.entry(dfd, rel, name); err != nil {
			return err
		}
	}
	return nil
}

func (d *differ) entry(dfd int, rel, name string) error {
	p := path.Join(rel, name)
	if d.opts.Exclude != nil && d.opts.Exclude(p) {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	typ := st.Mode & unix.S_IFMT
	switch {
	case typ == unix.S_IFCHR && st.Rdev == 0:
		return d.write(whiteoutHeader(rel, name))
	case typ == unix.S_IFSOCK:
		return nil // sockets belong to a running process, not an image
	}
	xs, err := listXattrs(procPath(dfd, name))
	if err != nil {
		return fmt.Errorf("extended attributes of %s: %w", p, err)
	}
	kept, opaque, err := filterXattrs(xs)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	fi := fileInfo{
		mode: st.Mode, uid: int(st.Uid), gid: int(st.Gid), size: st.Size,
		mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), rdev: st.Rdev, xattrs: kept,
	}
	if typ == unix.S_IFLNK {
		if fi.symlink, err = readlinkAt(dfd, name); err != nil {
			return fmt.Errorf("read symlink %s: %w", p, err)
		}
	}
	if typ == unix.S_IFREG && st.Nlink > 1 {
		id := inode{dev: st.Dev, ino: st.Ino}
		if first, ok := d.links[id]; ok {
			fi.linkTo = first
		} else {
			d.links[id] = p
		}
	}
	hdr, err := buildHeader(p, fi, d.opts)
	if err != nil {
		return err
	}
	if err := d.write(hdr); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return d.content(dfd, name, p, hdr.Size)
	case tar.TypeDir:
		if opaque {
			if err := d.write(opaqueHeader(p)); err != nil {
				return err
			}
		}
		sub, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open directory %s: %w", p, err)
		}
		defer unix.Close(sub)
		return d.walk(sub, p)
	}
	return nil
}

func (d *differ) write(hdr *tar.Header) error {
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write header of %s: %w", hdr.Name, err)
	}
	return nil
}

func (d *differ) content(dfd int, name, p string, size int64) error {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if _, err := io.CopyN(d.tw, &ctxReader{ctx: d.ctx, r: f}, size); err != nil {
		return fmt.Errorf("copy %s (did it change during the diff?): %w", p, err)
	}
	return nil
}

// buildHeader makes the normalised tar header for one upper entry.
func buildHeader(name string, fi fileInfo, opts DiffOptions) (*tar.Header, error) {
	mtime := fi.mtime.Truncate(time.Second).UTC()
	if !opts.ClampTime.IsZero() && mtime.After(opts.ClampTime) {
		mtime = opts.ClampTime.Truncate(time.Second).UTC()
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(fi.mode & 0o7777),
		Uid:     fi.uid,
		Gid:     fi.gid,
		ModTime: mtime,
		Format:  tar.FormatPAX,
	}
	if len(fi.xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(fi.xattrs))
		for k, v := range fi.xattrs {
			hdr.PAXRecords[paxXattrPrefix+k] = v
		}
	}
	switch fi.mode & unix.S_IFMT {
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = fi.size
		if fi.linkTo != "" {
			hdr.Typeflag, hdr.Size, hdr.Linkname = tar.TypeLink, 0, fi.linkTo
		}
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = fi.symlink
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if fi.mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(fi.rdev))
		hdr.Devminor = int64(unix.Minor(fi.rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, fmt.Errorf("%s: file type %#o: %w", name, fi.mode&unix.S_IFMT, ErrUnsupported)
	}
	return hdr, nil
}

func whiteoutHeader(dir, name string) *tar.Header {
	return markerHeader(path.Join(dir, WhiteoutPrefix+name))
}

func opaqueHeader(dir string) *tar.Header {
	return markerHeader(path.Join(dir, WhiteoutOpaque))
}

func markerHeader(name string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, ModTime: epoch, Format: tar.FormatPAX}
}

// filterXattrs keeps the attributes a layer should carry and reports
// whether the directory is opaque. Overlay's bookkeeping attributes stay
// behind; a redirect or metacopy cannot be expressed in a layer, so Diff
// refuses them (mounts from this package turn both off).
func filterXattrs(xs map[string]string) (map[string]string, bool, error) {
	kept := map[string]string{}
	opaque := false
	for k, v := range xs {
		switch {
		case k == overlayOpaqueXattr || k == userOverlayOpaqueXattr:
			opaque = opaque || v == "y"
		case strings.HasSuffix(k, "overlay.redirect") || strings.HasSuffix(k, "overlay.metacopy"):
			return nil, false, fmt.Errorf("overlay attribute %s cannot be expressed in a layer: %w", k, ErrUnsupported)
		case strings.HasPrefix(k, "trusted.overlay.") || strings.HasPrefix(k, "user.overlay."):
		case k == "security.capability":
			kept[k] = v
		case strings.HasPrefix(k, "security."):
		default:
			kept[k] = v
		}
	}
	if len(kept) == 0 {
		kept = nil
	}
	return kept, opaque, nil
}

// readNames lists a directory, sorted for a deterministic walk.
func readNames(dfd int, rel string) ([]string, error) {
	fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", rel, err)
	}
	sort.Strings(names)
	return names, nil
}

func readlinkAt(dfd int, name string) (string, error) {
	for size := 256; size <= 2*MaxLinkLen; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", fmt.Errorf("symlink target longer than %d bytes", 2*MaxLinkLen)
}

// listXattrs reads every extended attribute of p without following it.
func listXattrs(p string) (map[string]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		if err == unix.ENOTSUP {
			return nil, nil
		}
		return nil, err
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range bytes.Split(buf[:n], []byte{0}) {
		if len(k) == 0 {
			continue
		}
		v, err := getXattr(p, string(k))
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", k, err)
		}
		out[string(k)] = v
	}
	return out, nil
}

func getXattr(p, key string) (string, error) {
	size, err := unix.Lgetxattr(p, key, nil)
	if err != nil {
		return "", err
	}
	buf := make([]byte, size)
	n, err := unix.Lgetxattr(p, key, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
