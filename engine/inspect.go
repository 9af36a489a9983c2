package engine

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/network/ipam"
)

// InspectResponse is Docker's inspect of a container, plus berth's own
// network settings (firewall rules and routes) when the container has
// any.
type InspectResponse struct {
	*container.InspectResponse
	// Firewall holds the container's own firewall: rules in order, then
	// the default per direction.
	Firewall *FirewallView `json:",omitempty"`
	// Routes are the extra routes inside the container.
	Routes []string `json:",omitempty"`
}

// FirewallView is a container's firewall as inspect shows it, in the
// syntax of --firewall and --firewall-default.
type FirewallView struct {
	Rules   []string
	Default string
}

// Inspect describes a container as Docker's inspect does.
func (e *Engine) Inspect(ctx context.Context, ref string) (*InspectResponse, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	v := &InspectResponse{InspectResponse: e.inspectView(c), Routes: c.Net.Routes}
	if len(c.Net.Firewall) > 0 || c.Net.FirewallDefault != "" {
		_, policy, _ := containerRules(c.Net)
		v.Firewall = &FirewallView{Rules: c.Net.Firewall,
			Default: "ingress=" + policy.Ingress.String() + ",egress=" + policy.Egress.String()}
	}
	if err := e.inspectNetwork(ctx, c, v.NetworkSettings); err != nil {
		return nil, err
	}
	return v, nil
}

// inspectNetwork fills NetworkSettings: each network the container is
// connected to, with its addresses while it runs, and its ports.
func (e *Engine) inspectNetwork(ctx context.Context, c *state.Container, ns *container.NetworkSettings) error {
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	eps, err := db.Endpoints(ctx, c.ID, "")
	if err != nil {
		return err
	}
	ns.Networks = map[string]*network.EndpointSettings{}
	for _, ep := range eps {
		n, err := db.Network(ctx, ep.NetworkID)
		if err != nil {
			continue // removed meanwhile
		}
		ns.Networks[n.Name] = endpointView(c, n, ep)
	}
	if mode := c.HostConfig.NetworkMode; mode.IsHost() || mode.IsNone() {
		if n, err := db.Network(ctx, string(mode)); err == nil {
			ns.Networks[n.Name] = &network.EndpointSettings{NetworkID: n.ID}
		}
	}
	ns.Ports = network.PortMap{}
	if len(eps) > 0 && c.State.Status == StatusRunning {
		ns.SandboxKey = e.netnsPath(c.ID)
	}
	ports, err := db.Ports(ctx, c.ID)
	if err != nil {
		return err
	}
	for p := range c.Config.ExposedPorts {
		ns.Ports[p] = nil
	}
	for _, p := range ports {
		key, ok := network.PortFrom(p.ContainerPort, network.IPProtocol(p.Proto))
		if !ok {
			continue
		}
		host := p.HostIP
		if !host.IsValid() {
			host = netip.IPv4Unspecified()
		}
		ns.Ports[key] = append(ns.Ports[key], network.PortBinding{HostIP: host, HostPort: strconv.Itoa(int(p.HostPort))})
	}
	return nil
}

// endpointView is Docker's view of one endpoint.
func endpointView(c *state.Container, n *state.Network, ep *state.Endpoint) *network.EndpointSettings {
	v := &network.EndpointSettings{NetworkID: n.ID, Aliases: ep.Aliases}
	if ep.IPv4.IsValid() || ep.IPv6.IsValid() {
		v.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ep.IPv4, IPv6Address: ep.IPv6}
	}
	if mac, err := ipam.ParseMAC(ep.MAC); err == nil {
		v.MacAddress = network.HardwareAddr(mac)
	}
	a := ep.Attached
	if a == nil {
		return v
	}
	v.EndpointID = a.EndpointID
	if mac, err := ipam.ParseMAC(a.MAC); err == nil {
		v.MacAddress = network.HardwareAddr(mac)
	}
	if p := a.Addr(4); p.IsValid() {
		v.IPAddress, v.IPPrefixLen, v.Gateway = p.Addr(), p.Bits(), a.Gateway4
	}
	if p := a.Addr(6); p.IsValid() {
		v.GlobalIPv6Address, v.GlobalIPv6PrefixLen, v.IPv6Gateway = p.Addr(), p.Bits(), a.Gateway6
	}
	if n.Name != defaultNetwork {
		v.DNSNames = append([]string{c.Name, c.ID[:12]}, ep.Aliases...)
	}
	return v
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
