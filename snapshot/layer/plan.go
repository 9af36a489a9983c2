// Package layer converts between an image layer's tar stream and the
// overlayfs form of that one layer on disk.
//
// Apply unpacks an uncompressed layer tar into an empty directory: AUFS
// style whiteouts (.wh.NAME) become overlay whiteouts (character device
// 0/0) and .wh..wh..opq marks its directory opaque. Diff does the reverse
// for an overlay upper directory, producing a deterministic layer tar.
//
// Every path taken from a tar is resolved beneath the layer root with
// openat2(RESOLVE_BENEATH), so no entry, symlink or hardlink can make Apply
// touch anything outside it; entries that try are refused with ErrUnsafe.
package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Whiteout names of the OCI image layer format.
const (
	// WhiteoutPrefix starts the name of an entry that deletes NAME from
	// the layers below.
	WhiteoutPrefix = ".wh."
	// WhiteoutMetaPrefix starts AUFS metadata names, never real files.
	WhiteoutMetaPrefix = ".wh..wh."
	// WhiteoutOpaque marks its directory as hiding all lower contents.
	WhiteoutOpaque = ".wh..wh..opq"
)

// Bounds on what Apply accepts from a header. They are far above anything a
// real image carries and stop a hostile layer from making Apply hold or
// create absurd amounts of metadata.
const (
	// MaxNameLen bounds an entry name or hardlink target (PATH_MAX).
	MaxNameLen = 4096
	// MaxComponentLen bounds one path component (NAME_MAX).
	MaxComponentLen = 255
	// MaxLinkLen bounds a symlink target.
	MaxLinkLen = 4096
	// MaxPAXBytes bounds the PAX records of one entry, all keys and values.
	MaxPAXBytes = 256 << 10
	// MaxXattrValue bounds one extended attribute value (XATTR_SIZE_MAX).
	MaxXattrValue = 64 << 10
	// MaxXattrs bounds the number of extended attributes on one entry.
	MaxXattrs = 128
	// MaxEntries bounds the entries of one layer, far above any real one.
	MaxEntries = 1 << 24
)

// paxXattrPrefix starts the PAX records that carry extended attributes.
const paxXattrPrefix = "SCHILY.xattr."

// Overlay extended attributes Apply writes and Diff reads.
const (
	overlayOpaqueXattr     = "trusted.overlay.opaque"
	userOverlayOpaqueXattr = "user.overlay.opaque"
)

var (
	// ErrUnsafe classifies a layer entry refused because it would reach
	// outside the layer root or break the overlay representation. It is
	// also an errdefs.ErrInvalidArgument.
	ErrUnsafe = errdefs.Invalid("unsafe layer entry")
	// ErrUnsupported classifies a layer entry of a kind Apply does not
	// handle. It is also an errdefs.ErrInvalidArgument.
	ErrUnsupported = errdefs.Invalid("unsupported layer entry")
)

// EntryError reports the tar entry that Apply refused or failed on.
type EntryError struct {
	Name string // the name as written in the tar
	Err  error
}

func (e *EntryError) Error() string { return fmt.Sprintf("layer entry %q: %v", e.Name, e.Err) }

// Unwrap returns the cause.
func (e *EntryError) Unwrap() error { return e.Err }

func unsafef(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnsafe)
}

// opKind is what one tar entry asks Apply to do.
type opKind int

const (
	opSkip     opKind = iota // nothing (global headers, AUFS metadata)
	opRoot                   // set the attributes of the layer root itself
	opDir                    // make or update a directory
	opFile                   // write a regular file
	opSymlink                // make a symbolic link
	opHardlink               // link to an entry earlier in the layer
	opDevice                 // mknod a character or block device or a fifo
	opWhiteout               // hide a lower entry: char device 0/0
	opOpaque                 // mark a directory opaque
)

// xattr is one extended attribute to set.
type xattr struct {
	Key   string
	Value []byte
}

// entryPlan is the outcome of checking one header: everything the executor
// needs, with every path already cleaned and validated.
type entryPlan struct {
	kind    opKind
	path    string // cleaned, relative to the root; "." is the root
	dir     string // path.Dir(path)
	base    string // path.Base(path)
	link    string // symlink target as written, or cleaned hardlink target
	mode    uint32 // permission bits with setuid, setgid and sticky
	devType uint32 // S_IFCHR, S_IFBLK or S_IFIFO for opDevice
	dev     uint64
	uid     int
	gid     int
	atime   time.Time
	mtime   time.Time
	size    int64
	sparse  bool // holes arrive as zeros; write them as holes
	xattrs  []xattr
}

// cleanName turns a tar name into a path relative to the layer root. Like
// Docker it reads a leading slash as the root, and it refuses any name that
// would climb above the root once cleaned.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", unsafef("empty name")
	}
	if len(name) > MaxNameLen {
		return "", unsafef("name is %d bytes, more than %d", len(name), MaxNameLen)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", unsafef("name contains a NUL byte")
	}
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", unsafef("path climbs out of the layer root")
	}
	for _, part := range strings.Split(c, "/") {
		if len(part) > MaxComponentLen {
			return "", unsafef("path component is %d bytes, more than %d", len(part), MaxComponentLen)
		}
	}
	return c, nil
}

// planEntry checks one header and says what to do with it. It is pure: the
// executor trusts its output and only performs it.
func planEntry(hdr *tar.Header) (entryPlan, error) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return entryPlan{kind: opSkip}, nil
	}
	if err := checkPAX(hdr.PAXRecords); err != nil {
		return entryPlan{}, err
	}
	p, err := cleanName(hdr.Name)
	if err != nil {
		return entryPlan{}, err
	}
	e := entryPlan{path: p, dir: path.Dir(p), base: path.Base(p)}
	if skipMeta(p) {
		e.kind = opSkip
		return e, nil
	}
	if strings.HasPrefix(e.base, WhiteoutPrefix) && p != "." {
		return planWhiteout(e, hdr)
	}
	if err := fillAttrs(&e, hdr); err != nil {
		return entryPlan{}, err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		e.kind = opDir
		if p == "." {
			e.kind = opRoot
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse: //nolint:staticcheck // old archives still carry it
		e.kind = opFile
		if hdr.Size < 0 {
			return entryPlan{}, unsafef("negative size %d", hdr.Size)
		}
		e.size = hdr.Size
		e.sparse = isSparse(hdr)
	case tar.TypeSymlink:
		e.kind = opSymlink
		if err := checkSymlinkTarget(hdr.Linkname); err != nil {
			return entryPlan{}, err
		}
		e.link = hdr.Linkname
		e.xattrs = dropUserXattrs(e.xattrs) // the kernel refuses user.* on symlinks
	case tar.TypeLink:
		e.kind = opHardlink
		t, err := cleanName(hdr.Linkname)
		if err != nil {
			return entryPlan{}, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		if t == "." || t == p {
			return entryPlan{}, unsafef("hardlink to %q", hdr.Linkname)
		}
		e.link = t
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		e.kind = opDevice
		if err := fillDevice(&e, hdr); err != nil {
			return entryPlan{}, err
		}
	default:
		return entryPlan{}, fmt.Errorf("type %q: %w", string(hdr.Typeflag), ErrUnsupported)
	}
	if p == "." && e.kind != opRoot {
		return entryPlan{}, unsafef("the layer root must be a directory")
	}
	return e, nil
}

// isSparse reports a GNU sparse file, old style or PAX style. Its holes
// come out of the tar reader as zeros, and a small tar can describe a huge
// file, so they must not be written out as data.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// skipMeta reports AUFS metadata (.wh..wh.plnk and the like, and anything
// under them) other than the opaque marker: it has no overlay meaning.
func skipMeta(p string) bool {
	parts := strings.Split(p, "/")
	for i, part := range parts {
		if !strings.HasPrefix(part, WhiteoutMetaPrefix) {
			continue
		}
		if part == WhiteoutOpaque && i == len(parts)-1 {
			return false
		}
		return true
	}
	return false
}

func planWhiteout(e entryPlan, hdr *tar.Header) (entryPlan, error) {
	if e.base == WhiteoutOpaque {
		e.kind = opOpaque
		e.path, e.base = e.dir, path.Base(e.dir)
		e.dir = path.Dir(e.dir)
		return e, nil
	}
	name := strings.TrimPrefix(e.base, WhiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return entryPlan{}, unsafef("whiteout of %q", name)
	}
	e.kind = opWhiteout
	e.base = name
	e.path = path.Join(e.dir, name)
	uid, gid, err := ids(hdr)
	if err != nil {
		return entryPlan{}, err
	}
	e.uid, e.gid = uid, gid
	return e, nil
}

func ids(hdr *tar.Header) (int, int, error) {
	const maxID = 1<<32 - 2 // (uid_t)-1 means "unchanged" to chown
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) > maxID || int64(hdr.Gid) > maxID {
		return 0, 0, unsafef("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	return hdr.Uid, hdr.Gid, nil
}

func fillAttrs(e *entryPlan, hdr *tar.Header) error {
	uid, gid, err := ids(hdr)
	if err != nil {
		return err
	}
	e.uid, e.gid = uid, gid
	e.mode = uint32(hdr.Mode) & 0o7777
	e.mtime = hdr.ModTime
	e.atime = hdr.AccessTime
	if e.atime.IsZero() {
		e.atime = e.mtime
	}
	xs, err := planXattrs(hdr.PAXRecords)
	if err != nil {
		return err
	}
	e.xattrs = xs
	return nil
}

func fillDevice(e *entryPlan, hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeChar:
		e.devType = unix.S_IFCHR
	case tar.TypeBlock:
		e.devType = unix.S_IFBLK
	default:
		e.devType = unix.S_IFIFO
		return nil
	}
	const maxDev = 1<<32 - 1
	if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > maxDev || hdr.Devminor > maxDev {
		return unsafef("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
	}
	e.dev = unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	return nil
}

func checkSymlinkTarget(t string) error {
	if t == "" {
		return unsafef("symlink with an empty target")
	}
	if len(t) > MaxLinkLen {
		return unsafef("symlink target is %d bytes, more than %d", len(t), MaxLinkLen)
	}
	if strings.IndexByte(t, 0) >= 0 {
		return unsafef("symlink target contains a NUL byte")
	}
	return nil
}

func checkPAX(recs map[string]string) error {
	total := 0
	for k, v := range recs {
		total += len(k) + len(v)
	}
	if total > MaxPAXBytes {
		return unsafef("PAX records are %d bytes, more than %d", total, MaxPAXBytes)
	}
	return nil
}

// errSkipXattr tells planXattrs to leave an attribute out silently.
var errSkipXattr = errors.New("skip")

// xattrPolicy decides what happens to one extended attribute from a layer.
// File capabilities are part of an image (ping, newuidmap); other
// security.* attributes (SELinux labels, IMA/EVM) belong to the host and
// are dropped. Overlay's own attributes would let a layer forge opacity,
// redirects or metacopy and are refused: opacity comes from .wh..wh..opq.
func xattrPolicy(key string) error {
	switch {
	case key == "security.capability":
		return nil
	case strings.HasPrefix(key, "trusted.overlay.") || strings.HasPrefix(key, "user.overlay."):
		return unsafef("overlay attribute %q in a layer", key)
	case strings.HasPrefix(key, "security."):
		return errSkipXattr
	case key == "system.posix_acl_access" || key == "system.posix_acl_default":
		return nil
	case strings.HasPrefix(key, "system."):
		return errSkipXattr
	case strings.HasPrefix(key, "user.") || strings.HasPrefix(key, "trusted."):
		return nil
	default:
		return errSkipXattr // unknown namespaces: the kernel would refuse them
	}
}

// planXattrs picks the extended attributes to set, sorted by key so Apply
// sets them in the same order every time.
func planXattrs(recs map[string]string) ([]xattr, error) {
	var out []xattr
	for k, v := range recs {
		key, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if key == "" {
			return nil, unsafef("extended attribute with an empty name")
		}
		err := xattrPolicy(key)
		if errors.Is(err, errSkipXattr) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(v) > MaxXattrValue {
			return nil, unsafef("extended attribute %q is %d bytes, more than %d", key, len(v), MaxXattrValue)
		}
		out = append(out, xattr{Key: key, Value: []byte(v)})
	}
	if len(out) > MaxXattrs {
		return nil, unsafef("%d extended attributes, more than %d", len(out), MaxXattrs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func dropUserXattrs(xs []xattr) []xattr {
	var out []xattr
	for _, x := range xs {
		if !strings.HasPrefix(x.Key, "user.") {
			out = append(out, x)
		}
	}
	return out
}
