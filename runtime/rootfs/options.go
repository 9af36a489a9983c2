package rootfs

import (
	"strings"

	"golang.org/x/sys/unix"
)

// MountOptions is what one mount's option list asks for, split by the
// system call that carries it out.
type MountOptions struct {
	// Flags are the mount(2) flags to set (MS_RDONLY, MS_BIND, ...).
	Flags uintptr
	// Cleared are the mount(2) flags an option explicitly turned off
	// ("rw", "suid", "dev", ...). They matter when a bind mount inherits a
	// flag from its source and the remount must say it is not wanted.
	Cleared uintptr
	// Propagation holds MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, each
	// possibly with MS_REC, applied after the mount in the order given.
	Propagation []uintptr
	// RecAttrSet and RecAttrClr are MOUNT_ATTR_* bits for mount_setattr(2)
	// with AT_RECURSIVE: the "r"-prefixed options (rro, rnosuid, ...).
	RecAttrSet, RecAttrClr uint64
	// Data is the filesystem-specific option string (mode=755,size=64m).
	Data string
	// TmpCopyUp asks that a tmpfs start with a copy of what it covers.
	TmpCopyUp bool
	// IDMap asks for an idmapped mount; RecursiveIDMap for every mount
	// below it too ("ridmap").
	IDMap, RecursiveIDMap bool
	// Userspace are the "x-" and "X-" options: comments and hints for
	// userspace tools that mount(8) never hands to the kernel either.
	Userspace []string
}

// Bind reports whether the options make a bind mount.
func (o MountOptions) Bind() bool { return o.Flags&unix.MS_BIND != 0 }

// Recursive reports whether a bind mount takes the mounts below its source
// with it ("rbind").
func (o MountOptions) Recursive() bool { return o.Flags&unix.MS_REC != 0 }

// remountFlags are the per-mount flags a bind mount can only get through a
// second, MS_REMOUNT|MS_BIND mount call: the first bind ignores them.
const remountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME |
	unix.MS_NOSYMFOLLOW

// NeedsRemount reports whether a bind mount needs the second call that
// applies per-mount flags.
func (o MountOptions) NeedsRemount() bool {
	return o.Flags&remountFlags != 0 || o.Cleared&remountFlags != 0
}

type flagOpt struct {
	clear bool
	flag  uintptr
}

// flagOptions are the options that map onto mount(2) flags.
var flagOptions = map[string]flagOpt{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

// propagationOptions map onto a propagation change made after the mount.
var propagationOptions = map[string]uintptr{
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

type attrOpt struct {
	set, clr uint64
}

// atimeAttr changes the atime mode: mount_setattr wants the whole atime
// field cleared whenever one of its values is set.
func atimeAttr(mode uint64) attrOpt {
	return attrOpt{set: mode, clr: unix.MOUNT_ATTR__ATIME}
}

// recursiveOptions map onto mount_setattr(2) attributes applied with
// AT_RECURSIVE. "ratime", "rnostrictatime" fall back to the kernel's
// default (relatime), and "rnorelatime" means strict atime: the atime
// field holds exactly one mode, so turning one off must pick another.
var recursiveOptions = map[string]attrOpt{
	"rro":            {set: unix.MOUNT_ATTR_RDONLY},
	"rrw":            {clr: unix.MOUNT_ATTR_RDONLY},
	"rnosuid":        {set: unix.MOUNT_ATTR_NOSUID},
	"rsuid":          {clr: unix.MOUNT_ATTR_NOSUID},
	"rnodev":         {set: unix.MOUNT_ATTR_NODEV},
	"rdev":           {clr: unix.MOUNT_ATTR_NODEV},
	"rnoexec":        {set: unix.MOUNT_ATTR_NOEXEC},
	"rexec":          {clr: unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":    {set: unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":      {clr: unix.MOUNT_ATTR_NODIRATIME},
	"rnosymfollow":   {set: unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":     {clr: unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rrelatime":      atimeAttr(unix.MOUNT_ATTR_RELATIME),
	"rnorelatime":    atimeAttr(unix.MOUNT_ATTR_STRICTATIME),
	"rnoatime":       atimeAttr(unix.MOUNT_ATTR_NOATIME),
	"ratime":         atimeAttr(unix.MOUNT_ATTR_RELATIME),
	"rstrictatime":   atimeAttr(unix.MOUNT_ATTR_STRICTATIME),
	"rnostrictatime": atimeAttr(unix.MOUNT_ATTR_RELATIME),
}

// ParseOptions turns a mount's fstab-style options into what the mount
// calls need. Later options override earlier ones ("ro,rw" is rw). Options
// it does not know are filesystem-specific and go into Data in order.
func ParseOptions(options []string) MountOptions {
	var o MountOptions
	var data []string
	for _, opt := range options {
		if f, ok := flagOptions[opt]; ok {
			if f.clear {
				o.Flags &^= f.flag
				o.Cleared |= f.flag
			} else {
				o.Flags |= f.flag
				o.Cleared &^= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[opt]; ok {
			o.Propagation = append(o.Propagation, p)
			continue
		}
		if a, ok := recursiveOptions[opt]; ok {
			o.RecAttrSet = (o.RecAttrSet &^ a.clr) | a.set
			o.RecAttrClr = (o.RecAttrClr &^ a.set) | a.clr
			continue
		}
		switch {
		case opt == "":
		case opt == "tmpcopyup":
			o.TmpCopyUp = true
		case opt == "idmap":
			o.IDMap = true
		case opt == "ridmap":
			o.IDMap, o.RecursiveIDMap = true, true
		case strings.HasPrefix(opt, "x-"), strings.HasPrefix(opt, "X-"):
			o.Userspace = append(o.Userspace, opt)
		default:
			data = append(data, opt)
		}
	}
	o.Data = strings.Join(data, ",")
	return o
}
