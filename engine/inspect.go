package engine

import (
	"context"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-containers/berth/engine/state"
)

// Inspect describes a container as Docker's inspect does.
func (e *Engine) Inspect(ctx context.Context, ref string) (*container.InspectResponse, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	return e.inspectView(c), nil
}

func (e *Engine) inspectView(c *state.Container) *container.InspectResponse {
	path, args := commandOf(c.Config)
	st := c.State
	v := &container.InspectResponse{
		ID: c.ID, Created: c.Created.Format(time.RFC3339Nano), Path: path, Args: args,
		State: &container.State{
			Status: container.ContainerState(st.Status), Running: st.Status == StatusRunning || st.Status == StatusPaused,
			Paused: st.Status == StatusPaused, Restarting: st.Status == StatusRestarting,
			OOMKilled: st.OOMKilled, Dead: st.Status == StatusDead, Pid: st.Pid, ExitCode: st.ExitCode,
			Error: st.Error, StartedAt: dockerTime(st.StartedAt), FinishedAt: dockerTime(st.FinishedAt),
			Health: st.Health,
		},
		Image:           c.ImageID,
		ResolvConfPath:  e.containerPath(c.ID, resolvFile),
		HostnamePath:    e.containerPath(c.ID, hostnameFile),
		HostsPath:       e.containerPath(c.ID, hostsFile),
		LogPath:         c.LogPath,
		Name:            "/" + c.Name,
		RestartCount:    c.RestartCount,
		Driver:          "overlay",
		Platform:        "linux",
		HostConfig:      c.HostConfig,
		Config:          c.Config,
		GraphDriver:     e.graphDriver(c.ID),
		NetworkSettings: &container.NetworkSettings{},
	}
	for _, m := range c.Mounts {
		v.Mounts = append(v.Mounts, container.MountPoint{
			Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination,
			Driver: m.Driver, Mode: m.Mode, RW: m.RW, Propagation: mount.Propagation(m.Propagation),
		})
	}
	return v
}

// commandOf splits the container's command into Path and Args.
func commandOf(cfg *container.Config) (string, []string) {
	full := append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if len(full) == 0 {
		return "", []string{}
	}
	return full[0], full[1:]
}

// dockerTime formats a time as Docker does, with its zero time for
// never.
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// graphDriver reports where the container's layers are.
func (e *Engine) graphDriver(id string) *storage.DriverData {
	d := &storage.DriverData{Name: "overlay", Data: map[string]string{"MergedDir": e.containerPath(id, rootfsDir)}}
	if upper, err := e.Snapshots.UpperDir(id); err == nil {
		d.Data["UpperDir"] = upper
		d.Data["WorkDir"] = strings.TrimSuffix(upper, "upper") + "work"
	}
	return d
}

// CommandLine is the command column of ps: the command and its
// arguments joined by spaces.
func CommandLine(cfg *container.Config) string {
	path, args := commandOf(cfg)
	return strings.TrimSpace(path + " " + strings.Join(args, " "))
}

// ContainerSize is ps -s's sizes: what the container wrote, and that
// plus its image. Errors give zeros: sizes are informative.
func (e *Engine) ContainerSize(ctx context.Context, c *state.Container) (rw, virtual int64) {
	if u, err := e.Snapshots.Usage(ctx, c.ID); err == nil {
		rw = u.Size
	}
	virtual = rw
	img, err := e.Images.Get(ctx, c.ImageID)
	if err != nil {
		return rw, virtual
	}
	sizes, err := e.LayerSizes(ctx)
	if err != nil {
		return rw, virtual
	}
	return rw, rw + ImageSize(img, sizes)
}
