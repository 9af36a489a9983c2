package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
	"github.com/berth-containers/berth/network/link"
)

// ConnectNetwork connects a container to a bridge network. A running
// container gets the new interface at once; a stopped one at its next
// start.
func (e *Engine) ConnectNetwork(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error {
	c, n, unlock, err := e.lockForNetworkChange(ctx, netRef, ctrRef)
	if err != nil {
		return err
	}
	defer unlock()
	ep, err := endpointFor(c, n, es)
	if err != nil {
		return err
	}
	running := c.State.Status == StatusRunning || c.State.Status == StatusPaused
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	err = db.Tx(ctx, func(tx *state.Tx) error {
		eps, err := tx.Endpoints(ctx, c.ID, "")
		if err != nil {
			return err
		}
		for _, o := range eps {
			if o.NetworkID == n.ID {
				return errdefs.AlreadyExists("endpoint with name %s already exists in network %s", c.Name, n.Name)
			}
		}
		if running {
			if ep.Attached, err = allocate(ctx, tx, c, ep, n, freeIfIndex(eps)); err != nil {
				return err
			}
			if hasGateway(eps) {
				// The default routes stay where they are.
				ep.Attached.Gateway4, ep.Attached.Gateway6 = netip.Addr{}, netip.Addr{}
			}
		}
		return tx.PutEndpoint(ctx, ep)
	})
	if err != nil {
		return err
	}
	if running {
		routed := ep.Attached.Gateway4.IsValid() || ep.Attached.Gateway6.IsValid()
		made, err := attachLink(ctx, linkEndpoint(c, attached{ep, n}, e.netnsPath(c.ID), routed, false), n)
		if err == nil {
			err = e.publishHostState(ctx, made, n.Name != defaultNetwork, true)
		}
		if err != nil {
			_ = link.Detach(context.WithoutCancel(ctx), ep.Attached.HostIf)
			_ = db.Tx(context.WithoutCancel(ctx), func(tx *state.Tx) error { return tx.DeleteEndpoint(ctx, c.ID, n.ID) })
			return err
		}
	}
	e.emit(ctx, "network", "connect", n.ID, map[string]string{"container": c.ID, "name": n.Name, "type": n.Driver})
	return nil
}

// DisconnectNetwork disconnects a container from a network: a running
// one loses the interface, and the ports published through it, at once.
// With force, a container that is not connected is not an error.
func (e *Engine) DisconnectNetwork(ctx context.Context, netRef, ctrRef string, force bool) error {
	c, n, unlock, err := e.lockForNetworkChange(ctx, netRef, ctrRef)
	if err != nil {
		return err
	}
	defer unlock()
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	var gone *state.Endpoint
	portsChanged := false
	err = db.Tx(ctx, func(tx *state.Tx) error {
		eps, err := tx.Endpoints(ctx, c.ID, n.ID)
		if err != nil {
			return err
		}
		if len(eps) == 0 {
			if force {
				return nil
			}
			return errdefs.NotFound("container %s is not connected to network %s", c.Name, n.Name)
		}
		gone = eps[0]
		if gone.Attached != nil {
			if portsChanged, err = dropPortsOf(ctx, tx, c.ID, gone.Attached); err != nil {
				return err
			}
		}
		return tx.DeleteEndpoint(ctx, c.ID, n.ID)
	})
	if err != nil || gone == nil {
		return err
	}
	if gone.Attached != nil {
		if err := link.Detach(ctx, gone.Attached.HostIf); err != nil {
			return err
		}
		if err := e.publishHostState(ctx, portsChanged, n.Name != defaultNetwork, false); err != nil {
			return err
		}
	}
	e.emit(ctx, "network", "disconnect", n.ID, map[string]string{"container": c.ID, "name": n.Name, "type": n.Driver})
	return nil
}

// lockForNetworkChange finds the container and the network of a connect
// or disconnect, checks that they can be joined, and locks the container
// against a start or stop meanwhile.
func (e *Engine) lockForNetworkChange(ctx context.Context, netRef, ctrRef string) (*state.Container, *state.Network, func(), error) {
	c, err := e.Container(ctx, ctrRef)
	if err != nil {
		return nil, nil, nil, err
	}
	n, err := e.Network(ctx, netRef)
	if err != nil {
		return nil, nil, nil, err
	}
	hc := c.HostConfig
	switch {
	case n.Driver == "host" || hc.NetworkMode.IsHost():
		return nil, nil, nil, errdefs.Invalid("container cannot be disconnected from host network or connected to host network")
	case n.Driver == "null" || hc.NetworkMode.IsNone():
		return nil, nil, nil, errdefs.Invalid("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	case hc.NetworkMode.IsContainer():
		return nil, nil, nil, errdefs.Invalid("container sharing network namespace with another container or host cannot be connected to any other network")
	}
	lock, err := flock.Exclusive(ctx, e.containerPath(c.ID, lockName))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("lock container %s: %w", c.ID[:12], err)
	}
	if c, err = e.Container(ctx, c.ID); err != nil {
		_ = lock.Unlock()
		return nil, nil, nil, err
	}
	return c, n, func() { _ = lock.Unlock() }, nil
}

// freeIfIndex is the lowest N such that ethN is free among eps'
// attachments.
func freeIfIndex(eps []*state.Endpoint) int {
	var names []string
	for _, ep := range eps {
		if ep.Attached != nil {
			names = append(names, ep.Attached.IfName)
		}
	}
	for i := 0; ; i++ {
		if !slices.Contains(names, "eth"+strconv.Itoa(i)) {
			return i
		}
	}
}

func hasGateway(eps []*state.Endpoint) bool {
	for _, ep := range eps {
		if a := ep.Attached; a != nil && (a.Gateway4.IsValid() || a.Gateway6.IsValid()) {
			return true
		}
	}
	return false
}

// dropPortsOf releases the container's ports that lead to a's addresses
// and says whether there were any.
func dropPortsOf(ctx context.Context, tx *state.Tx, id string, a *state.Attachment) (bool, error) {
	ports, err := tx.Ports(ctx, id)
	if err != nil {
		return false, err
	}
	keep := ports[:0]
	for _, p := range ports {
		mine := false
		for _, addr := range a.Addrs {
			mine = mine || addr.Addr() == p.ContainerIP
		}
		if !mine {
			keep = append(keep, p)
		}
	}
	if len(keep) == len(ports) {
		return false, nil
	}
	return true, tx.SetPorts(ctx, id, keep)
}
