package rootfs

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/runtime/cinit"
)

// CompileOptions are Options for a plan: InitPid is the init whose
// cgroups a cgroup mount without a namespace shows.
type CompileOptions struct {
	Options
	InitPid int
}

// CompileSetup writes what Setup does as operations of a C init plan
// (runtime/cinit), and reports false when the plan cannot express the
// spec: the Go init then builds the root, and reports any error in the
// spec as it always has. Nothing here changes the host.
func CompileSetup(o CompileOptions, p *cinit.Plan) bool {
	s := o.Spec
	if s == nil || o.NoPivot || o.UserNS || isFdLink(o.Rootfs) || !filepath.IsAbs(o.Rootfs) {
		return false
	}
	prop, err := RootPropagation(s)
	if err != nil {
		return false
	}
	if prop&(unix.MS_SHARED|unix.MS_UNBINDABLE) != 0 {
		prop = unix.MS_SLAVE | unix.MS_REC
	}
	// Only a recursive change of / leaves no shared parent behind, which
	// Setup would otherwise have to look for in the mount table.
	if prop&unix.MS_REC == 0 {
		return false
	}
	p.Add(cinit.OpContext, "")
	p.Add(cinit.OpMountPath, "", "/", "", uint64(prop), "")
	p.Add(cinit.OpBindRoot, o.Rootfs)
	c := &compiler{o: o, p: p}
	for _, m := range s.Mounts {
		if !c.mount(m) {
			return false
		}
	}
	if !bindsDev(s.Mounts) && !c.devices() {
		return false
	}
	p.Add(cinit.OpContext, "")
	p.Add(cinit.OpPivot)
	return true
}

// CompileFinalize writes what Finalize does, as CompileSetup.
func CompileFinalize(s *specs.Spec, p *cinit.Plan) bool {
	if s.Linux != nil {
		for _, rp := range s.Linux.ReadonlyPaths {
			if pathElems(rp) == nil {
				return false
			}
			p.Add(cinit.OpContext, "readonly path "+rp)
			p.Add(cinit.OpReadonly, cleanDest(rp))
		}
		for _, mp := range s.Linux.MaskedPaths {
			if pathElems(mp) == nil {
				return false
			}
			p.Add(cinit.OpContext, "masked path "+mp)
			p.Add(cinit.OpMask, cleanDest(mp))
		}
	}
	if s.Root != nil && s.Root.Readonly {
		p.Add(cinit.OpContext, "read-only root")
		p.Add(cinit.OpRemountRO, "/")
	}
	if s.Linux != nil && s.Linux.RootfsPropagation != "" {
		prop, err := RootPropagation(s)
		if err != nil {
			return false
		}
		p.Add(cinit.OpContext, "")
		p.Add(cinit.OpMountPath, "", "/", "", uint64(prop), "")
	}
	return true
}

type compiler struct {
	o CompileOptions
	p *cinit.Plan
}

// plain reports whether dest needs no symlink resolved to be made: Setup
// makes what a symlink in the image names, which the plan leaves to it.
func (c *compiler) plain(dest string) bool {
	if pathElems(dest) == nil {
		return false
	}
	joined, err := securejoin.SecureJoin(c.o.Rootfs, dest)
	return err == nil && joined == filepath.Join(c.o.Rootfs, dest)
}

func (c *compiler) mount(m specs.Mount) bool {
	o := ParseOptions(m.Options)
	kind := classify(m, o)
	dest := cleanDest(m.Destination)
	if checkProcDest(dest, kind, m.Type) != nil || o.IDMap || o.TmpCopyUp || !c.plain(dest) {
		return false
	}
	c.p.Add(cinit.OpContext, "mount "+m.Destination)
	var ok bool
	switch kind {
	case kindBind:
		ok = c.bind(m, o, dest)
	case kindCgroup:
		ok = c.cgroup(m.Type, o, dest)
	default:
		// sysfs needs the bind fallback only in a user namespace, which
		// a plan never has.
		proc := cinit.ProcNone
		if m.Type == "proc" {
			proc = cinit.ProcAny
		}
		src := m.Source
		if src == "" {
			src = m.Type
		}
		c.p.Add(cinit.OpTarget, dest, cinit.TargetDir, proc, m.Type)
		c.p.Add(cinit.OpMount, src, m.Type, uint64(o.Flags&^unix.MS_REMOUNT), o.Data)
		ok = true
	}
	if !ok {
		return false
	}
	if o.RecAttrSet != 0 || o.RecAttrClr != 0 {
		c.p.Add(cinit.OpSetattr, dest, o.RecAttrSet, o.RecAttrClr)
	}
	for _, prop := range o.Propagation {
		c.p.Add(cinit.OpPropagate, dest, uint64(prop))
	}
	return true
}

func (c *compiler) bind(m specs.Mount, o MountOptions, dest string) bool {
	if dest == "/proc" || strings.HasPrefix(dest, "/proc/") {
		return false
	}
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(c.o.Bundle, src)
	}
	st, err := os.Stat(src)
	if err != nil {
		return false
	}
	how := cinit.TargetFile
	if st.IsDir() {
		how = cinit.TargetDir
	}
	c.p.Add(cinit.OpSource, src)
	c.p.Add(cinit.OpTarget, dest, how, cinit.ProcNone, m.Type)
	c.p.Add(cinit.OpMount, "", "", uint64(unix.MS_BIND|o.Flags&unix.MS_REC), "")
	if o.NeedsRemount() {
		c.p.Add(cinit.OpRemountBind, dest, uint64(o.Flags&remountFlags), uint64(o.Flags))
	}
	return true
}

func (c *compiler) cgroup(fstype string, o MountOptions, dest string) bool {
	steps, err := cgroupSteps(fstype, dest, c.o.Options, "/proc/"+strconv.Itoa(c.o.InitPid)+"/cgroup")
	if err != nil {
		return false
	}
	flags := uint64(o.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT))
	for _, st := range steps {
		if !c.plain(st.Dest) {
			return false
		}
		c.p.Add(cinit.OpContext, "mount "+dest+": cgroup "+st.Dest)
		switch st.Kind {
		case stepSymlink:
			c.p.Add(cinit.OpSymlink, st.Source, st.Dest, 0)
			continue
		case stepBind:
			c.p.Add(cinit.OpSource, st.Source)
		}
		c.p.Add(cinit.OpTarget, st.Dest, cinit.TargetDir, cinit.ProcNone, "cgroup")
		switch st.Kind {
		case stepBind:
			c.p.Add(cinit.OpMount, "", "", uint64(unix.MS_BIND|unix.MS_REC), "")
			if flags&remountFlags != 0 {
				c.p.Add(cinit.OpRemountBind, st.Dest, flags&remountFlags, flags)
			}
		case stepTmpfs:
			c.p.Add(cinit.OpMount, "tmpfs", "tmpfs", flags&^unix.MS_RDONLY, "mode=755")
		case stepCgroup:
			c.p.Add(cinit.OpMount, "cgroup", "cgroup", flags, st.Data)
		case stepCgroup2:
			c.p.Add(cinit.OpMount, "cgroup2", "cgroup2", flags, "")
		}
	}
	if steps[0].Kind == stepTmpfs && flags&unix.MS_RDONLY != 0 {
		c.p.Add(cinit.OpContext, "mount "+dest)
		c.p.Add(cinit.OpRemountBind, dest, flags&remountFlags, flags)
	}
	return true
}

func (c *compiler) devices() bool {
	c.p.Add(cinit.OpUmask, 0)
	for _, d := range planDevices(c.o.Spec) {
		mode, num, err := deviceMode(d)
		if err != nil || !c.plain(path.Dir(d.Path)) || pathElems(d.Path) == nil {
			return false
		}
		uid, gid := uint64(0), uint64(0)
		if d.UID != nil {
			uid = uint64(*d.UID)
		}
		if d.GID != nil {
			gid = uint64(*d.GID)
		}
		c.p.Add(cinit.OpContext, "device "+d.Path)
		c.p.Add(cinit.OpDevice, d.Path, uint64(mode), uint64(num), uid, gid)
	}
	_, kerr := os.Stat("/proc/kcore")
	for _, l := range devSymlinks(kerr == nil) {
		c.p.Add(cinit.OpContext, "")
		c.p.Add(cinit.OpSymlink, l[1], l[0], cinit.LinkExistOK)
	}
	c.p.Add(cinit.OpSymlink, "pts/ptmx", "/dev/ptmx", cinit.LinkReplace)
	c.p.Add(cinit.OpUmask, ^uint64(0))
	return true
}
