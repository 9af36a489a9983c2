package rootfs

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// idmapBind binds src onto dst as an idmapped mount: a detached copy of
// src's mount (recursive for rbind) gets MOUNT_ATTR_IDMAP with a user
// namespace holding the mappings (on every mount below it for ridmap),
// then is moved onto dst.
func idmapBind(src, dst *os.File, rbind, recursiveIDMap bool, uids, gids []specs.LinuxIDMapping) error {
	ns, err := userNamespace(uids, gids)
	if err != nil {
		return fmt.Errorf("idmapped mount: %w", err)
	}
	defer ns.Close()
	treeFlags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	if rbind {
		treeFlags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(int(src.Fd()), "", treeFlags)
	if err != nil {
		return fmt.Errorf("idmapped mount: clone source mount: %w", err)
	}
	defer unix.Close(tree)
	attrFlags := uint(unix.AT_EMPTY_PATH)
	if recursiveIDMap {
		attrFlags |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(tree, "", attrFlags, &attr); err != nil {
		return fmt.Errorf("idmapped mount: the kernel or the source's filesystem does not support idmapped mounts here: %w", err)
	}
	if err := unix.MoveMount(tree, "", int(dst.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("idmapped mount: attach: %w", err)
	}
	return nil
}

// userNamespace returns a handle to a new user namespace with the given
// mappings. A Go process cannot unshare a user namespace (it is threaded),
// so a child is cloned into one and held, traced, at its exec: it never
// runs a single instruction of the program. The namespace outlives the
// child through the returned handle.
func userNamespace(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The mappings are written here rather than by os/exec, which would
	// write them through /proc/<pid>, and the host's /proc does not show
	// our PID namespace once the container has its own.
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{"berth-userns-holder"},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER,
			Ptrace:     true,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start user namespace holder: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	proc, err := openProc()
	if err != nil {
		return nil, err
	}
	defer unix.Close(proc)
	pid := strconv.Itoa(cmd.Process.Pid)
	if err := writeAt(proc, pid+"/uid_map", formatMappings(uids)); err != nil {
		return nil, err
	}
	if err := writeAt(proc, pid+"/gid_map", formatMappings(gids)); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(proc, pid+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open user namespace: %w", err)
	}
	return os.NewFile(uintptr(fd), "userns"), nil
}

// openProc returns a procfs of our own PID namespace: a fresh, detached
// instance (never attached anywhere, so nobody else sees it), or the
// mounted /proc on kernels without fsopen(2).
func openProc() (int, error) {
	if fsfd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC); err == nil {
		defer unix.Close(fsfd)
		if err := unix.FsconfigCreate(fsfd); err == nil {
			mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
			if err == nil {
				return mfd, nil
			}
		}
	}
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /proc: %w", err)
	}
	return fd, nil
}

func writeAt(dir int, name, data string) error {
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(data)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// formatMappings renders mappings the way uid_map and gid_map take them.
func formatMappings(m []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return b.String()
}
