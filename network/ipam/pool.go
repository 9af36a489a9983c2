// Package ipam hands out addresses and subnets for bridge networks the way
// Docker's default IPAM does: a pool per subnet, an optional ip-range that
// addresses come from, a gateway, the lowest free address first, and new
// subnets taken from Docker's default address pools. It keeps no state of
// its own: callers say which addresses and subnets are in use, so the
// engine's store stays the only record.
package ipam

import (
	"fmt"
	"net/netip"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Pool is the address plan of one subnet of a network.
type Pool struct {
	// Subnet is the network's prefix, host bits clear.
	Subnet netip.Prefix
	// Range is the prefix addresses are handed out from (Docker's
	// --ip-range); it equals Subnet when none was given.
	Range netip.Prefix
	// Gateway is the bridge's address inside Subnet.
	Gateway netip.Addr
}

// ParsePool parses a subnet, an optional ip-range ("" for none) and an
// optional gateway ("" for the default) as Docker's `network create
// --subnet/--ip-range/--gateway` flags, and checks them with NewPool.
func ParsePool(subnet, ipRange, gateway string) (Pool, error) {
	sn, err := netip.ParsePrefix(subnet)
	if err != nil {
		return Pool{}, errdefs.Invalid("invalid subnet %q: not in CIDR notation", subnet)
	}
	var rg netip.Prefix
	if ipRange != "" {
		if rg, err = netip.ParsePrefix(ipRange); err != nil {
			return Pool{}, errdefs.Invalid("invalid ip-range %q: not in CIDR notation", ipRange)
		}
	}
	var gw netip.Addr
	if gateway != "" {
		if gw, err = netip.ParseAddr(gateway); err != nil {
			return Pool{}, errdefs.Invalid("invalid gateway %q: not an IP address", gateway)
		}
	}
	return NewPool(sn, rg, gw)
}

// NewPool checks a subnet, an optional ip-range (zero for none) and an
// optional gateway (zero for the default) and returns their pool.
//
// As Docker (since 25.0) it rejects a subnet or ip-range with host bits set
// ("10.1.2.3/16") rather than masking it, naming the prefix meant. The
// default gateway is, as with Docker, the first address that could be
// handed out: the subnet's first usable address, or the ip-range's when one
// is given. The pool must hold the gateway and at least one more address.
func NewPool(subnet, ipRange netip.Prefix, gateway netip.Addr) (Pool, error) {
	if !subnet.IsValid() {
		return Pool{}, errdefs.Invalid("invalid subnet: missing")
	}
	if subnet.Addr().Is4In6() {
		return Pool{}, errdefs.Invalid("invalid subnet %s: IPv4-mapped IPv6 prefixes are not supported", subnet)
	}
	if subnet != subnet.Masked() {
		return Pool{}, errdefs.Invalid("invalid subnet %s: it should be %s", subnet, subnet.Masked())
	}
	p := Pool{Subnet: subnet, Range: subnet}
	if ipRange.IsValid() {
		if err := checkRange(subnet, ipRange); err != nil {
			return Pool{}, err
		}
		p.Range = ipRange
	}
	if gateway.IsValid() {
		if err := p.checkGateway(gateway); err != nil {
			return Pool{}, err
		}
		p.Gateway = gateway
	} else {
		gw, ok := p.firstFree(noneUsed)
		if !ok {
			return Pool{}, errdefs.Invalid("invalid subnet %s: too small to hold a gateway and one address", p.describe())
		}
		p.Gateway = gw
	}
	if _, ok := p.firstFree(noneUsed); !ok {
		return Pool{}, errdefs.Invalid("invalid subnet %s: too small to hold a gateway and one address", p.describe())
	}
	return p, nil
}

func checkRange(subnet, rg netip.Prefix) error {
	if rg.Addr().Is4() != subnet.Addr().Is4() {
		return errdefs.Invalid("invalid ip-range %s: subnet %s is of the other address family", rg, subnet)
	}
	if rg != rg.Masked() {
		return errdefs.Invalid("invalid ip-range %s: it should be %s", rg, rg.Masked())
	}
	if rg.Bits() < subnet.Bits() || !subnet.Contains(rg.Addr()) {
		return errdefs.Invalid("invalid ip-range %s: not inside subnet %s", rg, subnet)
	}
	return nil
}

func (p Pool) checkGateway(gw netip.Addr) error {
	if gw.Is4() != p.Subnet.Addr().Is4() {
		return errdefs.Invalid("invalid gateway %s: subnet %s is of the other address family", gw, p.Subnet)
	}
	if !p.Subnet.Contains(gw) {
		return errdefs.Invalid("invalid gateway %s: not inside subnet %s", gw, p.Subnet)
	}
	if p.reserved(gw) {
		return errdefs.Invalid("invalid gateway %s: it is the %s of subnet %s", gw, p.reservedName(gw), p.Subnet)
	}
	return nil
}

func (p Pool) describe() string {
	if p.Range != p.Subnet {
		return fmt.Sprintf("%s (ip-range %s)", p.Subnet, p.Range)
	}
	return p.Subnet.String()
}

// reserved reports whether a is the subnet's first address (the IPv4
// network address, the IPv6 subnet-router anycast address) or its IPv4
// broadcast address.
func (p Pool) reserved(a netip.Addr) bool {
	first, last, ok := p.reservedAddrs()
	return ok && (a == first || a == last)
}

// reservedAddrs returns the subnet's reserved addresses (last equals first
// for IPv6, which has no broadcast). An IPv4 /31 is a point-to-point link
// (RFC 3021) and a /32 a single host: neither reserves anything.
func (p Pool) reservedAddrs() (first, last netip.Addr, ok bool) {
	if p.Subnet.Addr().Is4() {
		if p.Subnet.Bits() >= 31 {
			return netip.Addr{}, netip.Addr{}, false
		}
		return p.Subnet.Addr(), lastAddr(p.Subnet), true
	}
	return p.Subnet.Addr(), p.Subnet.Addr(), true
}

func (p Pool) reservedName(a netip.Addr) string {
	switch {
	case a != p.Subnet.Addr():
		return "broadcast address"
	case a.Is4():
		return "network address"
	}
	return "subnet-router anycast address"
}

// Used says which addresses are taken. Set and UsedFunc implement it.
type Used interface {
	Has(netip.Addr) bool
}

// Set is a set of addresses in use.
type Set map[netip.Addr]struct{}

// NewSet returns a Set holding addrs.
func NewSet(addrs ...netip.Addr) Set {
	s := make(Set, len(addrs))
	for _, a := range addrs {
		s[a.Unmap()] = struct{}{}
	}
	return s
}

// Has reports whether a is in s.
func (s Set) Has(a netip.Addr) bool { _, ok := s[a]; return ok }

// UsedFunc adapts a function to Used.
type UsedFunc func(netip.Addr) bool

// Has calls f.
func (f UsedFunc) Has(a netip.Addr) bool { return f(a) }

var noneUsed = UsedFunc(func(netip.Addr) bool { return false })

// Allocate returns an address for an endpoint. With want zero it is the
// lowest address of the range that is neither reserved (network,
// broadcast, gateway) nor in used; otherwise it is want (Docker's --ip),
// which must be inside the subnet (not necessarily the ip-range, as with
// Docker) and free. used may be nil.
//
// The search steps over taken addresses one by one, so its cost grows with
// the number of addresses in use, never with the size of the range: a /16
// with a few used is as quick as a /24.
func (p Pool) Allocate(used Used, want netip.Addr) (netip.Addr, error) {
	if used == nil {
		used = noneUsed
	}
	if want.IsValid() {
		return p.allocateWanted(used, want.Unmap())
	}
	a, ok := p.firstFree(used)
	if !ok {
		return netip.Addr{}, errdefs.Precondition("no available addresses in subnet %s: all are in use", p.describe())
	}
	return a, nil
}

func (p Pool) allocateWanted(used Used, want netip.Addr) (netip.Addr, error) {
	if want.Is4() != p.Subnet.Addr().Is4() || !p.Subnet.Contains(want) {
		return netip.Addr{}, errdefs.Invalid("invalid address %s: not inside subnet %s", want, p.Subnet)
	}
	if p.reserved(want) {
		return netip.Addr{}, errdefs.Invalid("invalid address %s: it is the %s of subnet %s", want, p.reservedName(want), p.Subnet)
	}
	if want == p.Gateway {
		return netip.Addr{}, errdefs.AlreadyExists("address %s is already in use: it is the gateway of subnet %s", want, p.Subnet)
	}
	if used.Has(want) {
		return netip.Addr{}, errdefs.AlreadyExists("address %s is already in use on subnet %s", want, p.Subnet)
	}
	return want, nil
}

// firstFree walks the range from its start. Every step past a taken
// address is paid for by an entry of used or by one of at most three
// reserved addresses, which bounds the walk by len(used)+3 when an address
// is free.
func (p Pool) firstFree(used Used) (netip.Addr, bool) {
	first, bcast, hasReserved := p.reservedAddrs()
	last := lastAddr(p.Range)
	for a := p.Range.Addr(); a.IsValid() && a.Compare(last) <= 0; a = a.Next() {
		if (hasReserved && (a == first || a == bcast)) || a == p.Gateway || used.Has(a) {
			continue
		}
		return a, true
	}
	return netip.Addr{}, false
}

// Prefix returns a with the subnet's prefix length: the form an interface
// address takes.
func (p Pool) Prefix(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, p.Subnet.Bits())
}

// GatewayPrefix returns the gateway with the subnet's prefix length: the
// bridge's address.
func (p Pool) GatewayPrefix() netip.Prefix { return p.Prefix(p.Gateway) }
