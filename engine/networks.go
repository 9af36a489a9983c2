package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
	"github.com/berth-containers/berth/network/firewall"
	"github.com/berth-containers/berth/network/ipam"
	"github.com/berth-containers/berth/network/link"
)

// The predefined networks, as Docker has them: the default bridge that
// containers join unless told otherwise, and the pseudo-networks host and
// none. They are made on first use and cannot be removed.
const (
	defaultNetwork = "bridge"
	hostNetwork    = "host"
	noneNetwork    = "none"
)

// Network option keys `network create -o` understands: Docker's names,
// and mtu as the short form Podman users type.
const (
	optMTU        = "com.docker.network.driver.mtu"
	optMTUShort   = "mtu"
	optBridgeName = "com.docker.network.bridge.name"
)

// subnetLock serialises choosing subnets among every berth store on the
// host: two stores must not pick the same free range at once.
const subnetLock = "/run/berth/subnets.lock"

// predefinedDriver names the driver of a predefined network, "" for
// other names.
func predefinedDriver(name string) string {
	switch name {
	case defaultNetwork:
		return "bridge"
	case hostNetwork:
		return "host"
	case noneNetwork:
		return "null"
	}
	return ""
}

func (e *Engine) networkDir() string          { return filepath.Join(e.root, "network") }
func (e *Engine) networkPath(n string) string { return filepath.Join(e.networkDir(), n) }

// firewallTable names this store's nftables table: "berth" for the
// default root, and one derived from the root for others, so stores never
// replace each other's rules.
func (e *Engine) firewallTable() string {
	if e.root == DefaultRoot {
		return firewall.TableName
	}
	sum := sha256.Sum256([]byte(e.root))
	return firewall.TableName + "-" + hex.EncodeToString(sum[:4])
}

// lockNetworks serialises changes to this store's host networking
// (bridges, firewall, resolver records) with the reads they are made
// from.
func (e *Engine) lockNetworks(ctx context.Context) (*flock.Lock, error) {
	if err := os.MkdirAll(e.networkDir(), 0o700); err != nil {
		return nil, fmt.Errorf("network state directory: %w", err)
	}
	l, err := flock.Exclusive(ctx, e.networkPath("lock"))
	if err != nil {
		return nil, fmt.Errorf("lock networks: %w", err)
	}
	return l, nil
}

// Networks lists every network, the predefined ones included, oldest
// first. It reconciles the host's networking with the store first (see
// ReconcileNetworks), so `network ls` repairs what a crash left.
func (e *Engine) Networks(ctx context.Context) ([]*state.Network, error) {
	if _, err := e.defaultNetwork(ctx); err != nil {
		return nil, err
	}
	if err := e.ReconcileNetworks(ctx); err != nil {
		return nil, err
	}
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	return db.Networks(ctx)
}

// Network finds a network by ID, name or ID prefix.
func (e *Engine) Network(ctx context.Context, ref string) (*state.Network, error) {
	if predefinedDriver(ref) != "" {
		if _, err := e.defaultNetwork(ctx); err != nil {
			return nil, err
		}
	}
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	return db.Network(ctx, ref)
}

// defaultNetwork returns the default bridge network, making it and the
// pseudo-networks host and none on first use.
func (e *Engine) defaultNetwork(ctx context.Context) (*state.Network, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	n, err := db.Network(ctx, defaultNetwork)
	if err == nil || !errors.Is(err, errdefs.ErrNotFound) {
		return n, err
	}
	lock, err := e.lockNetworks(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lock.Unlock() }()
	if n, err := db.Network(ctx, defaultNetwork); err == nil {
		return n, nil // made by another process meanwhile
	}
	for _, name := range []string{hostNetwork, noneNetwork} {
		id, err := newID()
		if err != nil {
			return nil, err
		}
		err = db.CreateNetwork(ctx, &state.Network{ID: id, Name: name, Driver: predefinedDriver(name)})
		if err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
			return nil, err
		}
	}
	return e.createBridge(ctx, network.CreateRequest{Name: defaultNetwork,
		Options: map[string]string{optBridgeName: e.defaultBridgeName()}})
}

// defaultBridgeName is "berth0" for the default root; other stores get a
// name of their own, as two stores cannot share a bridge.
func (e *Engine) defaultBridgeName() string {
	if e.root == DefaultRoot {
		return "berth0"
	}
	sum := sha256.Sum256([]byte(e.root))
	return "berth-" + hex.EncodeToString(sum[:4])
}

// CreateNetwork makes a bridge network: its record with the address plan,
// its Linux bridge and its firewall rules. Nothing is left when it fails.
func (e *Engine) CreateNetwork(ctx context.Context, req network.CreateRequest) (*state.Network, error) {
	if predefinedDriver(req.Name) != "" {
		return nil, errdefs.Precondition("%s is a pre-defined network and cannot be created", req.Name)
	}
	if _, err := e.defaultNetwork(ctx); err != nil {
		return nil, err
	}
	lock, err := e.lockNetworks(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lock.Unlock() }()
	return e.createBridge(ctx, req)
}

// createBridge does CreateNetwork's work; the caller holds the network
// lock.
func (e *Engine) createBridge(ctx context.Context, req network.CreateRequest) (_ *state.Network, err error) {
	n, pools, err := newNetwork(req)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(subnetLock), 0o700); err != nil {
		return nil, fmt.Errorf("subnet lock: %w", err)
	}
	hostLock, err := flock.Exclusive(ctx, subnetLock)
	if err != nil {
		return nil, fmt.Errorf("lock subnets: %w", err)
	}
	defer func() { _ = hostLock.Unlock() }()
	hostPrefixes, err := link.HostPrefixes(ctx)
	if err != nil {
		return nil, err
	}
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	err = db.Tx(ctx, func(tx *state.Tx) error {
		nets, err := tx.Networks(ctx)
		if err != nil {
			return err
		}
		if n.Subnets, err = planSubnets(n, pools, nets, hostPrefixes); err != nil {
			return err
		}
		for _, o := range nets {
			if o.Bridge == n.Bridge {
				return errdefs.AlreadyExists("bridge %s is already used by network %s", n.Bridge, o.Name)
			}
		}
		return tx.CreateNetwork(ctx, n)
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = link.DeleteBridge(context.WithoutCancel(ctx), n.Bridge)
			_ = db.Tx(context.WithoutCancel(ctx), func(tx *state.Tx) error { return tx.DeleteNetwork(ctx, n.ID) })
		}
	}()
	if err := link.EnsureBridge(ctx, bridgeOf(n)); err != nil {
		return nil, err
	}
	if err := e.syncFirewall(ctx); err != nil {
		return nil, err
	}
	e.emit(ctx, "network", "create", n.ID, map[string]string{"name": n.Name, "type": n.Driver})
	return n, nil
}

// newNetwork checks a create request and turns it into a record whose
// subnets are still to be planned, and the pools the request named.
func newNetwork(req network.CreateRequest) (*state.Network, []ipam.Pool, error) {
	if err := validNetworkName(req.Name); err != nil {
		return nil, nil, err
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return nil, nil, errdefs.Invalid("network driver %q is not supported: berth has bridge networks", req.Driver)
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return nil, nil, errdefs.Invalid("berth networks always have IPv4: --ipv4=false is not supported")
	}
	id, err := newID()
	if err != nil {
		return nil, nil, err
	}
	n := &state.Network{ID: id, Name: req.Name, Driver: "bridge", Bridge: "br-" + id[:12],
		Internal: req.Internal, EnableIPv6: req.EnableIPv6 != nil && *req.EnableIPv6, Labels: req.Labels}
	if err := applyNetworkOptions(n, req.Options); err != nil {
		return nil, nil, err
	}
	pools, err := requestedPools(req.IPAM)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range pools {
		n.EnableIPv6 = n.EnableIPv6 || p.Subnet.Addr().Is6()
	}
	return n, pools, nil
}

// validNetworkName checks a name as Docker does.
func validNetworkName(name string) error {
	if name == "" {
		return errdefs.Invalid("a network needs a name")
	}
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '.' && c != '-')) {
			return errdefs.Invalid("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
		}
	}
	return nil
}

// applyNetworkOptions reads -o options into n.
func applyNetworkOptions(n *state.Network, opts map[string]string) error {
	for k, v := range opts {
		switch k {
		case optMTU, optMTUShort:
			mtu, err := strconv.Atoi(v)
			if err != nil || mtu < 68 || mtu > 65535 {
				return errdefs.Invalid("invalid network option %s=%q: the MTU must be a number from 68 to 65535", k, v)
			}
			n.MTU = mtu
		case optBridgeName:
			if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ \t\n:") {
				return errdefs.Invalid("invalid network option %s=%q: not an interface name", k, v)
			}
			n.Bridge = v
		default:
			return errdefs.Invalid("network option %q is not supported: use mtu (%s) or %s", k, optMTU, optBridgeName)
		}
		if n.Options == nil {
			n.Options = map[string]string{}
		}
		n.Options[k] = v
	}
	return nil
}

// requestedPools checks the subnets a request names: at most one per
// address family.
func requestedPools(conf *network.IPAM) ([]ipam.Pool, error) {
	if conf == nil {
		return nil, nil
	}
	if conf.Driver != "" && conf.Driver != "default" {
		return nil, errdefs.Invalid("IPAM driver %q is not supported: berth has the default one", conf.Driver)
	}
	var pools []ipam.Pool
	var have4, have6 bool
	for _, c := range conf.Config {
		if !c.Subnet.IsValid() {
			return nil, errdefs.Invalid("a gateway or ip-range needs a subnet")
		}
		p, err := ipam.NewPool(c.Subnet, c.IPRange, c.Gateway)
		if err != nil {
			return nil, err
		}
		is6 := c.Subnet.Addr().Is6()
		if (is6 && have6) || (!is6 && have4) {
			return nil, errdefs.Invalid("one IPv4 and one IPv6 subnet at most: %s is a second one", c.Subnet)
		}
		have4, have6 = have4 || !is6, have6 || is6
		pools = append(pools, p)
	}
	return pools, nil
}

// planSubnets completes a new network's subnets: the requested ones must
// not overlap another network's; an IPv4 subnet (and with IPv6 an IPv6
// one) is picked when none was asked for.
func planSubnets(n *state.Network, pools []ipam.Pool, nets []*state.Network, host []netip.Prefix) ([]state.Subnet, error) {
	var taken []netip.Prefix
	for _, o := range nets {
		for _, s := range o.Subnets {
			taken = append(taken, s.Subnet)
		}
	}
	var have4, have6 bool
	for _, p := range pools {
		for _, t := range taken {
			if t.Overlaps(p.Subnet) {
				return nil, errdefs.AlreadyExists("invalid pool request: pool %s overlaps with %s of another network", p.Subnet, t)
			}
		}
		have4, have6 = have4 || p.Subnet.Addr().Is4(), have6 || p.Subnet.Addr().Is6()
	}
	inUse := append(taken, host...)
	pick := func(from []ipam.SplitPool) error {
		sub, err := ipam.PickSubnetFrom(from, inUse)
		if err != nil {
			return err
		}
		p, err := ipam.NewPool(sub, netip.Prefix{}, netip.Addr{})
		pools = append(pools, p)
		return err
	}
	if !have4 {
		if err := pick(ipam.DefaultPools()); err != nil {
			return nil, err
		}
	}
	if n.EnableIPv6 && !have6 {
		if err := pick([]ipam.SplitPool{ipam.ULAPool(n.ID)}); err != nil {
			return nil, err
		}
	}
	// IPv4 first, as Docker lists them; a container's first address is
	// its IPv4 one.
	slices.SortStableFunc(pools, func(a, b ipam.Pool) int {
		switch a4, b4 := a.Subnet.Addr().Is4(), b.Subnet.Addr().Is4(); {
		case a4 && !b4:
			return -1
		case b4 && !a4:
			return 1
		}
		return 0
	})
	out := make([]state.Subnet, len(pools))
	for i, p := range pools {
		out[i] = state.Subnet{Subnet: p.Subnet, Gateway: p.Gateway}
		if p.Range != p.Subnet {
			out[i].IPRange = p.Range
		}
	}
	return out, nil
}

// poolOf is the IPAM pool of a stored subnet.
func poolOf(s state.Subnet) (ipam.Pool, error) {
	return ipam.NewPool(s.Subnet, s.IPRange, s.Gateway)
}

// bridgeOf is the desired Linux bridge of a network.
func bridgeOf(n *state.Network) link.Bridge {
	b := link.Bridge{Name: n.Bridge, MTU: n.MTU}
	for _, s := range n.Subnets {
		b.Addrs = append(b.Addrs, netip.PrefixFrom(s.Gateway, s.Subnet.Bits()))
	}
	return b
}

// RemoveNetwork removes a network no container is connected to, with its
// bridge, firewall rules and resolver records.
func (e *Engine) RemoveNetwork(ctx context.Context, ref string) error {
	n, err := e.Network(ctx, ref)
	if err != nil {
		return err
	}
	if predefinedDriver(n.Name) != "" {
		return errdefs.Precondition("%s is a pre-defined network and cannot be removed", n.Name)
	}
	lock, err := e.lockNetworks(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Unlock() }()
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	err = db.Tx(ctx, func(tx *state.Tx) error { return tx.DeleteNetwork(ctx, n.ID) })
	if err != nil {
		if errors.Is(err, errdefs.ErrFailedPrecondition) {
			return errdefs.Precondition("error while removing network %s: %v", n.Name, err)
		}
		return err
	}
	// The record is gone: what follows only tidies the host, and a
	// failure there is repaired by the next reconcile.
	errs := []error{link.DeleteBridge(ctx, n.Bridge), e.syncFirewall(ctx), e.writeResolverRecords(ctx)}
	e.emit(ctx, "network", "destroy", n.ID, map[string]string{"name": n.Name, "type": n.Driver})
	return errors.Join(errs...)
}

// PruneNetworks removes every network no container is connected to,
// except the predefined ones, and returns their names.
func (e *Engine) PruneNetworks(ctx context.Context) ([]string, error) {
	nets, err := e.Networks(ctx)
	if err != nil {
		return nil, err
	}
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, n := range nets {
		if predefinedDriver(n.Name) != "" {
			continue
		}
		eps, err := db.Endpoints(ctx, "", n.ID)
		if err != nil {
			return removed, err
		}
		if len(eps) > 0 {
			continue
		}
		err = e.RemoveNetwork(ctx, n.ID)
		switch {
		case err == nil:
			removed = append(removed, n.Name)
		case errors.Is(err, errdefs.ErrFailedPrecondition), errors.Is(err, errdefs.ErrNotFound):
			// A container joined it, or someone removed it, meanwhile.
		default:
			return removed, err
		}
	}
	return removed, nil
}

// InspectNetwork describes a network as Docker's inspect does, with the
// running containers attached to it.
func (e *Engine) InspectNetwork(ctx context.Context, ref string) (network.Inspect, error) {
	n, err := e.Network(ctx, ref)
	if err != nil {
		return network.Inspect{}, err
	}
	db, err := e.db(ctx)
	if err != nil {
		return network.Inspect{}, err
	}
	eps, err := db.Endpoints(ctx, "", n.ID)
	if err != nil {
		return network.Inspect{}, err
	}
	out := network.Inspect{Network: networkSummary(n), Containers: map[string]network.EndpointResource{}}
	for _, ep := range eps {
		a := ep.Attached
		if a == nil {
			continue
		}
		c, err := db.Container(ctx, ep.ContainerID)
		if err != nil {
			continue // removed meanwhile
		}
		mac, _ := ipam.ParseMAC(a.MAC)
		out.Containers[c.ID] = network.EndpointResource{Name: c.Name, EndpointID: a.EndpointID,
			MacAddress: network.HardwareAddr(mac), IPv4Address: a.Addr(4), IPv6Address: a.Addr(6)}
	}
	return out, nil
}

// networkSummary is the Docker API's view of a network record.
func networkSummary(n *state.Network) network.Network {
	out := network.Network{Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
		EnableIPv4: n.Driver == "bridge", EnableIPv6: n.EnableIPv6, Internal: n.Internal,
		IPAM:    network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
		Options: map[string]string{}, Labels: map[string]string{}}
	for k, v := range n.Options {
		out.Options[k] = v
	}
	for k, v := range n.Labels {
		out.Labels[k] = v
	}
	if n.Driver == "bridge" {
		out.Options[optBridgeName] = n.Bridge
		if n.MTU != 0 {
			out.Options[optMTU] = strconv.Itoa(n.MTU)
		}
		delete(out.Options, optMTUShort)
	}
	for _, s := range n.Subnets {
		out.IPAM.Config = append(out.IPAM.Config, network.IPAMConfig{Subnet: s.Subnet, IPRange: s.IPRange, Gateway: s.Gateway})
	}
	return out
}

// PortsByContainer lists the published ports of every container, by
// container ID.
func (e *Engine) PortsByContainer(ctx context.Context) (map[string][]state.PublishedPort, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	ports, err := db.Ports(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[string][]state.PublishedPort{}
	for _, p := range ports {
		out[p.ContainerID] = append(out[p.ContainerID], p)
	}
	return out, nil
}

// PublishedPorts lists the host ports a running container holds.
func (e *Engine) PublishedPorts(ctx context.Context, ref string) ([]state.PublishedPort, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	return db.Ports(ctx, c.ID)
}
