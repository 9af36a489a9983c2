package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Finalize runs inside the new root, after Setup: it makes the read-only
// paths read-only, masks the masked paths, makes / read-only when asked,
// and last applies rootfsPropagation to / when the spec set one.
func Finalize(s *specs.Spec) error {
	if s == nil {
		return errors.New("rootfs finalize: no spec")
	}
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	defer root.Close()
	mt := &mounter{rootPath: "/", root: root}
	if s.Linux != nil {
		for _, p := range s.Linux.ReadonlyPaths {
			if err := mt.readonlyPath(p); err != nil {
				return fmt.Errorf("readonly path %s: %w", p, err)
			}
		}
		for _, p := range s.Linux.MaskedPaths {
			if err := mt.maskPath(p); err != nil {
				return fmt.Errorf("masked path %s: %w", p, err)
			}
		}
	}
	if s.Root != nil && s.Root.Readonly {
		if err := remountReadonly("/"); err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
	}
	if s.Linux != nil && s.Linux.RootfsPropagation != "" {
		prop, err := RootPropagation(s)
		if err != nil {
			return err
		}
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return fmt.Errorf("set propagation of /: %w", err)
		}
	}
	return nil
}

// openExisting resolves p inside the root; ok is false when p is missing,
// which masked and read-only paths allow.
func (mt *mounter) openExisting(p string) (*os.File, bool, error) {
	f, err := openIn(mt.root, cleanDest(p))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("resolve in root: %w", err)
	}
	return f, true, nil
}

// readonlyPath binds p onto itself and remounts the bind read-only; the
// remount keeps whatever nosuid/nodev/noexec the kernel locked on it.
func (mt *mounter) readonlyPath(p string) error {
	f, ok, err := mt.openExisting(p)
	if err != nil || !ok {
		return err
	}
	defer f.Close()
	if err := unix.Mount(fdPath(f), fdPath(f), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind onto itself: %w", err)
	}
	return mt.at(cleanDest(p), remountReadonly)
}

// remountReadonly makes the bind mount at target read-only and keeps the
// rest of its flags as they are.
func remountReadonly(target string) error {
	cur, err := currentFlags(target)
	if err != nil {
		return err
	}
	return remountBind(target, unix.MS_RDONLY|cur, 0)
}

// maskPath hides p: /dev/null over a file, an empty read-only tmpfs over
// a directory.
func (mt *mounter) maskPath(p string) error {
	f, ok, err := mt.openExisting(p)
	if err != nil || !ok {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if st.IsDir() {
		if err := unix.Mount("tmpfs", fdPath(f), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount empty tmpfs: %w", err)
		}
		return nil
	}
	null, err := mt.open("/dev/null")
	if err != nil {
		return err
	}
	defer null.Close()
	if err := unix.Mount(fdPath(null), fdPath(f), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /dev/null: %w", err)
	}
	return nil
}

// MountConsole binds the terminal at slavePath (a path inside the new
// root, such as /dev/pts/0) onto /dev/console, making /dev/console first
// when it is missing.
func MountConsole(slavePath string) error {
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console: open root: %w", err)
	}
	defer root.Close()
	mt := &mounter{rootPath: "/", root: root}
	src, err := mt.open(slavePath)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer src.Close()
	dst, err := mt.consoleTarget()
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer dst.Close()
	if err := unix.Mount(fdPath(src), fdPath(dst), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("console: bind %s onto /dev/console: %w", slavePath, err)
	}
	return nil
}

// consoleTarget returns /dev/console, made as an empty file if missing.
func (mt *mounter) consoleTarget() (*os.File, error) {
	const console = "/dev/console"
	dir, err := mkdirAllIn(mt.root, path.Dir(console), 0o755)
	if err != nil {
		return nil, fmt.Errorf("make /dev: %w", err)
	}
	defer dir.Close()
	err = unix.Mknodat(int(dir.Fd()), path.Base(console), unix.S_IFREG|0o600, 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("make %s: %w", console, err)
	}
	return mt.open(console)
}
