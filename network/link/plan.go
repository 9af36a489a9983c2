// Package link sets up the Linux links of bridge networks: the bridge
// itself, and for every endpoint a veth pair with one end in the
// container's network namespace (addressed, routed) and the other on the
// bridge. Everything goes through netlink sockets and /proc/sys writes in
// process; nothing is executed.
//
// "The host" below is the network namespace of the calling thread: the
// engine calls these functions from the host's namespace, tests call them
// inside a namespace they made (netns.Do). Container namespaces are
// reached through netlink sockets opened inside them, not by moving the
// calling thread.
//
// Each function computes what to do first (plan.go: pure, unit tested)
// and then performs it (apply.go).
package link

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Bridge is the desired state of a network's Linux bridge.
type Bridge struct {
	// Name is the bridge's interface name.
	Name string
	// Addrs are the gateway addresses with their subnets' prefix lengths
	// (172.18.0.1/16, fd00:1::1/64).
	Addrs []netip.Prefix
	// MTU is the bridge's MTU; 0 leaves the kernel's default.
	MTU int
}

// Route is an extra route inside a container.
type Route struct {
	// Dst is the destination prefix.
	Dst netip.Prefix
	// Via is the next hop; zero makes the route on-link (through the
	// endpoint's interface without a gateway).
	Via netip.Addr
}

// Endpoint is the desired state of one container's attachment to one
// bridge network.
type Endpoint struct {
	// NetNS is the path of the container's network namespace file.
	NetNS string
	// Bridge is the name of the network's bridge.
	Bridge string
	// IfName is the interface's name inside the container: "eth0", then
	// "eth1" for a second network.
	IfName string
	// HostIf is the host end's name; see HostIfName.
	HostIf string
	// Addrs are the container's addresses with their subnets' prefix
	// lengths.
	Addrs []netip.Prefix
	// Gateway4 and Gateway6 are the default routes' next hops; zero means
	// no default route of that family (as for Docker's --internal
	// networks).
	Gateway4, Gateway6 netip.Addr
	// MAC is the container interface's address; nil lets the kernel pick.
	MAC net.HardwareAddr
	// MTU of both ends; 0 takes the bridge's.
	MTU int
	// Routes are extra routes the user asked for.
	Routes []Route
	// Hairpin lets traffic the host end receives go back out of it, so a
	// container reaches itself through a published port.
	Hairpin bool
}

// HostIfPrefix starts the name of every host-side veth HostIfName makes,
// so leftovers can be found (HostVeths, BridgeVeths).
const HostIfPrefix = "bv"

// HostIfName derives the host-side veth name of a container's endpoint on
// a network: HostIfPrefix and 12 hex digits of a hash of both IDs, 14
// bytes in all (interface names hold at most 15).
func HostIfName(containerID, networkID string) string {
	sum := sha256.Sum256([]byte(containerID + "\x00" + networkID))
	return HostIfPrefix + hex.EncodeToString(sum[:6])
}

// checkIfName applies the kernel's rules for interface names
// (dev_valid_name) so a bad name fails with a clear message before any
// link is made.
func checkIfName(what, name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("%s: missing interface name", what)
	case len(name) > unix.IFNAMSIZ-1:
		return errdefs.Invalid("%s: interface name %q is longer than %d bytes", what, name, unix.IFNAMSIZ-1)
	case name == "." || name == "..":
		return errdefs.Invalid("%s: invalid interface name %q", what, name)
	case strings.ContainsAny(name, "/: \t\n\r\x00"):
		return errdefs.Invalid("%s: interface name %q has a '/', ':' or white space", what, name)
	}
	return nil
}

func (b Bridge) validate() error {
	if err := checkIfName("bridge", b.Name); err != nil {
		return err
	}
	for _, a := range b.Addrs {
		if !a.IsValid() {
			return errdefs.Invalid("bridge %s: invalid address", b.Name)
		}
	}
	if b.MTU < 0 {
		return errdefs.Invalid("bridge %s: invalid MTU %d", b.Name, b.MTU)
	}
	return nil
}

func (e Endpoint) validate() error {
	if e.NetNS == "" {
		return errdefs.Invalid("endpoint: missing network namespace path")
	}
	if err := checkIfName("bridge", e.Bridge); err != nil {
		return err
	}
	if err := checkIfName("container interface", e.IfName); err != nil {
		return err
	}
	if err := checkIfName("host interface", e.HostIf); err != nil {
		return err
	}
	var has4, has6 bool
	for _, a := range e.Addrs {
		if !a.IsValid() {
			return errdefs.Invalid("endpoint %s: invalid address", e.HostIf)
		}
		has4 = has4 || a.Addr().Is4()
		has6 = has6 || !a.Addr().Is4()
	}
	if e.Gateway4.IsValid() && (!e.Gateway4.Is4() || !has4) {
		return errdefs.Invalid("endpoint %s: IPv4 gateway %s without an IPv4 address", e.HostIf, e.Gateway4)
	}
	if e.Gateway6.IsValid() && (e.Gateway6.Is4() || !has6) {
		return errdefs.Invalid("endpoint %s: IPv6 gateway %s without an IPv6 address", e.HostIf, e.Gateway6)
	}
	if e.MAC != nil && (len(e.MAC) != 6 || e.MAC[0]&1 != 0) {
		return errdefs.Invalid("endpoint %s: MAC address %s is not a 48-bit unicast address", e.HostIf, e.MAC)
	}
	if e.MTU < 0 {
		return errdefs.Invalid("endpoint %s: invalid MTU %d", e.HostIf, e.MTU)
	}
	for _, r := range e.Routes {
		if !r.Dst.IsValid() {
			return errdefs.Invalid("endpoint %s: route without a destination", e.HostIf)
		}
		if r.Via.IsValid() && r.Via.Is4() != r.Dst.Addr().Is4() {
			return errdefs.Invalid("endpoint %s: route to %s via %s mixes address families", e.HostIf, r.Dst, r.Via)
		}
	}
	return nil
}

// routes returns the routes to add inside the container, in order: the
// default routes, then the extra ones.
func (e Endpoint) routes() []Route {
	var rs []Route
	if e.Gateway4.IsValid() {
		rs = append(rs, Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: e.Gateway4})
	}
	if e.Gateway6.IsValid() {
		rs = append(rs, Route{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Via: e.Gateway6})
	}
	for _, r := range e.Routes {
		rs = append(rs, Route{Dst: r.Dst.Masked(), Via: r.Via})
	}
	return rs
}

// missingAddrs returns the addresses of want that have does not hold
// (same address and prefix length), in want's order.
func missingAddrs(have, want []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// addrFlags are the flags an address is added with: IPv6 ones skip
// duplicate address detection, which would leave them unusable
// ("tentative") for a second or so after a container starts; IPAM already
// guarantees they are unique.
func addrFlags(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return unix.IFA_F_NODAD
}

func hostPrefix(p netip.Prefix) bool {
	return p.IsValid() && p.Bits() > 0
}

func stepErr(step string, err error) error {
	return fmt.Errorf("%s: %w", step, err)
}
