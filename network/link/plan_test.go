package link

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
)

var (
	mp = netip.MustParsePrefix
	ma = netip.MustParseAddr
)

func TestHostIfName(t *testing.T) {
	a := HostIfName("c1", "n1")
	assert.Len(t, a, 14)
	assert.Equal(t, a, HostIfName("c1", "n1"), "stable")
	assert.NotEqual(t, a, HostIfName("c1", "n2"))
	assert.NotEqual(t, a, HostIfName("c1n", "1"), "IDs are separated")
	assert.Equal(t, HostIfPrefix, a[:2])
	assert.NoError(t, checkIfName("x", a))
}

func TestCheckIfName(t *testing.T) {
	for _, bad := range []string{"", "0123456789abcdef", "a/b", "a b", "a:b", ".", ".."} {
		err := checkIfName("x", bad)
		assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument), "%q: %v", bad, err)
	}
	assert.NoError(t, checkIfName("x", "0123456789abcde"))
}

func validEndpoint() Endpoint {
	return Endpoint{
		NetNS: "/run/berth/netns/c1", Bridge: "br-1", IfName: "eth0", HostIf: "bv0123",
		Addrs:    []netip.Prefix{mp("10.0.0.2/24"), mp("fd00::2/64")},
		Gateway4: ma("10.0.0.1"), Gateway6: ma("fd00::1"),
		MAC:    net.HardwareAddr{0x02, 0x42, 10, 0, 0, 2},
		Routes: []Route{{Dst: mp("192.0.2.7/24"), Via: ma("10.0.0.254")}, {Dst: mp("198.51.100.0/24")}},
	}
}

func TestEndpointValidate(t *testing.T) {
	require.NoError(t, validEndpoint().validate())
	for name, mod := range map[string]func(*Endpoint){
		"no netns":        func(e *Endpoint) { e.NetNS = "" },
		"long ifname":     func(e *Endpoint) { e.IfName = "eth0123456789abc" },
		"no host if":      func(e *Endpoint) { e.HostIf = "" },
		"no bridge":       func(e *Endpoint) { e.Bridge = "" },
		"gw4 without v4":  func(e *Endpoint) { e.Addrs = e.Addrs[1:] },
		"gw6 without v6":  func(e *Endpoint) { e.Addrs = e.Addrs[:1] },
		"gw4 is v6":       func(e *Endpoint) { e.Gateway4 = ma("fd00::1") },
		"multicast mac":   func(e *Endpoint) { e.MAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} },
		"short mac":       func(e *Endpoint) { e.MAC = net.HardwareAddr{2, 0} },
		"negative mtu":    func(e *Endpoint) { e.MTU = -1 },
		"mixed route":     func(e *Endpoint) { e.Routes = []Route{{Dst: mp("10.9.0.0/16"), Via: ma("fd00::1")}} },
		"route no dst":    func(e *Endpoint) { e.Routes = []Route{{Via: ma("10.0.0.1")}} },
		"invalid address": func(e *Endpoint) { e.Addrs = append(e.Addrs, netip.Prefix{}) },
	} {
		e := validEndpoint()
		mod(&e)
		err := e.validate()
		assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument), "%s: %v", name, err)
	}
}

func TestEndpointRoutes(t *testing.T) {
	assert.Equal(t, []Route{
		{Dst: mp("0.0.0.0/0"), Via: ma("10.0.0.1")},
		{Dst: mp("::/0"), Via: ma("fd00::1")},
		{Dst: mp("192.0.2.0/24"), Via: ma("10.0.0.254")},
		{Dst: mp("198.51.100.0/24")},
	}, validEndpoint().routes())

	// An internal network: no gateways, no default routes.
	e := validEndpoint()
	e.Gateway4, e.Gateway6, e.Routes = netip.Addr{}, netip.Addr{}, nil
	assert.Empty(t, e.routes())
}

func TestBridgePlan(t *testing.T) {
	assert.Equal(t, []netip.Prefix{mp("fd00::1/64")}, missingAddrs(
		[]netip.Prefix{mp("10.0.0.1/24"), mp("fe80::1/64")},
		[]netip.Prefix{mp("10.0.0.1/24"), mp("fd00::1/64")}))
	assert.Equal(t, []netip.Prefix{mp("10.0.0.1/16")}, missingAddrs(
		[]netip.Prefix{mp("10.0.0.1/24")}, []netip.Prefix{mp("10.0.0.1/16")}),
		"same address, other prefix length")
	assert.Empty(t, missingAddrs([]netip.Prefix{mp("10.0.0.1/24")}, []netip.Prefix{mp("10.0.0.1/24")}))

	assert.Equal(t, 0, addrFlags(mp("10.0.0.1/24")))
	assert.Equal(t, unix.IFA_F_NODAD, addrFlags(mp("fd00::1/64")))

	assert.NoError(t, Bridge{Name: "br-x", Addrs: []netip.Prefix{mp("10.0.0.1/24")}}.validate())
	assert.Error(t, Bridge{Name: "br-x/y"}.validate())
	assert.Error(t, Bridge{Name: "br-x", MTU: -5}.validate())
	assert.Error(t, Bridge{Name: "br-x", Addrs: []netip.Prefix{{}}}.validate())
}
