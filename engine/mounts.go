package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"

	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/engine/specgen"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
)

// resolveMounts turns -v, --mount, the container's anonymous volumes and
// the image's VOLUMEs into mount points, creating the volumes they need.
// A bind source that does not exist is made for -v, as Docker does, and
// refused for --mount.
func (e *Engine) resolveMounts(ctx context.Context, c *state.Container, imageVolumes map[string]struct{}) ([]state.MountPoint, error) {
	var ms []mount.Mount
	for _, b := range c.HostConfig.Binds {
		m, err := specgen.ParseBind(b)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	ms = append(ms, c.HostConfig.Mounts...)
	taken := map[string]bool{}
	for _, m := range ms {
		if taken[path.Clean(m.Target)] {
			return nil, errdefs.Invalid("duplicate mount point: %s", m.Target)
		}
		taken[path.Clean(m.Target)] = true
	}
	for dst := range c.HostConfig.Tmpfs {
		taken[path.Clean(dst)] = true
	}
	for _, vols := range []map[string]struct{}{c.Config.Volumes, imageVolumes} {
		for _, dst := range sortedKeys(vols) {
			if !taken[path.Clean(dst)] {
				taken[path.Clean(dst)] = true
				ms = append(ms, mount.Mount{Type: mount.TypeVolume, Target: dst})
			}
		}
	}
	fromFlag := len(c.HostConfig.Binds)
	out := make([]state.MountPoint, 0, len(ms))
	for i, m := range ms {
		mp, err := e.mountPoint(ctx, m, i < fromFlag)
		if err != nil {
			return nil, err
		}
		out = append(out, mp)
	}
	return out, nil
}

func sortedKeys(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// mountPoint resolves one mount: a volume is created if missing, a bind
// source checked (or, for -v, made).
func (e *Engine) mountPoint(ctx context.Context, m mount.Mount, fromV bool) (state.MountPoint, error) {
	mp := state.MountPoint{Type: m.Type, Destination: path.Clean(m.Target), RW: !m.ReadOnly, Mode: mountMode(m)}
	if m.BindOptions != nil {
		mp.Propagation = string(m.BindOptions.Propagation)
	}
	switch m.Type {
	case mount.TypeBind:
		mp.Source = m.Source
		if mp.Propagation == "" {
			mp.Propagation = "rprivate"
		}
		if _, err := os.Stat(m.Source); errors.Is(err, os.ErrNotExist) {
			if !fromV {
				return mp, errdefs.Invalid("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
			}
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return mp, fmt.Errorf("make bind source %s: %w", m.Source, err)
			}
		} else if err != nil {
			return mp, fmt.Errorf("bind source %s: %w", m.Source, err)
		}
	case mount.TypeVolume:
		v, err := e.CreateVolume(ctx, VolumeRequest{Name: m.Source, anonymous: m.Source == ""})
		if err != nil {
			return mp, err
		}
		mp.Name, mp.Source = v.Name, v.Mountpoint
		mp.Driver = VolumeDriver
		if m.VolumeOptions != nil && m.VolumeOptions.NoCopy {
			mp.NoCopy = true
		}
	case mount.TypeTmpfs:
	default:
		return mp, errdefs.Invalid("mount type %q is not supported: use bind, volume or tmpfs", m.Type)
	}
	return mp, nil
}

// mountMode is the Mode column Docker shows: the -v options as given.
func mountMode(m mount.Mount) string {
	if m.ReadOnly {
		return "ro"
	}
	return ""
}

// specMounts turns the container's mount points into OCI mounts, and
// copies an image's content into a volume that is still empty, as
// Docker does on a volume's first use.
func (e *Engine) specMounts(c *state.Container, rootfs string) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, mp := range c.Mounts {
		if mp.Type == mount.TypeVolume && !mp.NoCopy {
			if err := copyUp(rootfs, mp.Destination, mp.Source); err != nil {
				return nil, err
			}
		}
		m := mount.Mount{Type: mp.Type, Source: mp.Source, Target: mp.Destination, ReadOnly: !mp.RW}
		if mp.Propagation != "" {
			m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(mp.Propagation)}
		}
		if mp.Type == mount.TypeTmpfs {
			m = tmpfsMount(c.HostConfig.Mounts, mp.Destination, m)
		}
		sm, err := specgen.MountToSpec(m, mp.Source)
		if err != nil {
			return nil, err
		}
		out = append(out, sm)
	}
	return out, nil
}

// tmpfsMount finds the --mount that made a tmpfs mount point, whose size
// and mode the mount point does not record.
func tmpfsMount(ms []mount.Mount, dst string, def mount.Mount) mount.Mount {
	for _, m := range ms {
		if m.Type == mount.TypeTmpfs && path.Clean(m.Target) == dst {
			return m
		}
	}
	return def
}
