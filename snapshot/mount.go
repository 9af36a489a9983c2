package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount for a caller to perform, in mount(8) terms.
type Mount struct {
	// Type is "overlay" or "bind".
	Type string
	// Source is the bind source, or "overlay".
	Source string
	// Options are mount(8) options: "ro", "bind", and for overlay
	// "lowerdir=" (top layer first), "upperdir=", "workdir=" and the
	// features turned off.
	Options []string
}

// overlayFixed are the overlay features turned off on every mount: a
// redirect (a renamed lower directory) or a metacopy (a chown without
// data) cannot be turned into a layer by a diff, and the inode index is
// only needed for those and NFS export. Renaming a lower directory then
// fails with EXDEV and tools fall back to copying, as under Docker.
var overlayFixed = []string{"index=off", "redirect_dir=off", "metacopy=off"}

// planMounts computes the mounts for lowers (top first) and an upper and
// work directory; readonly snapshots use no work directory.
func planMounts(lowers []string, upper, work string, readonly bool) []Mount {
	lowers = topmostOnly(lowers)
	mode := "rw"
	if readonly {
		mode = "ro"
	}
	switch {
	case len(lowers) == 0:
		return []Mount{{Type: "bind", Source: upper, Options: []string{"bind", mode}}}
	case readonly && len(lowers) == 1:
		return []Mount{{Type: "bind", Source: lowers[0], Options: []string{"bind", "ro"}}}
	}
	opts := []string{"lowerdir=" + strings.Join(lowers, ":")}
	if readonly {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "upperdir="+upper, "workdir="+work)
	}
	opts = append(opts, overlayFixed...)
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

// topmostOnly drops every repeat of a layer below its topmost place.
// Images may list one diffID twice, overlayfs refuses a repeated lowerdir,
// and the view is the same: the upper copy of a layer shadows all of its
// lower copy, whiteouts and opaque directories included.
func topmostOnly(lowers []string) []string {
	seen := make(map[string]bool, len(lowers))
	out := make([]string, 0, len(lowers))
	for _, l := range lowers {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// maxMountData is what mount(2) copies of the option string: one page,
// NUL included. Longer overlay options go through fsconfig instead.
const maxMountData = 4096 - 1

// volatileOption is overlayfs's "volatile" (Linux 5.10): the kernel skips
// every sync of the upper directory, fsync inside and the sync at
// unmount. After a host crash the upper directory cannot be mounted
// again, which matters nothing to a layer that dies with its container.
const volatileOption = "volatile"

// Volatile returns ms with its writable overlays marked volatile, for a
// writable layer nobody keeps: a container run with --rm, a build step
// whose result is read out into a layer of its own. Unmounting such an
// overlay no longer waits for its upper directory to reach the disk, and
// what the container fsyncs costs no disk flush. Podman does the same for
// --rm containers. Kernels without the option mount without it.
func Volatile(ms []Mount) []Mount {
	out := make([]Mount, len(ms))
	for i, m := range ms {
		out[i] = m
		if m.Type == "overlay" && slices.ContainsFunc(m.Options, isUpperdir) {
			out[i].Options = append(slices.Clip(m.Options), volatileOption)
		}
	}
	return out
}

func isUpperdir(o string) bool { return strings.HasPrefix(o, "upperdir=") }

// withoutVolatile returns m without the volatile option, and whether it
// had one.
func (m Mount) withoutVolatile() (Mount, bool) {
	i := slices.Index(m.Options, volatileOption)
	if i < 0 {
		return m, false
	}
	m.Options = slices.Delete(slices.Clone(m.Options), i, i+1)
	return m, true
}

// MountAll performs mounts on target, in order.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := m.Mount(target); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = unix.Unmount(target, 0)
			}
			return err
		}
	}
	return nil
}

// Mount performs m on target. An overlay whose options exceed one page
// (many layers) is made with fsopen/fsconfig, giving each layer its own
// "lowerdir+" (Linux 6.8 or later), so the layer count is bounded by
// overlayfs alone (500), not by the option length.
func (m Mount) Mount(target string) error {
	switch m.Type {
	case "bind":
		return m.bind(target)
	case "overlay":
		return m.overlay(target)
	}
	return fmt.Errorf("mount %s: unknown mount type %q", target, m.Type)
}

func (m Mount) bind(target string) error {
	flags, _ := splitOptions(m.Options)
	if err := unix.Mount(m.Source, target, "", unix.MS_BIND|(flags&unix.MS_REC), ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", m.Source, target, err)
	}
	if flags&unix.MS_RDONLY == 0 {
		return nil
	}
	// A bind mount ignores MS_RDONLY until remounted.
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		_ = unix.Unmount(target, 0)
		return fmt.Errorf("make bind mount %s read-only: %w", target, err)
	}
	return nil
}

func (m Mount) overlay(target string) error {
	if err := m.clearVolatileMark(); err != nil {
		return err
	}
	err := m.overlayOnce(target)
	if plain, ok := m.withoutVolatile(); ok && errors.Is(err, unix.EINVAL) {
		// A kernel before 5.10 knows no volatile overlays.
		if perr := plain.overlayOnce(target); perr == nil {
			return nil
		}
	}
	return err
}

// clearVolatileMark removes the mark a volatile overlay leaves in its
// work directory ("work/incompat/volatile"), which makes the kernel
// refuse any later mount of the same upper directory. berth mounts a
// layer volatile only for a container removed when it stops, so the mark
// is met only when a restart (which keeps the container) mounts the
// layer again after a clean unmount: nothing was lost, the mark can go.
func (m Mount) clearVolatileMark() error {
	for _, o := range m.Options {
		work, ok := strings.CutPrefix(o, "workdir=")
		if !ok {
			continue
		}
		mark := filepath.Join(work, "work", "incompat", volatileOption)
		if err := os.RemoveAll(mark); err != nil {
			return fmt.Errorf("clear volatile mark of %s: %w", work, err)
		}
	}
	return nil
}

func (m Mount) overlayOnce(target string) error {
	flags, data := splitOptions(m.Options)
	joined := strings.Join(data, ",")
	if len(joined) <= maxMountData {
		if err := unix.Mount(m.Source, target, "overlay", flags, joined); err != nil {
			return fmt.Errorf("mount overlay on %s: %w", target, err)
		}
		return nil
	}
	if err := fsconfigOverlay(m.Source, target, data, flags&unix.MS_RDONLY != 0); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

// splitOptions separates mount flags from filesystem data options.
func splitOptions(opts []string) (uintptr, []string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		switch o {
		case "ro":
			flags |= unix.MS_RDONLY
		case "rw", "bind":
		case "rbind":
			flags |= unix.MS_REC
		default:
			data = append(data, o)
		}
	}
	return flags, data
}

// fsconfigOverlay mounts an overlay through the new mount API, one
// fsconfig call per option and per lower layer.
func fsconfigOverlay(source, target string, data []string, readonly bool) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fd)
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fd, key, value); err != nil {
			return fsError(fd, fmt.Errorf("fsconfig %s: %w", key, err))
		}
		return nil
	}
	if err := set("source", source); err != nil {
		return err
	}
	for _, o := range data {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case k == "lowerdir":
			for _, l := range strings.Split(v, ":") {
				if err := set("lowerdir+", l); err != nil {
					return err
				}
			}
		case hasValue:
			if err := set(k, v); err != nil {
				return err
			}
		default:
			if err := unix.FsconfigSetFlag(fd, k); err != nil {
				return fsError(fd, fmt.Errorf("fsconfig %s: %w", k, err))
			}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fsError(fd, fmt.Errorf("fsconfig create: %w", err))
	}
	var attrs int
	if readonly {
		attrs = unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fsError(fd, fmt.Errorf("fsmount: %w", err))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// fsError adds the kernel's own messages, which the filesystem context
// queues for reading, to err.
func fsError(fd int, err error) error {
	var msgs []string
	buf := make([]byte, 1024)
	for range 8 {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(msgs, "; "))
}

// Unmount unmounts target.
func Unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: not a mount point: %w", target, err)
		}
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}
