package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-containers/berth/engine/specgen"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/network/firewall"
	"github.com/berth-containers/berth/network/ipam"
	"github.com/berth-containers/berth/network/link"
	"github.com/berth-containers/berth/network/netns"
)

// netnsPath is where a container's network namespace is kept (a bind
// mount of its nsfs file) while the container runs.
func (e *Engine) netnsPath(id string) string { return filepath.Join(e.root, "netns", id) }

// ownNetNS says whether the container gets a network namespace of its own
// that the engine makes: every mode but host and container:<id>.
func ownNetNS(hc *container.HostConfig) bool {
	return !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer()
}

// networkFor resolves a container's network mode to the network it
// joins at create: the default bridge for "", default and bridge, the
// named network otherwise; nil for host, none and container:<id>.
func (e *Engine) networkFor(ctx context.Context, mode container.NetworkMode) (*state.Network, error) {
	switch {
	case mode.IsHost(), mode.IsNone(), mode.IsContainer():
		return nil, nil
	case mode == "" || mode.IsDefault() || mode.IsBridge():
		return e.defaultNetwork(ctx)
	}
	n, err := e.Network(ctx, string(mode))
	if err != nil {
		return nil, err
	}
	if n.Driver != "bridge" {
		return nil, errdefs.Invalid("network %s is a %s network: use --network %s", n.Name, n.Driver, n.Name)
	}
	return n, nil
}

// endpointFor turns Docker's endpoint settings for network n into the
// endpoint a container asks for, checking what can be checked before the
// container runs.
func endpointFor(c *state.Container, n *state.Network, es *network.EndpointSettings) (*state.Endpoint, error) {
	ep := &state.Endpoint{ContainerID: c.ID, NetworkID: n.ID}
	if es == nil {
		return ep, nil
	}
	user := n.Name != defaultNetwork
	if len(es.Aliases) > 0 && !user {
		return nil, errdefs.Invalid("network-scoped aliases are only supported for user-defined networks")
	}
	ep.Aliases = slices.Clone(es.Aliases)
	if ip := es.IPAMConfig; ip != nil && (ip.IPv4Address.IsValid() || ip.IPv6Address.IsValid()) {
		if !user {
			return nil, errdefs.Invalid("user specified IP address is supported on user defined networks only")
		}
		for _, want := range []netip.Addr{ip.IPv4Address, ip.IPv6Address} {
			if want.IsValid() && !inSubnets(n, want) {
				return nil, errdefs.Invalid("no configured subnet of network %s contains the IP address %s", n.Name, want)
			}
		}
		ep.IPv4, ep.IPv6 = ip.IPv4Address.Unmap(), ip.IPv6Address
	}
	if len(es.MacAddress) > 0 {
		mac, err := ipam.ParseMAC(es.MacAddress.String())
		if err != nil {
			return nil, err
		}
		ep.MAC = mac.String()
	}
	return ep, nil
}

func inSubnets(n *state.Network, a netip.Addr) bool {
	for _, s := range n.Subnets {
		if s.Subnet.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// setupNetwork gives a container about to start its network and returns
// the namespace path for its spec ("" for the host's). For its own
// namespace it makes it, attaches each endpoint (address, veth), holds
// its published ports, writes the firewall rules, host and container
// side, and the resolver's records, then /etc/hosts and resolv.conf.
// Whatever it made goes again when it fails.
func (e *Engine) setupNetwork(ctx context.Context, c *state.Container) (_ string, err error) {
	if c.HostConfig.NetworkMode.IsHost() {
		return "", nil
	}
	if c.HostConfig.NetworkMode.IsContainer() {
		return e.joinNetNS(ctx, c)
	}
	rebooted, err := e.rebootedSinceLastLook()
	if err != nil {
		return "", err
	}
	if rebooted {
		// Bridges, veths and rules went with the last boot; records of
		// running containers did not.
		if err := e.ReconcileNetworks(ctx); err != nil {
			return "", err
		}
	}
	path := e.netnsPath(c.ID)
	if _, err := os.Lstat(path); err == nil {
		// What a killed earlier start left goes first. Without its
		// namespace it left at most address and port rows, which this
		// start's transaction replaces.
		if err := e.teardownNetwork(ctx, c.ID); err != nil {
			return "", err
		}
	}
	defer func() {
		if err != nil {
			_ = e.teardownNetwork(context.WithoutCancel(ctx), c.ID)
		}
	}()
	if err := netns.Create(path); err != nil {
		return "", err
	}
	db, err := e.db(ctx)
	if err != nil {
		return "", err
	}
	eps, err := db.Endpoints(ctx, c.ID, "")
	if err != nil {
		return "", err
	}
	att, err := e.attachEndpoints(ctx, c, eps, path)
	if err != nil {
		return "", err
	}
	if err := e.applyContainerFirewall(ctx, c, path); err != nil {
		return "", err
	}
	return path, e.writeNetFiles(ctx, c, att)
}

// attached is one endpoint of a starting container with its network.
type attached struct {
	ep *state.Endpoint
	n  *state.Network
}

// attachEndpoints allocates addresses and ports in one transaction, makes
// the veths, then brings the host firewall and the resolver up to date.
func (e *Engine) attachEndpoints(ctx context.Context, c *state.Container, eps []*state.Endpoint, path string) ([]attached, error) {
	if len(eps) == 0 {
		return nil, nil
	}
	var att []attached
	var ports []state.PublishedPort
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	err = db.Tx(ctx, func(tx *state.Tx) error {
		att = att[:0]
		for i, ep := range eps {
			n, err := tx.Network(ctx, ep.NetworkID)
			if err != nil {
				return err
			}
			if ep.Attached, err = allocate(ctx, tx, c, ep, n, i); err != nil {
				return err
			}
			if err := tx.PutEndpoint(ctx, ep); err != nil {
				return err
			}
			att = append(att, attached{ep, n})
		}
		var err error
		if ports, err = e.allocatePorts(ctx, tx, c, att[0].ep.Attached); err != nil || len(ports) == 0 {
			// No ports: none are left from before either, as a start
			// that was killed left its namespace and was torn down.
			return err
		}
		return tx.SetPorts(ctx, c.ID, ports)
	})
	if err != nil {
		return nil, err
	}
	bridgeMade := false
	for i, a := range att {
		made, err := attachLink(ctx, linkEndpoint(c, a, path, i == firstRouted(att), len(ports) > 0), a.n)
		if err != nil {
			return nil, err
		}
		bridgeMade = bridgeMade || made
	}
	return att, e.publishHostState(ctx, len(ports) > 0 || bridgeMade, userNetworks(att), true)
}

// firstRouted is the index of the endpoint that gives the container its
// default routes: the first on a network with a way out.
func firstRouted(att []attached) int {
	for i, a := range att {
		if !a.n.Internal {
			return i
		}
	}
	return -1
}

func userNetworks(att []attached) bool {
	for _, a := range att {
		if a.n.Name != defaultNetwork {
			return true
		}
	}
	return false
}

// publishHostState rewrites, under the network lock, what depends on all
// containers of the store: the host firewall when ports or bridges
// changed, and the resolver's records when a user-defined network did,
// starting the resolver when a container joined.
func (e *Engine) publishHostState(ctx context.Context, rules, records, joined bool) error {
	if !rules && !records {
		return nil
	}
	lock, err := e.lockNetworks(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Unlock() }()
	if rules {
		if err := e.syncFirewall(ctx); err != nil {
			return err
		}
	}
	if records {
		if err := e.writeResolverRecords(ctx); err != nil {
			return err
		}
		if joined {
			return e.ensureResolver()
		}
	}
	return nil
}

// attachLink makes an endpoint's veth, and the bridge first when it is
// missing (after a reboot): made reports that, as the firewall then
// needs writing too.
func attachLink(ctx context.Context, le link.Endpoint, n *state.Network) (made bool, err error) {
	err = link.Attach(ctx, le)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// The veth of this container's last run, in a namespace the
		// kernel has not finished deleting: delete it now.
		if err := link.Detach(ctx, le.HostIf); err != nil {
			return false, err
		}
		err = link.Attach(ctx, le)
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		return false, err
	}
	if err := link.EnsureBridge(ctx, bridgeOf(n)); err != nil {
		return false, err
	}
	return true, link.Attach(ctx, le)
}

// linkEndpoint is the desired veth of an attached endpoint.
func linkEndpoint(c *state.Container, a attached, path string, routed, hairpin bool) link.Endpoint {
	at := a.ep.Attached
	le := link.Endpoint{NetNS: path, Bridge: a.n.Bridge, IfName: at.IfName, HostIf: at.HostIf,
		Addrs: at.Addrs, MTU: a.n.MTU, Hairpin: hairpin}
	le.MAC, _ = ipam.ParseMAC(at.MAC)
	if routed {
		le.Gateway4, le.Gateway6 = at.Gateway4, at.Gateway6
	}
	for _, r := range c.Net.Routes {
		rt, err := link.ParseRoute(r)
		if err != nil {
			continue // checked at create
		}
		if routeBelongs(rt, a, routed) {
			le.Routes = append(le.Routes, rt)
		}
	}
	return le
}

// routeBelongs says whether an extra route goes through this endpoint:
// the one whose subnet holds its next hop, or for an on-link route the
// routed one.
func routeBelongs(r link.Route, a attached, routed bool) bool {
	if !r.Via.IsValid() {
		return routed
	}
	return inSubnets(a.n, r.Via)
}

// allocate hands a starting container's endpoint its addresses (the
// asked-for ones or the lowest free), its MAC and its interface names.
func allocate(ctx context.Context, tx *state.Tx, c *state.Container, ep *state.Endpoint, n *state.Network, index int) (*state.Attachment, error) {
	others, err := tx.Endpoints(ctx, "", n.ID)
	if err != nil {
		return nil, err
	}
	used := ipam.Set{}
	for _, o := range others {
		if o.Attached != nil && o.ContainerID != c.ID {
			for _, p := range o.Attached.Addrs {
				used[p.Addr()] = struct{}{}
			}
		}
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	a := &state.Attachment{EndpointID: id, IfName: "eth" + strconv.Itoa(index), HostIf: link.HostIfName(c.ID, n.ID)}
	for _, s := range n.Subnets {
		pool, err := poolOf(s)
		if err != nil {
			return nil, err
		}
		want := ep.IPv4
		if s.Subnet.Addr().Is6() {
			want = ep.IPv6
		}
		addr, err := pool.Allocate(used, want)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		a.Addrs = append(a.Addrs, netip.PrefixFrom(addr, s.Subnet.Bits()))
		if !n.Internal && addr.Is4() {
			a.Gateway4 = s.Gateway
		} else if !n.Internal {
			a.Gateway6 = s.Gateway
		}
	}
	a.MAC = ep.MAC
	if a.MAC == "" {
		mac, err := ipam.MACFor(a.Addr(4).Addr())
		if err != nil {
			return nil, err
		}
		a.MAC = mac.String()
	}
	return a, nil
}

// teardownNetwork undoes setupNetwork once the container's processes are
// gone: namespace (and with it the veths), addresses and ports released,
// and the host firewall and resolver records updated. It is idempotent,
// and quick when there is nothing to undo.
func (e *Engine) teardownNetwork(ctx context.Context, id string) error {
	fp, err := e.dropNetNS(ctx, id)
	if err != nil || fp.empty() {
		return err
	}
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	err = db.Tx(ctx, func(tx *state.Tx) error {
		for _, ep := range fp.live {
			ep.Attached = nil
			if err := tx.PutEndpoint(ctx, ep); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return err
			}
		}
		return tx.SetPorts(ctx, id, nil)
	})
	if err != nil {
		return err
	}
	return e.publishHostState(ctx, fp.ports > 0, fp.records, false)
}

// netFootprint is what a container's network holds in the store: its
// attached endpoints and ports, and whether it is on a user-defined
// network (so the resolver's records name it).
type netFootprint struct {
	live    []*state.Endpoint
	ports   int
	records bool
}

func (f netFootprint) empty() bool { return len(f.live) == 0 && f.ports == 0 }

// dropNetNS removes a stopped container's network namespace and reports
// what its network holds in the store, which it leaves as it is. The
// veths are not deleted one by one: deleting a link waits for the
// kernel's RCU grace periods (15-20 ms each here). With the bind mount
// gone and the container's processes ended, the namespace dies and the
// kernel deletes its veths, host ends included, in the background;
// ReconcileNetworks deletes any that something kept alive.
func (e *Engine) dropNetNS(ctx context.Context, id string) (netFootprint, error) {
	var fp netFootprint
	db, err := e.db(ctx)
	if err != nil {
		return fp, err
	}
	eps, err := db.Endpoints(ctx, id, "")
	if err != nil {
		return fp, err
	}
	ports, err := db.Ports(ctx, id)
	if err != nil {
		return fp, err
	}
	fp.ports = len(ports)
	for _, ep := range eps {
		if ep.Attached == nil {
			continue
		}
		fp.live = append(fp.live, ep)
		n, err := db.Network(ctx, ep.NetworkID)
		fp.records = fp.records || err != nil || n.Name != defaultNetwork
	}
	return fp, netns.Remove(e.netnsPath(id))
}

// joinNetNS is the namespace of the container a --network container:<id>
// names, which must be running; the joining container shares its
// /etc/hosts and resolv.conf as well.
func (e *Engine) joinNetNS(ctx context.Context, c *state.Container) (string, error) {
	target, err := e.Container(ctx, c.HostConfig.NetworkMode.ConnectedContainer())
	if err != nil {
		return "", err
	}
	if target.ID == c.ID {
		return "", errdefs.Invalid("cannot join own network namespace")
	}
	if target.State.Status != StatusRunning || target.State.Pid <= 0 {
		return "", errdefs.Precondition("cannot join network namespace of container %s: it is not running", target.Name)
	}
	for _, f := range []string{hostsFile, resolvFile} {
		data, err := os.ReadFile(e.containerPath(target.ID, f))
		if err != nil {
			return "", fmt.Errorf("read %s of container %s: %w", f, target.Name, err)
		}
		if err := os.WriteFile(e.containerPath(c.ID, f), data, 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", f, err)
		}
	}
	return "/proc/" + strconv.Itoa(target.State.Pid) + "/ns/net", nil
}

// applyContainerFirewall writes the container's own rules inside its
// namespace, when it has any.
func (e *Engine) applyContainerFirewall(ctx context.Context, c *state.Container, path string) error {
	rules, policy, err := containerRules(c.Net)
	if err != nil || (len(rules) == 0 && policy == (firewall.Policy{})) {
		return err
	}
	return firewall.ApplyContainer(ctx, path, rules, policy)
}

// containerRules parses the rules and policy stored in their flag syntax.
func containerRules(nc state.NetConfig) ([]firewall.Rule, firewall.Policy, error) {
	var rules []firewall.Rule
	for _, s := range nc.Firewall {
		r, err := firewall.ParseRule(s)
		if err != nil {
			return nil, firewall.Policy{}, errdefs.Invalid("--firewall %q: %v", s, err)
		}
		rules = append(rules, r)
	}
	var policy firewall.Policy
	if nc.FirewallDefault != "" {
		var err error
		if policy, err = firewall.ParseDefaults(nc.FirewallDefault); err != nil {
			return nil, firewall.Policy{}, errdefs.Invalid("--firewall-default %q: %v", nc.FirewallDefault, err)
		}
	}
	return rules, policy, nil
}

// checkNetConfig checks berth's own network settings at create.
func checkNetConfig(hc *container.HostConfig, nc state.NetConfig) error {
	if len(nc.Firewall) == 0 && nc.FirewallDefault == "" && len(nc.Routes) == 0 {
		return nil
	}
	if !ownNetNS(hc) || hc.NetworkMode.IsNone() {
		return errdefs.Invalid("conflicting options: --firewall, --firewall-default and --route need a bridge network, not --network %s", hc.NetworkMode)
	}
	if _, _, err := containerRules(nc); err != nil {
		return err
	}
	for _, r := range nc.Routes {
		if _, err := link.ParseRoute(r); err != nil {
			return err
		}
	}
	return nil
}

// writeNetFiles writes /etc/hosts and /etc/resolv.conf of a starting
// container now that its addresses are known: its own name on its
// address, host-gateway resolved, and on a user-defined network the
// embedded resolver as the nameserver.
func (e *Engine) writeNetFiles(ctx context.Context, c *state.Container, att []attached) error {
	var own []netip.Addr
	var resolver netip.Addr
	for _, a := range att {
		if p := a.ep.Attached.Addr(4); p.IsValid() && len(own) == 0 {
			own = append(own, p.Addr())
		}
		if a.n.Name != defaultNetwork && !resolver.IsValid() {
			resolver = a.n.Subnets[0].Gateway
		}
	}
	extra, err := e.resolveHostGateway(ctx, c.HostConfig.ExtraHosts, att)
	if err != nil {
		return err
	}
	hosts := specgen.HostsWithAddrs(c.Config.Hostname, own, extra)
	if err := os.WriteFile(e.containerPath(c.ID, hostsFile), hosts, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", hostsFile, err)
	}
	if !resolver.IsValid() {
		return nil // resolv.conf as create wrote it
	}
	rc, err := e.embeddedResolvConf(c, resolver)
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.containerPath(c.ID, resolvFile), rc, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", resolvFile, err)
	}
	return nil
}

// resolveHostGateway replaces host-gateway in --add-host entries with the
// host's address on the container's first network, or on the default
// bridge when the container has none.
func (e *Engine) resolveHostGateway(ctx context.Context, extra []string, att []attached) ([]string, error) {
	out := slices.Clone(extra)
	for i, h := range out {
		name, v, ok := strings.Cut(h, "=")
		if !ok {
			name, v, ok = strings.Cut(h, ":")
		}
		if !ok || v != "host-gateway" {
			continue
		}
		var gw netip.Addr
		if len(att) > 0 {
			gw = att[0].n.Subnets[0].Gateway
		} else {
			n, err := e.defaultNetwork(ctx)
			if err != nil {
				return nil, err
			}
			gw = n.Subnets[0].Gateway
		}
		out[i] = name + ":" + gw.String()
	}
	return out, nil
}
