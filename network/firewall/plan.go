package firewall

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-containers/berth/internal/errdefs"
)

// State is the whole desired host firewall: every berth network and every
// published port.
type State struct {
	Networks []Network
	Ports    []Port
}

// Network is a berth bridge network.
type Network struct {
	Name string
	// Bridge is the name of the network's Linux bridge.
	Bridge string
	// Subnets are the network's IPv4 and/or IPv6 prefixes.
	Subnets []netip.Prefix
	// Internal networks get no outbound NAT, and no traffic leaves or
	// enters their bridge.
	Internal bool
}

// Port is one published port.
type Port struct {
	// Proto is "tcp" or "udp".
	Proto string
	// HostIP limits the port to one host address; the zero Addr, 0.0.0.0
	// and :: mean every address of the container address's family.
	HostIP   netip.Addr
	HostPort uint16
	// ContainerIP and ContainerPort are where packets are sent.
	ContainerIP   netip.Addr
	ContainerPort uint16
	// Bridge is the bridge the container sits on. When empty it is the
	// bridge of the network whose subnet holds ContainerIP.
	Bridge string
}

// Chain names in table inet berth on the host.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPorts       = "ports"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
	setBridges       = "bridges"
)

var loopback4 = netip.MustParsePrefix("127.0.0.0/8")

// Plan computes the host ruleset for a desired state. It is pure: it only
// validates and builds data. An empty State gives an empty Ruleset.
func Plan(s State) (*Ruleset, error) {
	nets, err := normalizeNetworks(s.Networks)
	if err != nil {
		return nil, err
	}
	ports, err := normalizePorts(s.Ports, nets)
	if err != nil {
		return nil, err
	}
	rs := &Ruleset{}
	if len(nets) == 0 && len(ports) == 0 {
		return rs, nil
	}
	bridges := bridgeOrder(nets, ports)
	portBridges := map[string]bool{}
	v4PortBridges := map[string]bool{}
	hasV6Port := false
	for _, p := range ports {
		portBridges[p.Bridge] = true
		if p.ContainerIP.Is4() {
			v4PortBridges[p.Bridge] = true
		} else {
			hasV6Port = true
		}
	}

	if len(ports) > 0 {
		rs.Chains = append(rs.Chains,
			Chain{Name: chainPrerouting, Type: TypeNAT, Hook: HookPrerouting, Priority: PriorityDstNAT,
				Rules: []ChainRule{{FibDaddrLocal: true, Verdict: Verdict{Kind: Jump, Chain: chainPorts}}}},
			outputChain(hasV6Port),
			Chain{Name: chainPorts, Rules: portRules(ports)},
		)
	}
	if post := postroutingRules(nets, ports, v4PortBridges, portBridges); len(post) > 0 {
		rs.Chains = append(rs.Chains, Chain{Name: chainPostrouting, Type: TypeNAT, Hook: HookPostrouting,
			Priority: PrioritySrcNAT, Rules: post})
	}
	if fwd := forwardRules(nets, bridges, len(ports) > 0); len(fwd) > 0 {
		rs.Chains = append(rs.Chains, Chain{Name: chainForward, Type: TypeFilter, Hook: HookForward,
			Priority: PriorityFilter, Rules: fwd})
	}
	if len(bridges) > 1 {
		rs.Sets = []Set{{Name: setBridges, Elements: bridges}}
	}
	// What leaves a bridge, and replies coming back to it, pass a FORWARD
	// chain that drops; new connections into a bridge from elsewhere (a
	// published port reached from another machine) stay under the host's
	// own rules there: published ports obey the host's firewall.
	for _, br := range bridges {
		rs.ForwardAccept = append(rs.ForwardAccept,
			ChainRule{IIF: br, Verdict: Verdict{Kind: Accept}, Comment: Marker},
			ChainRule{OIF: br, CtState: CtEstablished | CtRelated, Verdict: Verdict{Kind: Accept}, Comment: Marker})
	}
	rs.Sysctls = sysctls(nets, bridges, v4PortBridges)
	return rs, nil
}

// outputChain DNATs connections the host makes to its own addresses. [::1]
// is left alone: a packet from ::1 cannot be routed to a bridge.
func outputChain(hasV6Port bool) Chain {
	c := Chain{Name: chainOutput, Type: TypeNAT, Hook: HookOutput, Priority: PriorityDstNAT}
	if hasV6Port {
		c.Rules = append(c.Rules, ChainRule{Daddr: netip.PrefixFrom(netip.IPv6Loopback(), 128), Verdict: Verdict{Kind: Return}})
	}
	c.Rules = append(c.Rules, ChainRule{FibDaddrLocal: true, Verdict: Verdict{Kind: Jump, Chain: chainPorts}})
	return c
}

func portRules(ports []Port) []ChainRule {
	rules := make([]ChainRule, 0, len(ports))
	for _, p := range ports {
		r := ChainRule{
			L4Proto:    protoNumber(p.Proto),
			DPortFirst: p.HostPort,
			Verdict:    Verdict{Kind: DNAT, To: netip.AddrPortFrom(p.ContainerIP, p.ContainerPort)},
		}
		if p.HostIP.IsValid() {
			r.Daddr = netip.PrefixFrom(p.HostIP, p.HostIP.BitLen())
		} else {
			r.Family = familyOf(p.ContainerIP)
		}
		rules = append(rules, r)
	}
	return rules
}

func postroutingRules(nets []Network, ports []Port, v4PortBridges, portBridges map[string]bool) []ChainRule {
	var rules []ChainRule
	// Connections from the host's 127.0.0.1 DNATed to a container must
	// leave with a source the container can answer.
	for _, br := range slices.Sorted(maps.Keys(v4PortBridges)) {
		rules = append(rules, ChainRule{OIF: br, Saddr: loopback4, Verdict: Verdict{Kind: Masquerade}})
	}
	// Hairpin: a container reaching a published port of a neighbour on its
	// own bridge; without masquerade the neighbour would answer directly
	// and the client would drop a reply from an unexpected address.
	for _, n := range nets {
		if !portBridges[n.Bridge] {
			continue
		}
		for _, sn := range n.Subnets {
			rules = append(rules, ChainRule{OIF: n.Bridge, Saddr: sn, CtDNAT: true, Verdict: Verdict{Kind: Masquerade}})
		}
	}
	for _, n := range nets {
		if n.Internal {
			continue
		}
		for _, sn := range n.Subnets {
			rules = append(rules, ChainRule{NotOIF: n.Bridge, Saddr: sn, Verdict: Verdict{Kind: Masquerade}})
		}
	}
	return rules
}

func forwardRules(nets []Network, bridges []string, hasPorts bool) []ChainRule {
	var rules []ChainRule
	for _, n := range nets {
		if n.Internal {
			rules = append(rules,
				ChainRule{IIF: n.Bridge, NotOIF: n.Bridge, Verdict: Verdict{Kind: Drop}},
				ChainRule{OIF: n.Bridge, NotIIF: n.Bridge, Verdict: Verdict{Kind: Drop}})
		}
	}
	// A published port is public: it may be reached from other networks.
	if hasPorts {
		rules = append(rules, ChainRule{CtDNAT: true, Verdict: Verdict{Kind: Accept}})
	}
	if len(bridges) > 1 {
		for _, br := range bridges {
			rules = append(rules, ChainRule{IIF: br, NotOIF: br, OIFSet: setBridges, Verdict: Verdict{Kind: Drop}})
		}
	}
	return rules
}

func sysctls(nets []Network, bridges []string, v4PortBridges map[string]bool) []Sysctl {
	var v4, v6 bool
	for _, n := range nets {
		if n.Internal {
			continue
		}
		for _, sn := range n.Subnets {
			if sn.Addr().Is4() {
				v4 = true
			} else {
				v6 = true
			}
		}
	}
	var out []Sysctl
	if v4 {
		out = append(out, Sysctl{Path: "net/ipv4/ip_forward", Value: "1"})
	}
	if v6 {
		out = append(out, Sysctl{Path: "net/ipv6/conf/all/forwarding", Value: "1"})
	}
	for _, br := range bridges {
		if v4PortBridges[br] {
			out = append(out, Sysctl{Path: "net/ipv4/conf/" + br + "/route_localnet", Value: "1"})
		}
	}
	return out
}

// normalizeNetworks validates networks and masks their subnets.
func normalizeNetworks(in []Network) ([]Network, error) {
	out := make([]Network, 0, len(in))
	seen := map[string]bool{}
	for _, n := range in {
		if err := validIfname(n.Bridge); err != nil {
			return nil, errdefs.Invalid("network %q: bridge: %v", n.Name, err)
		}
		if seen[n.Bridge] {
			return nil, errdefs.Invalid("network %q: bridge %q is used by another network", n.Name, n.Bridge)
		}
		seen[n.Bridge] = true
		subnets := make([]netip.Prefix, 0, len(n.Subnets))
		for _, sn := range n.Subnets {
			if !sn.IsValid() {
				return nil, errdefs.Invalid("network %q: invalid subnet", n.Name)
			}
			subnets = append(subnets, sn.Masked())
		}
		n.Subnets = subnets
		out = append(out, n)
	}
	return out, nil
}

// normalizePorts validates ports, fills in their bridges and folds the
// "any address" spellings into the zero Addr.
func normalizePorts(in []Port, nets []Network) ([]Port, error) {
	out := make([]Port, 0, len(in))
	for _, p := range in {
		name := fmt.Sprintf("port %s/%d", p.Proto, p.HostPort)
		if protoNumber(p.Proto) == 0 {
			return nil, errdefs.Invalid("%s: proto %q: want tcp or udp", name, p.Proto)
		}
		if p.HostPort == 0 || p.ContainerPort == 0 {
			return nil, errdefs.Invalid("%s: host and container ports must not be 0", name)
		}
		if !p.ContainerIP.IsValid() || p.ContainerIP.IsUnspecified() {
			return nil, errdefs.Invalid("%s: container address missing", name)
		}
		p.ContainerIP = p.ContainerIP.Unmap()
		if p.HostIP.IsValid() {
			p.HostIP = p.HostIP.Unmap()
			if p.HostIP.IsUnspecified() {
				if p.HostIP.Is4() != p.ContainerIP.Is4() {
					return nil, errdefs.Invalid("%s: host address %s and container address %s are of different IP versions", name, p.HostIP, p.ContainerIP)
				}
				p.HostIP = netip.Addr{}
			} else if p.HostIP.Is4() != p.ContainerIP.Is4() {
				return nil, errdefs.Invalid("%s: host address %s and container address %s are of different IP versions", name, p.HostIP, p.ContainerIP)
			} else if p.HostIP == netip.IPv6Loopback() {
				return nil, errdefs.Invalid("%s: cannot publish on ::1 (IPv6 has no route_localnet); use 127.0.0.1 or a host address", name)
			}
		}
		if p.Bridge == "" {
			p.Bridge = bridgeFor(p.ContainerIP, nets)
			if p.Bridge == "" {
				return nil, errdefs.Invalid("%s: no network holds container address %s and no bridge is given", name, p.ContainerIP)
			}
		} else if err := validIfname(p.Bridge); err != nil {
			return nil, errdefs.Invalid("%s: bridge: %v", name, err)
		}
		for _, q := range out {
			if q.Proto == p.Proto && q.HostPort == p.HostPort && q.ContainerIP.Is4() == p.ContainerIP.Is4() &&
				(!q.HostIP.IsValid() || !p.HostIP.IsValid() || q.HostIP == p.HostIP) {
				return nil, errdefs.Invalid("%s: published twice (host addresses %s and %s overlap)", name, anyAddr(q.HostIP), anyAddr(p.HostIP))
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func anyAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "*"
	}
	return a.String()
}

func bridgeFor(ip netip.Addr, nets []Network) string {
	for _, n := range nets {
		for _, sn := range n.Subnets {
			if sn.Contains(ip) {
				return n.Bridge
			}
		}
	}
	return ""
}

// bridgeOrder lists the bridges of networks, then those only ports name.
func bridgeOrder(nets []Network, ports []Port) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range nets {
		seen[n.Bridge] = true
		out = append(out, n.Bridge)
	}
	for _, p := range ports {
		if !seen[p.Bridge] {
			seen[p.Bridge] = true
			out = append(out, p.Bridge)
		}
	}
	return out
}

func protoNumber(p string) uint8 {
	switch p {
	case "tcp":
		return ProtoTCP
	case "udp":
		return ProtoUDP
	}
	return 0
}

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// validIfname checks a Linux interface name, and excludes quotes and
// backslashes so names print safely in nft syntax.
func validIfname(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty interface name")
	case len(name) > 15:
		return fmt.Errorf("interface name %q longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("invalid interface name %q", name)
	case strings.ContainsAny(name, "/: \t\n\"\\"):
		return fmt.Errorf("interface name %q contains a forbidden character", name)
	}
	return nil
}
