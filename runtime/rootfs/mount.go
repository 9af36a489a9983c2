package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mounter makes mounts inside one root. Every destination is resolved
// inside root (resolve.go) and the mount goes onto the
// resolved handle through its /proc/thread-self/fd link, so a symlink in
// the image can never send a mount out of the root.
type mounter struct {
	rootPath string   // host path of root, symlinks resolved
	root     *os.File // O_PATH handle of root
	opts     Options
}

// fdPath names an open file through procfs, so that mount(2) and friends
// act on exactly the inode the handle holds.
func fdPath(f *os.File) string {
	return "/proc/thread-self/fd/" + strconv.Itoa(int(f.Fd()))
}

// open resolves dest inside the root.
func (mt *mounter) open(dest string) (*os.File, error) {
	f, err := openIn(mt.root, dest)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in root: %w", dest, err)
	}
	return f, nil
}

// at resolves dest afresh and hands fn its fd path. A fresh resolution is
// what sees a mount just made on dest: older handles still point below it.
func (mt *mounter) at(dest string, fn func(target string) error) error {
	f, err := mt.open(dest)
	if err != nil {
		return err
	}
	defer f.Close()
	return fn(fdPath(f))
}

// rootVFS looks paths up below the root handle, for SecureJoinVFS.
type rootVFS struct{ root *os.File }

func (v rootVFS) Lstat(name string) (os.FileInfo, error) { return os.Lstat(fdPath(v.root) + name) }

func (v rootVFS) Readlink(name string) (string, error) { return os.Readlink(fdPath(v.root) + name) }

// creatable returns dest with its symlinks resolved inside the root,
// dangling ones included, so that what they name can be made there: an
// image's /evil -> /somewhere gets /somewhere made inside the root, as
// other runtimes do. The resolver that then makes the path still keeps
// every step inside the root, should anything change in between.
func (mt *mounter) creatable(dest string) string {
	p, err := securejoin.SecureJoinVFS("/", dest, rootVFS{mt.root})
	if err != nil {
		return dest
	}
	return p
}

// makeTarget creates the mount point dest (a directory, or an empty file
// when dir is false) inside the root and returns a handle to it.
func (mt *mounter) makeTarget(dest string, dir bool) (*os.File, error) {
	dest = mt.creatable(dest)
	if dir {
		f, err := mkdirAllIn(mt.root, dest, 0o755)
		if err != nil {
			return nil, fmt.Errorf("make mount point %s: %w", dest, err)
		}
		return f, nil
	}
	if f, err := openIn(mt.root, dest); err == nil {
		return f, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("resolve %s in root: %w", dest, err)
	}
	parent, err := mkdirAllIn(mt.root, path.Dir(dest), 0o755)
	if err != nil {
		return nil, fmt.Errorf("make parent of %s: %w", dest, err)
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), path.Base(dest), unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("make mount point %s: %w", dest, err)
	}
	if err == nil {
		_ = unix.Close(fd)
	}
	return mt.open(dest)
}

// containerPath says where a resolved handle lies inside the root.
func (mt *mounter) containerPath(f *os.File) (string, error) {
	real, err := os.Readlink(fdPath(f))
	if err != nil {
		return "", fmt.Errorf("read handle path: %w", err)
	}
	p, ok := underRoot(mt.rootPath, real)
	if !ok {
		return "", fmt.Errorf("resolved %s lies outside the root", real)
	}
	return p, nil
}

// mountSpec makes one mount of the spec.
func (mt *mounter) mountSpec(m specs.Mount) error {
	o := ParseOptions(m.Options)
	kind := classify(m, o)
	dest := cleanDest(m.Destination)
	if err := checkProcDest(dest, kind, m.Type); err != nil {
		return err
	}
	if o.IDMap && kind != kindBind {
		return fmt.Errorf("idmap is supported on bind mounts only, not %q", m.Type)
	}
	var err error
	switch kind {
	case kindBind:
		err = mt.mountBind(m, o, dest)
	case kindCgroup:
		err = mt.mountCgroup(m.Type, o, dest)
	case kindSysfs:
		err = mt.mountSysfs(m, o, dest)
	default:
		if o.TmpCopyUp && m.Type == "tmpfs" {
			err = mt.mountTmpCopyUp(m, o, dest)
		} else {
			err = mt.mountFS(m, o, dest)
		}
	}
	if err != nil {
		return err
	}
	return mt.finishMount(o, dest)
}

// newTarget makes dest and checks where it really landed: a symlink
// inside the root may still point into /proc.
func (mt *mounter) newTarget(dest string, dir bool, kind mountKind, fstype string) (*os.File, error) {
	h, err := mt.makeTarget(dest, dir)
	if err != nil {
		return nil, err
	}
	real, err := mt.containerPath(h)
	if err == nil {
		err = checkProcDest(real, kind, fstype)
	}
	if err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// mountFS mounts a new filesystem instance (proc, tmpfs, devpts, ...).
func (mt *mounter) mountFS(m specs.Mount, o MountOptions, dest string) error {
	h, err := mt.newTarget(dest, true, kindFS, m.Type)
	if err != nil {
		return err
	}
	defer h.Close()
	src := m.Source
	if src == "" {
		src = m.Type
	}
	if err := unix.Mount(src, fdPath(h), m.Type, o.Flags&^unix.MS_REMOUNT, o.Data); err != nil {
		return fmt.Errorf("mount %s (%s): %w", src, m.Type, err)
	}
	return nil
}

// mountSysfs mounts sysfs. In a user namespace that does not own the
// network namespace the kernel refuses it; then the host's /sys is bound
// instead, read-only when asked.
func (mt *mounter) mountSysfs(m specs.Mount, o MountOptions, dest string) error {
	err := mt.mountFS(m, o, dest)
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	bind := m
	bind.Type, bind.Source = "bind", "/sys"
	bo := o
	bo.Flags |= unix.MS_BIND | unix.MS_REC
	return mt.mountBind(bind, bo, dest)
}

// mountBind binds a host path (relative ones against the bundle), then
// applies the per-mount flags with a remount, which the first call ignores.
func (mt *mounter) mountBind(m specs.Mount, o MountOptions, dest string) error {
	srcPath := m.Source
	if !filepath.IsAbs(srcPath) {
		srcPath = filepath.Join(mt.opts.Bundle, srcPath)
	}
	src, err := os.OpenFile(srcPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open bind source: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return fmt.Errorf("stat bind source: %w", err)
	}
	h, err := mt.newTarget(dest, st.IsDir(), kindBind, m.Type)
	if err != nil {
		return err
	}
	defer h.Close()
	if o.IDMap {
		uids, gids, err := idMappings(m, mt.opts.Spec)
		if err != nil {
			return err
		}
		if err := idmapBind(src, h, o.Recursive(), o.RecursiveIDMap, uids, gids); err != nil {
			return err
		}
	} else if err := unix.Mount(fdPath(src), fdPath(h), "", unix.MS_BIND|o.Flags&unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", srcPath, err)
	}
	if !o.NeedsRemount() {
		return nil
	}
	return mt.at(dest, func(target string) error { return remountBind(target, o.Flags&remountFlags, o.Flags) })
}

// finishMount applies what follows any mount: the recursive attributes
// and then the propagation changes, in the order the options gave them.
func (mt *mounter) finishMount(o MountOptions, dest string) error {
	if o.RecAttrSet == 0 && o.RecAttrClr == 0 && len(o.Propagation) == 0 {
		return nil
	}
	return mt.at(dest, func(target string) error {
		if o.RecAttrSet != 0 || o.RecAttrClr != 0 {
			attr := unix.MountAttr{Attr_set: o.RecAttrSet, Attr_clr: o.RecAttrClr}
			if err := unix.MountSetattr(-1, target, unix.AT_RECURSIVE, &attr); err != nil {
				return fmt.Errorf("set recursive mount attributes: %w", err)
			}
		}
		for _, p := range o.Propagation {
			if err := unix.Mount("", target, "", p, ""); err != nil {
				return fmt.Errorf("set propagation: %w", err)
			}
		}
		return nil
	})
}

// statfsFlags maps the per-mount flags statfs reports back to mount flags.
var statfsFlags = []struct{ st, ms uintptr }{
	{unix.ST_RDONLY, unix.MS_RDONLY},
	{unix.ST_NOSUID, unix.MS_NOSUID},
	{unix.ST_NODEV, unix.MS_NODEV},
	{unix.ST_NOEXEC, unix.MS_NOEXEC},
	{unix.ST_NOATIME, unix.MS_NOATIME},
	{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
	{unix.ST_RELATIME, unix.MS_RELATIME},
	{stNoSymfollow, unix.MS_NOSYMFOLLOW},
}

const atimeFlags = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME

// currentFlags returns the per-mount flags the mount at target has now.
func currentFlags(target string) (uintptr, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return 0, fmt.Errorf("statfs: %w", err)
	}
	var out uintptr
	for _, f := range statfsFlags {
		if uintptr(st.Flags)&f.st != 0 {
			out |= f.ms
		}
	}
	return out, nil
}

// withLocked adds to want the flags the mount has now, which is what a
// remount must keep when the kernel locked them (a mount inherited into a
// user namespace cannot lose nosuid, nodev, noexec, ro or its atime mode).
// An atime mode the caller chose is kept.
func withLocked(want, current uintptr) uintptr {
	if want&atimeFlags != 0 {
		current &^= atimeFlags | unix.MS_NODIRATIME
	}
	return want | current
}

// remountBind sets the per-mount flags of the bind mount at target. all are
// the mount's whole options: an explicit atime mode among them is kept.
func remountBind(target string, flags, all uintptr) error {
	base := uintptr(unix.MS_BIND | unix.MS_REMOUNT)
	err := unix.Mount("", target, "", base|flags, "")
	if !errors.Is(err, unix.EPERM) {
		if err != nil {
			return fmt.Errorf("remount bind: %w", err)
		}
		return nil
	}
	cur, serr := currentFlags(target)
	if serr != nil {
		return fmt.Errorf("remount bind: %w", err)
	}
	if err := unix.Mount("", target, "", base|withLocked(flags|(all&atimeFlags), cur), ""); err != nil {
		return fmt.Errorf("remount bind keeping locked flags: %w", err)
	}
	return nil
}

// stNoSymfollow is statfs's ST_NOSYMFOLLOW, which x/sys does not name.
const stNoSymfollow = 0x2000
