package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/snapshot"
)

// VolumeDriver is the one volume driver berth has: directories on the
// host, like Docker's "local".
const VolumeDriver = "local"

// VolumeRequest is what volume create asks for.
type VolumeRequest struct {
	Name    string
	Labels  map[string]string
	Options map[string]string
	// anonymous marks volumes made for a container's unnamed mounts.
	anonymous bool
}

// CreateVolume makes a named volume, or returns the existing one: like
// Docker, creating a volume that exists is not an error.
func (e *Engine) CreateVolume(ctx context.Context, req VolumeRequest) (*state.Volume, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	if req.Name == "" {
		req.anonymous = true // Docker labels unnamed volumes anonymous
		if req.Name, err = newID(); err != nil {
			return nil, err
		}
	} else if err := validName(req.Name); err != nil {
		return nil, errdefs.Invalid("invalid volume name %q: use [a-zA-Z0-9][a-zA-Z0-9_.-], two characters or more", req.Name)
	}
	if len(req.Options) > 0 {
		return nil, errdefs.Invalid("the local volume driver takes no options yet")
	}
	dir := filepath.Join(e.volumesDir(), req.Name)
	v := &state.Volume{
		Name: req.Name, Driver: VolumeDriver, Mountpoint: filepath.Join(dir, "_data"),
		Created: time.Now().UTC(), Labels: req.Labels, Anonymous: req.anonymous,
	}
	// The directory first: a record always has its directory, and a
	// directory without a record is harmless and reused.
	if err := os.MkdirAll(v.Mountpoint, 0o755); err != nil {
		return nil, fmt.Errorf("make volume directory: %w", err)
	}
	got, created, err := db.CreateVolume(ctx, v)
	if err != nil {
		return nil, err
	}
	if created {
		e.emit(ctx, "volume", "create", got.Name, map[string]string{"driver": VolumeDriver})
	}
	return got, nil
}

// Volume returns one volume.
func (e *Engine) Volume(ctx context.Context, name string) (*state.Volume, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	return db.Volume(ctx, name)
}

// Volumes lists the volumes.
func (e *Engine) Volumes(ctx context.Context) ([]*state.Volume, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	return db.Volumes(ctx)
}

// VolumeUsers returns, for each volume name, the containers that use it.
func (e *Engine) VolumeUsers(ctx context.Context) (map[string][]string, error) {
	cs, err := e.Containers(ctx)
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, c := range cs {
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				users[m.Name] = append(users[m.Name], c.ID)
			}
		}
	}
	return users, nil
}

// RemoveVolume deletes a volume and its data. A volume in use by a
// container is refused unless force, and even then while it runs.
func (e *Engine) RemoveVolume(ctx context.Context, name string, force bool) error {
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	v, err := db.Volume(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) && force {
		return nil // Docker's rm -f of a missing volume succeeds
	}
	if err != nil {
		return err
	}
	users, err := e.VolumeUsers(ctx)
	if err != nil {
		return err
	}
	if ids := users[v.Name]; len(ids) > 0 && !force {
		return errdefs.Precondition("remove %s: volume is in use - [%s]", v.Name, strings.Join(ids, ", "))
	}
	return e.deleteVolume(ctx, v)
}

func (e *Engine) deleteVolume(ctx context.Context, v *state.Volume) error {
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	if err := db.DeleteVolume(ctx, v.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if err := os.RemoveAll(filepath.Dir(v.Mountpoint)); err != nil {
		return fmt.Errorf("remove volume data: %w", err)
	}
	e.emit(ctx, "volume", "destroy", v.Name, map[string]string{"driver": VolumeDriver})
	return nil
}

// PruneVolumes removes unused volumes: anonymous ones only, unless all
// (Docker 23's behaviour). It returns the names removed and the bytes
// freed.
func (e *Engine) PruneVolumes(ctx context.Context, all bool) ([]string, int64, error) {
	vs, err := e.Volumes(ctx)
	if err != nil {
		return nil, 0, err
	}
	users, err := e.VolumeUsers(ctx)
	if err != nil {
		return nil, 0, err
	}
	var names []string
	var freed int64
	for _, v := range vs {
		if len(users[v.Name]) > 0 || (!all && !v.Anonymous) {
			continue
		}
		size := volumeSize(ctx, v)
		if err := e.deleteVolume(ctx, v); err != nil {
			return names, freed, err
		}
		names = append(names, v.Name)
		freed += size
	}
	return names, freed, nil
}

// volumeEvents records a volume event (mount, unmount) for each volume the
// container uses, as Docker does around its runs.
func (e *Engine) volumeEvents(ctx context.Context, c *state.Container, action string) {
	for _, m := range c.Mounts {
		if m.Type != "volume" {
			continue
		}
		attrs := map[string]string{"driver": VolumeDriver}
		if action == "mount" {
			attrs["container"], attrs["destination"] = c.ID, m.Destination
			attrs["propagation"], attrs["read/write"] = m.Propagation, fmt.Sprint(m.RW)
		} else {
			attrs["container"] = c.ID
		}
		e.emit(ctx, "volume", action, m.Name, attrs)
	}
}

// volumeSize is the disk space a volume's data takes; 0 when unreadable,
// since sizes only inform.
func volumeSize(ctx context.Context, v *state.Volume) int64 {
	u, err := snapshot.DirUsage(ctx, v.Mountpoint)
	if err != nil {
		return 0
	}
	return u.Size
}
