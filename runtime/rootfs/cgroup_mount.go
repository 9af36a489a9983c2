package rootfs

import (
	"fmt"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// mountCgroup carries out the plan for a mount of type "cgroup" (or
// "cgroup2", which asks for the unified hierarchy alone). The
// sub-mounts get the mount's flags (ro included); the tmpfs that holds
// them is made read-only last, once the links are in.
func (mt *mounter) mountCgroup(fstype string, o MountOptions, dest string) error {
	steps, err := cgroupSteps(fstype, dest, mt.opts, "/proc/self/cgroup")
	if err != nil {
		return err
	}
	flags := o.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	for _, st := range steps {
		if err := mt.cgroupStep(st, flags); err != nil {
			return fmt.Errorf("cgroup %s: %w", st.Dest, err)
		}
	}
	if steps[0].Kind != stepTmpfs || flags&unix.MS_RDONLY == 0 {
		return nil
	}
	return mt.at(dest, func(target string) error { return remountBind(target, flags&remountFlags, flags) })
}

// cgroupSteps plans a cgroup mount onto dest for the process whose
// cgroups cgroupFile (a /proc/<pid>/cgroup file) lists.
func cgroupSteps(fstype, dest string, o Options, cgroupFile string) ([]cgroupStep, error) {
	hs, err := hostHierarchies()
	if err != nil {
		return nil, err
	}
	if fstype == "cgroup2" {
		hs = onlyUnified(hs)
	}
	self, err := cgroupsIn(cgroupFile)
	if err != nil {
		return nil, err
	}
	return planCgroupMount(dest, cgroupEnv{Hierarchies: hs, Paths: o.CgroupPaths, Self: self, NS: o.CgroupNS})
}

func (mt *mounter) cgroupStep(st cgroupStep, flags uintptr) error {
	switch st.Kind {
	case stepSymlink:
		dir, err := mt.open(path.Dir(st.Dest))
		if err != nil {
			return err
		}
		defer dir.Close()
		if err := unix.Symlinkat(st.Source, int(dir.Fd()), path.Base(st.Dest)); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		return nil
	case stepBind:
		src, err := os.OpenFile(st.Source, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", st.Source, err)
		}
		defer src.Close()
		if err := mt.mountAt(st.Dest, fdPath(src), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		if flags&remountFlags == 0 {
			return nil
		}
		return mt.at(st.Dest, func(target string) error { return remountBind(target, flags&remountFlags, flags) })
	case stepTmpfs:
		return mt.mountAt(st.Dest, "tmpfs", "tmpfs", flags&^unix.MS_RDONLY, "mode=755")
	case stepCgroup:
		return mt.mountAt(st.Dest, "cgroup", "cgroup", flags, st.Data)
	case stepCgroup2:
		return mt.mountAt(st.Dest, "cgroup2", "cgroup2", flags, "")
	}
	return fmt.Errorf("unknown cgroup step %d", st.Kind)
}

// mountAt makes the directory dest and mounts source there.
func (mt *mounter) mountAt(dest, source, fstype string, flags uintptr, data string) error {
	h, err := mt.makeTarget(dest, true)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := unix.Mount(source, fdPath(h), fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s: %w", fstype, err)
	}
	return nil
}
