package specgen

import (
	"encoding/csv"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
)

// bindModeKind classifies one -v mode option; each kind may appear once.
func bindModeKind(o string) string {
	switch o {
	case "ro", "rw":
		return "rw"
	case "z", "Z":
		return "label"
	case "private", "rprivate", "shared", "rshared", "slave", "rslave":
		return "propagation"
	case "nocopy":
		return "copy"
	case "consistent", "cached", "delegated":
		return "consistency"
	}
	return ""
}

// validBindMode reports whether mode is a valid -v mode list.
func validBindMode(mode string) bool {
	if mode == "" {
		return true
	}
	seen := map[string]bool{}
	for o := range strings.SplitSeq(mode, ",") {
		k := bindModeKind(o)
		if k == "" || seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// ParseBind parses a -v/--volume value, "[src:]dst[:opts]": an absolute
// src is a bind mount, any other src a named volume, and a lone dst an
// anonymous volume. opts are ro|rw, z|Z (accepted, no effect here), a
// propagation mode and nocopy. Errors use Docker's wording.
func ParseBind(spec string) (mount.Mount, error) {
	invalid := func(reason string) error {
		if reason == "" {
			return errdefs.Invalid("invalid volume specification: '%s'", spec)
		}
		return errdefs.Invalid("invalid volume specification: '%s': %s", spec, reason)
	}
	arr := strings.SplitN(spec, ":", 4)
	if arr[0] == "" {
		return mount.Mount{}, invalid("")
	}
	var m mount.Mount
	var mode string
	switch len(arr) {
	case 1:
		m.Target = arr[0]
	case 2:
		if validBindMode(arr[1]) {
			return mount.Mount{}, invalid("") // "/foo:rw": a mode with no source
		}
		m.Source, m.Target = arr[0], arr[1]
	case 3:
		m.Source, m.Target, mode = arr[0], arr[1], arr[2]
	default:
		return mount.Mount{}, invalid("")
	}
	if !validBindMode(mode) {
		return mount.Mount{}, errdefs.Invalid("invalid mode: %s", mode)
	}
	m.Type = mount.TypeVolume
	if path.IsAbs(m.Source) {
		m.Type = mount.TypeBind
	}
	for o := range strings.SplitSeq(mode, ",") {
		switch bindModeKind(o) {
		case "rw":
			m.ReadOnly = o == "ro"
		case "propagation":
			m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(o)}
		case "copy":
			m.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
		case "consistency":
			m.Consistency = mount.Consistency(o)
		}
	}
	if err := validateMount(m); err != nil {
		return mount.Mount{}, invalid(err.Error())
	}
	m.Target = path.Clean(m.Target)
	if m.Type == mount.TypeBind {
		m.Source = path.Clean(m.Source)
	}
	return m, nil
}

// validateMount checks a mount the way Docker's daemon does, except that
// a bind source need not exist yet (the engine checks that).
func validateMount(m mount.Mount) error {
	cfgErr := func(format string, args ...any) error {
		return fmt.Errorf("invalid mount config for type %q: %s", m.Type, fmt.Sprintf(format, args...))
	}
	if m.Target == "" {
		return cfgErr("field Target must not be empty")
	}
	if path.Clean(m.Target) == "/" {
		return cfgErr("invalid specification: destination can't be '/'")
	}
	if !path.IsAbs(m.Target) {
		return cfgErr("invalid mount path: '%s' mount path must be absolute", m.Target)
	}
	extra := func(name string, set bool) error {
		if set {
			return cfgErr("field %s must not be specified", name)
		}
		return nil
	}
	var err error
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return cfgErr("field Source must not be empty")
		}
		if err = extra("VolumeOptions", m.VolumeOptions != nil); err != nil {
			return err
		}
		if err = extra("TmpfsOptions", m.TmpfsOptions != nil); err != nil {
			return err
		}
		if !path.IsAbs(m.Source) {
			return cfgErr("invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		if b := m.BindOptions; b != nil {
			if b.Propagation != "" && bindModeKind(string(b.Propagation)) != "propagation" {
				return cfgErr("invalid propagation mode: %s", b.Propagation)
			}
			if b.ReadOnlyNonRecursive && b.ReadOnlyForceRecursive {
				return cfgErr("read-only non-recursive and forced recursive read-only cannot both be set")
			}
		}
	case mount.TypeVolume:
		if err = extra("BindOptions", m.BindOptions != nil); err != nil {
			return err
		}
		if err = extra("TmpfsOptions", m.TmpfsOptions != nil); err != nil {
			return err
		}
		if v := m.VolumeOptions; v != nil && v.Subpath != "" {
			if m.Source == "" {
				return cfgErr("must not set Subpath when using anonymous volumes")
			}
			if !filepath.IsLocal(v.Subpath) {
				return cfgErr("subpath must be a relative path within the volume")
			}
		}
	case mount.TypeTmpfs:
		if err = extra("BindOptions", m.BindOptions != nil); err != nil {
			return err
		}
		if err = extra("VolumeOptions", m.VolumeOptions != nil); err != nil {
			return err
		}
		if err = extra("Source", m.Source != ""); err != nil {
			return err
		}
		if _, err := tmpfsData(m); err != nil {
			return cfgErr("%v", err)
		}
	default:
		return cfgErr("mount type unknown")
	}
	return nil
}

// ParseMountFlag parses a --mount value, a CSV list of key=value fields
// (type=bind|volume|tmpfs, source|src, target|dst|destination, readonly|ro,
// bind-propagation, bind-nonrecursive, bind-recursive, volume-nocopy,
// volume-subpath, volume-driver, volume-opt, volume-label, tmpfs-size,
// tmpfs-mode, consistency). The type defaults to volume, as in Docker.
func ParseMountFlag(value string) (mount.Mount, error) {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return mount.Mount{}, errdefs.Invalid("invalid --mount %q: %v", value, err)
	}
	m := mount.Mount{Type: mount.TypeVolume}
	vol := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	driver := func() *mount.Driver {
		if vol().DriverConfig == nil {
			m.VolumeOptions.DriverConfig = &mount.Driver{}
		}
		return m.VolumeOptions.DriverConfig
	}
	bind := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	tmpfs := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	boolValue := func(key, val string) (bool, error) {
		b, err := strconv.ParseBool(val)
		if err != nil {
			return false, errdefs.Invalid("invalid value for %s: %s", key, val)
		}
		return b, nil
	}
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		if !hasValue {
			switch key {
			case "readonly", "ro":
				m.ReadOnly = true
			case "volume-nocopy":
				vol().NoCopy = true
			case "bind-nonrecursive":
				bind().NonRecursive = true
			default:
				return mount.Mount{}, errdefs.Invalid("invalid field '%s' must be a key=value pair", field)
			}
			continue
		}
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
			if val == "." || strings.HasPrefix(val, "./") {
				if abs, err := filepath.Abs(val); err == nil {
					m.Source = abs
				}
			}
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = boolValue(key, val); err != nil {
				return mount.Mount{}, err
			}
		case "consistency":
			m.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bind().Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-nonrecursive":
			if bind().NonRecursive, err = boolValue(key, val); err != nil {
				return mount.Mount{}, err
			}
		case "bind-recursive":
			b := bind()
			switch val {
			case "enabled":
			case "disabled":
				b.NonRecursive = true
			case "writable":
				b.ReadOnlyNonRecursive = true
			case "readonly":
				b.ReadOnlyForceRecursive = true
			default:
				return mount.Mount{}, errdefs.Invalid("invalid value for %s: %s (want enabled, disabled, writable or readonly)", key, val)
			}
		case "volume-nocopy":
			if vol().NoCopy, err = boolValue(key, val); err != nil {
				return mount.Mount{}, err
			}
		case "volume-subpath":
			vol().Subpath = val
		case "volume-driver":
			driver().Name = val
		case "volume-opt":
			d := driver()
			if d.Options == nil {
				d.Options = map[string]string{}
			}
			if k, v, _ := strings.Cut(val, "="); k != "" {
				d.Options[k] = v
			}
		case "volume-label":
			v := vol()
			if v.Labels == nil {
				v.Labels = map[string]string{}
			}
			if k, lv, _ := strings.Cut(val, "="); k != "" {
				v.Labels[k] = lv
			}
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil || n < 0 {
				return mount.Mount{}, errdefs.Invalid("invalid value for %s: %s", key, val)
			}
			tmpfs().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return mount.Mount{}, errdefs.Invalid("invalid value for %s: %s", key, val)
			}
			tmpfs().Mode = os.FileMode(n)
		default:
			return mount.Mount{}, errdefs.Invalid("unexpected key '%s' in '%s'", key, field)
		}
	}
	if m.Target == "" {
		return mount.Mount{}, errdefs.Invalid("target is required")
	}
	if m.VolumeOptions != nil && m.Type != mount.TypeVolume {
		return mount.Mount{}, errdefs.Invalid("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	}
	if m.BindOptions != nil && m.Type != mount.TypeBind {
		return mount.Mount{}, errdefs.Invalid("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	}
	if m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
		return mount.Mount{}, errdefs.Invalid("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	if err := validateMount(m); err != nil {
		return mount.Mount{}, errdefs.Invalid("invalid --mount %q: %v", value, err)
	}
	return m, nil
}

// MountToSpec turns a parsed mount into the runtime's mount, once the
// engine knows the host source (the bind source or the volume's
// directory; ignored for tmpfs). Binds are recursive unless asked
// otherwise, read-only ones recursively so (the runtime's "rro") unless
// ReadOnlyNonRecursive; a bind's propagation defaults to rprivate.
func MountToSpec(m mount.Mount, source string) (specs.Mount, error) {
	if err := validateMount(withSource(m, source)); err != nil {
		return specs.Mount{}, errdefs.Invalid("%v", err)
	}
	dst := path.Clean(m.Target)
	switch m.Type {
	case mount.TypeTmpfs:
		data, _ := tmpfsData(m)
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: TmpfsOptions(data)}, nil
	case mount.TypeBind, mount.TypeVolume:
		if source == "" || !path.IsAbs(source) {
			return specs.Mount{}, errdefs.Invalid("mount %s: the host source %q must be an absolute path", dst, source)
		}
		b := m.BindOptions
		if b == nil {
			b = &mount.BindOptions{}
		}
		opts := []string{"rbind"}
		if b.NonRecursive {
			opts = []string{"bind"}
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
			if !b.NonRecursive && !b.ReadOnlyNonRecursive {
				opts = append(opts, "rro")
			}
		}
		switch {
		case b.Propagation != "":
			opts = append(opts, string(b.Propagation))
		case m.Type == mount.TypeBind:
			opts = append(opts, string(mount.PropagationRPrivate))
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: path.Clean(source), Options: opts}, nil
	}
	return specs.Mount{}, errdefs.Invalid("mount %s: type %q is not supported", dst, m.Type)
}

// withSource gives a bind mount its resolved source for validation, so a
// named volume's relative name is not judged as a bind source.
func withSource(m mount.Mount, source string) mount.Mount {
	if m.Type == mount.TypeBind && source != "" {
		m.Source = source
	}
	return m
}

// tmpfsData is the option string of a tmpfs mount: ro, mode and size (in
// the largest unit that divides it), then its extra options, of which
// only exec and noexec are allowed.
func tmpfsData(m mount.Mount) (string, error) {
	var opts []string
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	t := m.TmpfsOptions
	if t == nil {
		return strings.Join(opts, ","), nil
	}
	if t.Mode != 0 {
		opts = append(opts, fmt.Sprintf("mode=%o", t.Mode))
	}
	if t.SizeBytes != 0 {
		opts = append(opts, "size="+sizeString(t.SizeBytes))
	}
	for _, o := range t.Options {
		if len(o) < 1 || len(o) > 2 {
			return "", fmt.Errorf("invalid tmpfs option %q", o)
		}
		if o[0] != "exec" && o[0] != "noexec" {
			return "", fmt.Errorf("invalid tmpfs option: %s", o[0])
		}
		opts = append(opts, strings.Join(o, "="))
	}
	return strings.Join(opts, ","), nil
}

func sizeString(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseDevice parses a --device value, "host[:container][:mode]" with mode
// made of r, w and m (default rwm).
func ParseDevice(s string) (container.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	dm := container.DeviceMapping{CgroupPermissions: "rwm"}
	switch len(parts) {
	case 3:
		dm.PathOnHost, dm.PathInContainer, dm.CgroupPermissions = parts[0], parts[1], parts[2]
	case 2:
		dm.PathOnHost = parts[0]
		if validDeviceMode(parts[1]) {
			dm.CgroupPermissions = parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 1:
		dm.PathOnHost = parts[0]
	default:
		return dm, errdefs.Invalid("invalid device specification: %s", s)
	}
	if dm.PathInContainer == "" {
		dm.PathInContainer = dm.PathOnHost
	}
	if !validDeviceMode(dm.CgroupPermissions) {
		return dm, errdefs.Invalid("invalid device specification: %s: bad mode %q", s, dm.CgroupPermissions)
	}
	if !path.IsAbs(dm.PathOnHost) || !path.IsAbs(dm.PathInContainer) {
		return dm, errdefs.Invalid("invalid device specification: %s: paths must be absolute", s)
	}
	return dm, nil
}
