package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/network/ipam"
	"github.com/berth-containers/berth/network/netns"
)

// hostHandle opens a route netlink socket in the calling thread's network
// namespace. Only the route family: the library's default opens three.
func hostHandle() (*netlink.Handle, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	return h, nil
}

// nsHandle opens the namespace file at path and a route netlink socket
// inside that namespace; the calling thread stays where it is.
func nsHandle(path string) (*netlink.Handle, vnetns.NsHandle, error) {
	ns, err := vnetns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, -1, errdefs.NotFound("network namespace %s does not exist", path)
		}
		return nil, -1, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, -1, fmt.Errorf("open netlink socket in %s: %w", path, err)
	}
	return h, ns, nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func fromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func linkAddrs(h *netlink.Handle, l netlink.Link) ([]netip.Prefix, error) {
	list, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, a := range list {
		if p, ok := fromIPNet(a.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func addAddr(h *netlink.Handle, l netlink.Link, p netip.Prefix) error {
	return h.AddrAdd(l, &netlink.Addr{IPNet: toIPNet(p), Flags: addrFlags(p)})
}

// writeSysctl writes a /proc/sys file of the calling thread's network
// namespace.
func writeSysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ensureSysctl writes value to a /proc/sys file unless it holds it
// already: reading is cheaper than a write, which takes the kernel's
// global network configuration lock.
func ensureSysctl(path, value string) error {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == value {
		return nil
	}
	return writeSysctl(path, value)
}

// EnsureBridge creates the bridge b.Name in the host namespace when it is
// missing, or brings an existing one to b: missing addresses added (none
// removed), the MTU set, the link up. IPv6 is enabled on it when it has an
// IPv6 address.
func EnsureBridge(ctx context.Context, b Bridge) error {
	if err := b.validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := hostHandle()
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", b.Name, err)
	}
	defer h.Close()
	if err := ensureBridge(h, b); err != nil {
		return fmt.Errorf("ensure bridge %s: %w", b.Name, err)
	}
	return nil
}

func ensureBridge(h *netlink.Handle, b Bridge) error {
	l, err := h.LinkByName(b.Name)
	if isNotFound(err) {
		l, err = createBridge(h, b)
	}
	if err != nil {
		return err
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return errdefs.AlreadyExists("a %s link of that name exists and is not a bridge", l.Type())
	}
	if b.MTU > 0 && l.Attrs().MTU != b.MTU {
		if err := h.LinkSetMTU(l, b.MTU); err != nil {
			return stepErr("set MTU", err)
		}
	}
	for _, a := range b.Addrs {
		if !a.Addr().Is4() {
			// A kernel booted or configured with IPv6 off by default
			// refuses IPv6 addresses until this is cleared.
			if err := ensureSysctl("/proc/sys/net/ipv6/conf/"+b.Name+"/disable_ipv6", "0"); err != nil {
				return stepErr("enable IPv6", err)
			}
			break
		}
	}
	have, err := linkAddrs(h, l)
	if err != nil {
		return stepErr("list addresses", err)
	}
	for _, a := range missingAddrs(have, b.Addrs) {
		if err := addAddr(h, l, a); err != nil {
			return stepErr("add address "+a.String(), err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(l); err != nil {
			return stepErr("set link up", err)
		}
	}
	return nil
}

func createBridge(h *netlink.Handle, b Bridge) (netlink.Link, error) {
	la := netlink.NewLinkAttrs()
	la.Name = b.Name
	la.MTU = b.MTU
	// A fixed address: otherwise the bridge takes the lowest of its
	// ports' addresses, and changes it as containers come and go.
	mac, err := ipam.RandomMAC()
	if err != nil {
		return nil, err
	}
	la.HardwareAddr = mac
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, stepErr("create bridge", err)
	}
	// EEXIST: another process made it meanwhile; use that one.
	l, err := h.LinkByName(b.Name)
	if err != nil {
		return nil, stepErr("find created bridge", err)
	}
	return l, nil
}

// DeleteBridge deletes the bridge name from the host namespace; a missing
// one is not an error.
func DeleteBridge(ctx context.Context, name string) error {
	if err := checkIfName("bridge", name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := hostHandle()
	if err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return errdefs.Invalid("delete bridge %s: it is a %s link, not a bridge", name, l.Type())
	}
	if err := h.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return nil
}

// Attach connects the container namespace e.NetNS to the bridge e.Bridge:
// a veth pair whose container end is created directly inside the
// namespace as e.IfName (addresses, link up, default and extra routes)
// and whose host end e.HostIf joins the bridge. It is all or nothing: on
// failure the host end is deleted, which deletes the container end too,
// and the error names the step that failed.
func Attach(ctx context.Context, e Endpoint) error {
	if err := e.validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	host, err := hostHandle()
	if err != nil {
		return fmt.Errorf("attach %s: %w", e.HostIf, err)
	}
	defer host.Close()
	br, err := host.LinkByName(e.Bridge)
	if isNotFound(err) {
		return errdefs.NotFound("attach %s: bridge %s does not exist", e.HostIf, e.Bridge)
	}
	if err != nil {
		return fmt.Errorf("attach %s: find bridge %s: %w", e.HostIf, e.Bridge, err)
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return errdefs.Invalid("attach %s: %s is a %s link, not a bridge", e.HostIf, e.Bridge, br.Type())
	}
	inside, ns, err := nsHandle(e.NetNS)
	if err != nil {
		return fmt.Errorf("attach %s: %w", e.HostIf, err)
	}
	defer ns.Close()
	defer inside.Close()

	mtu := e.MTU
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}
	la := netlink.NewLinkAttrs()
	la.Name = e.HostIf
	la.MTU = mtu
	la.Flags = net.FlagUp
	la.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{
		LinkAttrs:        la,
		PeerName:         e.IfName,
		PeerNamespace:    netlink.NsFd(ns),
		PeerHardwareAddr: e.MAC,
		PeerMTU:          uint32(mtu),
	}
	if err := host.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			// Someone else's link: leave it alone.
			return errdefs.AlreadyExists("attach %s: host interface %s or %s in %s already exists", e.HostIf, e.HostIf, e.IfName, e.NetNS)
		}
		// The pair may exist if only joining the bridge failed.
		delLink(host, e.HostIf)
		return fmt.Errorf("attach %s: create veth pair: %w", e.HostIf, err)
	}
	if err := configure(ctx, host, inside, veth, e); err != nil {
		delLink(host, e.HostIf)
		return fmt.Errorf("attach %s: %w", e.HostIf, err)
	}
	return nil
}

// configure performs the steps after the pair exists; Attach undoes them
// all by deleting the pair when one fails.
func configure(ctx context.Context, host, inside *netlink.Handle, veth *netlink.Veth, e Endpoint) error {
	if e.Hairpin {
		if err := host.LinkSetHairpin(veth, true); err != nil {
			return stepErr("set hairpin mode", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	peer, err := inside.LinkByName(e.IfName)
	if err != nil {
		return stepErr("find "+e.IfName+" in the namespace", err)
	}
	for _, a := range e.Addrs {
		if err := addAddr(inside, peer, a); err != nil {
			if errors.Is(err, unix.EACCES) && !a.Addr().Is4() {
				err = enableIPv6(e.NetNS, e.IfName, func() error { return addAddr(inside, peer, a) })
			}
			if err != nil {
				return stepErr("add address "+a.String(), err)
			}
		}
	}
	if err := inside.LinkSetUp(peer); err != nil {
		return stepErr("set "+e.IfName+" up", err)
	}
	for _, r := range e.routes() {
		if err := addRoute(inside, peer.Attrs().Index, r); err != nil {
			if r.Via.IsValid() {
				return stepErr(fmt.Sprintf("add route to %s via %s", r.Dst, r.Via), err)
			}
			return stepErr(fmt.Sprintf("add route to %s", r.Dst), err)
		}
	}
	return nil
}

// enableIPv6 clears disable_ipv6 of ifName inside the namespace (the
// kernel refuses IPv6 addresses with EACCES while it is set), then
// retries.
func enableIPv6(nsPath, ifName string, retry func() error) error {
	err := netns.Do(nsPath, func() error {
		return writeSysctl("/proc/sys/net/ipv6/conf/"+ifName+"/disable_ipv6", "0")
	})
	if err != nil {
		return fmt.Errorf("enable IPv6: %w", err)
	}
	return retry()
}

func addRoute(h *netlink.Handle, index int, r Route) error {
	nr := &netlink.Route{LinkIndex: index, Dst: toIPNet(r.Dst)}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	return h.RouteAdd(nr)
}

// delLink undoes a half-made endpoint; the error that made it fail is
// the one reported, so a failure to clean up adds nothing to it.
func delLink(h *netlink.Handle, name string) {
	if l, err := h.LinkByName(name); err == nil {
		_ = h.LinkDel(l)
	}
}

// Detach deletes the host end hostIf of an endpoint, which deletes its
// container end too; a missing link is not an error.
func Detach(ctx context.Context, hostIf string) error {
	if err := checkIfName("host interface", hostIf); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := hostHandle()
	if err != nil {
		return fmt.Errorf("detach %s: %w", hostIf, err)
	}
	defer h.Close()
	return deleteIn(h, hostIf, "detach "+hostIf)
}

// DetachIn deletes the interface ifName inside the namespace at netnsPath
// (for `network disconnect`, where only the container's side is known);
// a missing namespace or interface is not an error.
func DetachIn(ctx context.Context, netnsPath, ifName string) error {
	if err := checkIfName("container interface", ifName); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h, ns, err := nsHandle(netnsPath)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detach %s in %s: %w", ifName, netnsPath, err)
	}
	defer ns.Close()
	defer h.Close()
	return deleteIn(h, ifName, fmt.Sprintf("detach %s in %s", ifName, netnsPath))
}

func deleteIn(h *netlink.Handle, name, what string) error {
	l, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := h.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// HostVeths returns the names of the host's veth links that start with
// prefix, sorted: with HostIfPrefix, every host end berth made, of any
// store.
func HostVeths(ctx context.Context, prefix string) ([]string, error) {
	return veths(ctx, prefix, nil)
}

// BridgeVeths returns the names of the host's veth links that start with
// prefix and are ports of one of the named bridges, sorted: the host ends
// of one store's endpoints, found by the bridges that store owns, so that
// a reconciler never touches another store's veths.
func BridgeVeths(ctx context.Context, prefix string, bridges []string) ([]string, error) {
	if len(bridges) == 0 {
		return nil, nil
	}
	return veths(ctx, prefix, bridges)
}

// veths lists the host's veths named with prefix, on one of bridges
// when bridges is not nil.
func veths(ctx context.Context, prefix string, bridges []string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := hostHandle()
	if err != nil {
		return nil, fmt.Errorf("list veths: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list veths: %w", err)
	}
	ours := map[int]bool{}
	for _, l := range links {
		if _, ok := l.(*netlink.Bridge); ok && slices.Contains(bridges, l.Attrs().Name) {
			ours[l.Attrs().Index] = true
		}
	}
	var names []string
	for _, l := range links {
		_, veth := l.(*netlink.Veth)
		if veth && strings.HasPrefix(l.Attrs().Name, prefix) && (bridges == nil || ours[l.Attrs().MasterIndex]) {
			names = append(names, l.Attrs().Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// HostPrefixes returns the destinations of the host's routes (main table)
// and the prefixes of its interface addresses, both families, without
// default routes and duplicates: the prefixes a new network's subnet must
// not overlap (ipam.PickSubnet).
func HostPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := hostHandle()
	if err != nil {
		return nil, fmt.Errorf("list host prefixes: %w", err)
	}
	defer h.Close()
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		p = p.Masked()
		if hostPrefix(p) && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	for _, r := range routes {
		if p, ok := fromIPNet(r.Dst); ok {
			add(p)
		}
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := fromIPNet(a.IPNet); ok {
			add(p)
		}
	}
	return out, nil
}

// Info describes one interface.
type Info struct {
	// Addrs are its addresses with their prefix lengths, IPv6 link-local
	// ones included.
	Addrs []netip.Prefix
	// MAC is its hardware address.
	MAC net.HardwareAddr
	// MTU is its MTU.
	MTU int
	// Up reports whether it is administratively up.
	Up bool
}

// Addrs describes the interface ifName inside the namespace at netnsPath
// ("" for the host's), for `inspect` and tests.
func Addrs(ctx context.Context, netnsPath, ifName string) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	var h *netlink.Handle
	var err error
	if netnsPath == "" {
		h, err = hostHandle()
	} else {
		var ns vnetns.NsHandle
		h, ns, err = nsHandle(netnsPath)
		if err == nil {
			defer ns.Close()
		}
	}
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", ifName, err)
	}
	defer h.Close()
	l, err := h.LinkByName(ifName)
	if isNotFound(err) {
		return Info{}, errdefs.NotFound("interface %s does not exist", ifName)
	}
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", ifName, err)
	}
	addrs, err := linkAddrs(h, l)
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", ifName, err)
	}
	return Info{
		Addrs: addrs,
		MAC:   l.Attrs().HardwareAddr,
		MTU:   l.Attrs().MTU,
		Up:    l.Attrs().Flags&net.FlagUp != 0,
	}, nil
}
