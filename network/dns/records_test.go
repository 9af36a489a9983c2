package dns

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

var (
	gwA  = netip.MustParseAddr("172.18.0.1")
	gwB  = netip.MustParseAddr("172.19.0.1")
	gwA6 = netip.MustParseAddr("fd00:18::1")
)

func testConfig() *Config {
	return &Config{
		Upstreams: []string{"127.0.0.53", "[::1]:5353", "10.0.0.1:54"},
		Networks: []Network{
			{
				Name:     "a",
				Gateways: []netip.Addr{gwA, gwA6},
				Subnets:  []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("fd00:18::/64")},
				Endpoints: []Endpoint{
					{Name: "Web", ID: "0123456789abcdef0123", Aliases: []string{"front", "lb"}, Addresses: []netip.Addr{netip.MustParseAddr("172.18.0.2"), netip.MustParseAddr("fd00:18::2")}},
					{Name: "web2", Aliases: []string{"lb"}, Addresses: []netip.Addr{netip.MustParseAddr("172.18.0.3")}, Upstreams: []string{"9.9.9.9"}},
					{Name: "v4only", Addresses: []netip.Addr{netip.MustParseAddr("::ffff:172.18.0.4")}},
				},
			},
			{
				Name:      "b",
				Gateways:  []netip.Addr{gwB},
				Endpoints: []Endpoint{{Name: "db", Addresses: []netip.Addr{netip.MustParseAddr("172.19.0.2")}}},
			},
		},
	}
}

func TestCompileLookup(t *testing.T) {
	r, err := Compile(testConfig())
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{gwA, gwB, gwA6}, r.Gateways())

	addrs, ok := r.Lookup(gwA, "WEB.")
	require.True(t, ok)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("172.18.0.2"), netip.MustParseAddr("fd00:18::2")}, addrs)

	// The network's IPv6 gateway serves the same names.
	addrs, ok = r.Lookup(gwA6, "0123456789ab")
	require.True(t, ok, "short ID")
	assert.Len(t, addrs, 2)

	_, ok = r.Lookup(gwA, "0123456789abc")
	assert.False(t, ok, "only the 12-character short ID resolves")

	addrs, ok = r.Lookup(gwA, "lb")
	require.True(t, ok)
	assert.ElementsMatch(t, []netip.Addr{netip.MustParseAddr("172.18.0.2"), netip.MustParseAddr("fd00:18::2"), netip.MustParseAddr("172.18.0.3")}, addrs)

	addrs, ok = r.Lookup(gwA, "v4only")
	require.True(t, ok)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("172.18.0.4")}, addrs, "mapped addresses count as IPv4")

	addrs, ok = r.Lookup(gwA, "Front.A.")
	require.True(t, ok, "names qualified with the network's")
	assert.Len(t, addrs, 2)

	_, ok = r.Lookup(gwA, "db")
	assert.False(t, ok, "another network's container is invisible")
	_, ok = r.Lookup(gwA, "db.b")
	assert.False(t, ok, "another network's container is invisible")
	_, ok = r.Lookup(gwB, "web")
	assert.False(t, ok, "another network's container is invisible")
	_, ok = r.Lookup(netip.MustParseAddr("10.9.9.9"), "web")
	assert.False(t, ok, "unknown gateway")
}

func TestCompileReverseUpstreamsAllowed(t *testing.T) {
	r, err := Compile(testConfig())
	require.NoError(t, err)

	name, ok := r.Reverse(gwA, netip.MustParseAddr("172.18.0.2"))
	require.True(t, ok)
	assert.Equal(t, "web.a.", name, "Docker's name.network")
	_, ok = r.Reverse(gwB, netip.MustParseAddr("172.18.0.2"))
	assert.False(t, ok)

	host := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.53:53"),
		netip.MustParseAddrPort("[::1]:5353"),
		netip.MustParseAddrPort("10.0.0.1:54"),
	}
	assert.Equal(t, host, r.Upstreams(gwA, netip.MustParseAddr("172.18.0.2")))
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("9.9.9.9:53")}, r.Upstreams(gwA, netip.MustParseAddr("172.18.0.3")), "the container's --dns")
	assert.Equal(t, host, r.Upstreams(gwB, netip.MustParseAddr("172.18.0.3")), "--dns is per network attachment")

	assert.True(t, r.Allowed(gwA, netip.MustParseAddr("172.18.5.5")))
	assert.True(t, r.Allowed(gwA, gwA), "the host through the gateway")
	assert.True(t, r.Allowed(gwA6, netip.MustParseAddr("fd00:18::9")))
	assert.False(t, r.Allowed(gwA, netip.MustParseAddr("172.19.0.2")), "a container of another network")
	assert.True(t, r.Allowed(gwB, netip.MustParseAddr("172.18.0.2")), "no subnets listed: open")
	assert.False(t, r.Allowed(netip.MustParseAddr("10.9.9.9"), gwA))
}

func TestCompileInvalid(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"bad upstream":    {Upstreams: []string{"resolver.example"}},
		"bad port":        {Upstreams: []string{"1.1.1.1:0"}},
		"dup gateway":     {Networks: []Network{{Gateways: []netip.Addr{gwA}}, {Gateways: []netip.Addr{gwA}}}},
		"no gateway":      {Networks: []Network{{Gateways: []netip.Addr{{}}}}},
		"unnamed":         {Networks: []Network{{Gateways: []netip.Addr{gwA}, Endpoints: []Endpoint{{Addresses: []netip.Addr{gwB}}}}}},
		"bad address":     {Networks: []Network{{Gateways: []netip.Addr{gwA}, Endpoints: []Endpoint{{Name: "x", Addresses: []netip.Addr{{}}}}}}},
		"bad ep upstream": {Networks: []Network{{Gateways: []netip.Addr{gwA}, Endpoints: []Endpoint{{Name: "x", Upstreams: []string{"x"}}}}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Compile(cfg)
			require.Error(t, err)
			assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument), "%v", err)
		})
	}
}

func TestPlanListeners(t *testing.T) {
	have := map[netip.Addr]int{gwA: 1, gwB: 2}
	add, remove := planListeners(have, []netip.Addr{gwB, gwA6})
	assert.Equal(t, []netip.Addr{gwA6}, add)
	assert.Equal(t, []netip.Addr{gwA}, remove)
	add, remove = planListeners(have, []netip.Addr{gwA, gwB})
	assert.Empty(t, add)
	assert.Empty(t, remove)
}

// TestLookupFromContainerOnTwoNetworks: a container on two networks
// resolves the names of both at either gateway; a container on one
// network does not see the other's.
func TestLookupFromContainerOnTwoNetworks(t *testing.T) {
	gwA, gwB := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")
	both := "c0ffee" + strings.Repeat("0", 58)
	r, err := Compile(&Config{Networks: []Network{
		{Name: "a", Gateways: []netip.Addr{gwA}, Endpoints: []Endpoint{
			{Name: "both", ID: both, Addresses: []netip.Addr{netip.MustParseAddr("10.1.0.2")}},
			{Name: "onlya", Addresses: []netip.Addr{netip.MustParseAddr("10.1.0.3")}},
		}},
		{Name: "b", Gateways: []netip.Addr{gwB}, Endpoints: []Endpoint{
			{Name: "both", ID: both, Addresses: []netip.Addr{netip.MustParseAddr("10.2.0.2")}},
			{Name: "peer", Addresses: []netip.Addr{netip.MustParseAddr("10.2.0.3")}},
		}},
	}})
	require.NoError(t, err)
	got, ok := r.LookupFrom(gwA, netip.MustParseAddr("10.1.0.2"), "peer")
	assert.True(t, ok)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.2.0.3")}, got)
	got, ok = r.LookupFrom(gwA, netip.MustParseAddr("10.1.0.2"), "both")
	assert.True(t, ok)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.1.0.2")}, got, "the arrival network's answer first")
	_, ok = r.LookupFrom(gwA, netip.MustParseAddr("10.1.0.3"), "peer")
	assert.False(t, ok, "a container only on a sees b's names")
	_, ok = r.LookupFrom(netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.1.0.2"), "peer")
	assert.False(t, ok, "no network listens there")
}
