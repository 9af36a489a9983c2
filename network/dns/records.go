package dns

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-containers/berth/internal/errdefs"
)

// shortIDLen is how many leading characters of a container ID resolve, as
// in Docker.
const shortIDLen = 12

// Records is a compiled, immutable view of a Config indexed for answering:
// one lookup table per network, keyed by the network's gateway addresses.
type Records struct {
	upstreams []netip.AddrPort
	networks  map[netip.Addr]*networkRecords
	gateways  []netip.Addr
	// peers maps a container's address on one network to its container's
	// other networks: a container on several networks resolves the names
	// of all of them, whichever gateway it asks, as with Docker.
	peers map[netip.Addr][]*networkRecords
}

// networkRecords holds the names of one network.
type networkRecords struct {
	names     map[string]*addrSet // lower-case name -> addresses
	ptr       map[netip.Addr]string
	clientUps map[netip.Addr][]netip.AddrPort
	subnets   []netip.Prefix
	gateways  []netip.Addr
}

// addrSet keeps the addresses of a name split by family, so A and AAAA
// answers need no filtering per query.
type addrSet struct {
	v4, v6 []netip.Addr
}

func (s *addrSet) add(a netip.Addr) {
	list := &s.v6
	if a.Is4() {
		list = &s.v4
	}
	if !slices.Contains(*list, a) {
		*list = append(*list, a)
	}
}

// Compile checks cfg and builds the lookup tables. Names are matched
// case-insensitively; an IPv4-mapped IPv6 address counts as IPv4.
func Compile(cfg *Config) (*Records, error) {
	r := &Records{networks: map[netip.Addr]*networkRecords{}, peers: map[netip.Addr][]*networkRecords{}}
	var err error
	if r.upstreams, err = parseUpstreams(cfg.Upstreams); err != nil {
		return nil, err
	}
	byID := map[string][]*networkRecords{}
	for i := range cfg.Networks {
		n, err := compileNetwork(&cfg.Networks[i])
		if err != nil {
			return nil, err
		}
		for _, ep := range cfg.Networks[i].Endpoints {
			if ep.ID != "" {
				byID[ep.ID] = append(byID[ep.ID], n)
			}
		}
		for _, gw := range n.gateways {
			if _, dup := r.networks[gw]; dup {
				return nil, errdefs.Invalid("dns records: gateway %s is listed twice", gw)
			}
			r.networks[gw] = n
			r.gateways = append(r.gateways, gw)
		}
	}
	slices.SortFunc(r.gateways, netip.Addr.Compare)
	for _, nw := range cfg.Networks {
		for _, ep := range nw.Endpoints {
			if len(byID[ep.ID]) < 2 {
				continue
			}
			for _, a := range ep.Addresses {
				r.peers[a.Unmap()] = byID[ep.ID]
			}
		}
	}
	return r, nil
}

func compileNetwork(nw *Network) (*networkRecords, error) {
	n := &networkRecords{
		names:     map[string]*addrSet{},
		ptr:       map[netip.Addr]string{},
		clientUps: map[netip.Addr][]netip.AddrPort{},
		subnets:   nw.Subnets,
	}
	for _, gw := range nw.Gateways {
		if !gw.IsValid() {
			return nil, errdefs.Invalid("dns records: network %q has an invalid gateway", nw.Name)
		}
		n.gateways = append(n.gateways, gw.Unmap())
	}
	for i := range nw.Endpoints {
		ep := &nw.Endpoints[i]
		if err := n.addEndpoint(ep, nw.Name); err != nil {
			return nil, errdefs.Invalid("dns records: network %q: %w", nw.Name, err)
		}
	}
	return n, nil
}

// addEndpoint registers the endpoint's names, each also qualified with the
// network's name ("web" and "web.app"), as Docker resolves both.
func (n *networkRecords) addEndpoint(ep *Endpoint, network string) error {
	if ep.Name == "" {
		return errdefs.Invalid("endpoint without a name")
	}
	ups, err := parseUpstreams(ep.Upstreams)
	if err != nil {
		return err
	}
	names := append([]string{ep.Name}, ep.Aliases...)
	if len(ep.ID) >= shortIDLen {
		names = append(names, ep.ID[:shortIDLen])
	}
	ptr := canonical(ep.Name) + "."
	if network != "" {
		qualified := make([]string, 0, len(names))
		for _, name := range names {
			qualified = append(qualified, name+"."+network)
		}
		names = append(names, qualified...)
		ptr = canonical(ep.Name+"."+network) + "."
	}
	for _, a := range ep.Addresses {
		if !a.IsValid() {
			return errdefs.Invalid("endpoint %q has an invalid address", ep.Name)
		}
		a = a.Unmap()
		for _, name := range names {
			n.set(name).add(a)
		}
		// The first endpoint holding an address names it in PTR answers.
		if _, ok := n.ptr[a]; !ok {
			n.ptr[a] = ptr
		}
		if len(ups) > 0 {
			n.clientUps[a] = ups
		}
	}
	if len(ep.Addresses) == 0 {
		// A name with no address still exists: it answers NODATA rather
		// than being forwarded upstream.
		for _, name := range names {
			n.set(name)
		}
	}
	return nil
}

func (n *networkRecords) set(name string) *addrSet {
	key := canonical(name)
	s := n.names[key]
	if s == nil {
		s = &addrSet{}
		n.names[key] = s
	}
	return s
}

// canonical is the form names are compared in: lower case, no trailing dot.
func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// Gateways returns the addresses the resolver must listen on, sorted.
func (r *Records) Gateways() []netip.Addr {
	return slices.Clone(r.gateways)
}

// Lookup returns the addresses name has on the network whose gateway is
// gateway (IPv4 first), and whether the name exists there at all.
func (r *Records) Lookup(gateway netip.Addr, name string) ([]netip.Addr, bool) {
	s, ok := r.lookup(gateway, name)
	if !ok {
		return nil, false
	}
	return append(slices.Clone(s.v4), s.v6...), true
}

func (r *Records) lookup(gateway netip.Addr, name string) (*addrSet, bool) {
	n := r.networks[gateway]
	if n == nil {
		return nil, false
	}
	s, ok := n.names[canonical(name)]
	return s, ok
}

// LookupFrom is Lookup for a query from client: a name the network of
// gateway lacks is looked up on the client container's other networks.
func (r *Records) LookupFrom(gateway, client netip.Addr, name string) ([]netip.Addr, bool) {
	s, ok := r.lookupFrom(gateway, client, name)
	if !ok {
		return nil, false
	}
	return append(slices.Clone(s.v4), s.v6...), true
}

func (r *Records) lookupFrom(gateway, client netip.Addr, name string) (*addrSet, bool) {
	if s, ok := r.lookup(gateway, name); ok || r.networks[gateway] == nil {
		return s, ok
	}
	key := canonical(name)
	for _, n := range r.peers[client.Unmap()] {
		if s, ok := n.names[key]; ok {
			return s, true
		}
	}
	return nil, false
}

// Reverse returns the fully qualified name of the container holding addr
// on the network whose gateway is gateway.
func (r *Records) Reverse(gateway, addr netip.Addr) (string, bool) {
	n := r.networks[gateway]
	if n == nil {
		return "", false
	}
	name, ok := n.ptr[addr.Unmap()]
	return name, ok
}

// Upstreams returns the resolvers a query from client arriving on gateway
// is forwarded to: the container's own (--dns) when it has some, the
// host's otherwise.
func (r *Records) Upstreams(gateway, client netip.Addr) []netip.AddrPort {
	if n := r.networks[gateway]; n != nil {
		if ups, ok := n.clientUps[client.Unmap()]; ok {
			return ups
		}
	}
	return r.upstreams
}

// Allowed reports whether client may query the listener on gateway: any
// client when the network lists no subnets, else clients inside them and
// the host itself through the network's gateways.
func (r *Records) Allowed(gateway, client netip.Addr) bool {
	n := r.networks[gateway]
	if n == nil {
		return false
	}
	if len(n.subnets) == 0 {
		return true
	}
	client = client.Unmap()
	for _, p := range n.subnets {
		if p.Contains(client) {
			return true
		}
	}
	return slices.Contains(n.gateways, client)
}

func parseUpstreams(list []string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range list {
		ap, err := parseUpstream(s)
		if err != nil {
			return nil, err
		}
		out = append(out, ap)
	}
	return out, nil
}

// parseUpstream accepts "ip", "ip:port" and "[ip6]:port"; the port
// defaults to 53.
func parseUpstream(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 53), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, errdefs.Invalid("dns records: bad upstream %q", s)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, errdefs.Invalid("dns records: bad upstream %q", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, errdefs.Invalid("dns records: bad upstream port in %q", s)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}
