package engine

import (
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/network/ipam"
)

func TestNewNetworkChecksTheRequest(t *testing.T) {
	yes := true
	n, pools, err := newNetwork(network.CreateRequest{Name: "app", Options: map[string]string{"mtu": "1400",
		optBridgeName: "br-app"}, IPAM: &network.IPAM{Config: []network.IPAMConfig{
		{Subnet: netip.MustParsePrefix("fd00:1::/64")}}}})
	require.NoError(t, err)
	assert.Equal(t, 1400, n.MTU)
	assert.Equal(t, "br-app", n.Bridge)
	assert.True(t, n.EnableIPv6, "an IPv6 subnet enables IPv6")
	assert.Len(t, pools, 1)

	for _, tc := range []struct {
		req  network.CreateRequest
		want string
	}{
		{network.CreateRequest{Name: "-bad"}, "invalid network name"},
		{network.CreateRequest{Name: "x", Driver: "overlay"}, "not supported"},
		{network.CreateRequest{Name: "x", Options: map[string]string{"mtu": "9"}}, "MTU"},
		{network.CreateRequest{Name: "x", Options: map[string]string{"color": "red"}}, "not supported"},
		{network.CreateRequest{Name: "x", Options: map[string]string{optBridgeName: "a/b"}}, "interface name"},
		{network.CreateRequest{Name: "x", EnableIPv4: new(bool)}, "always have IPv4"},
		{network.CreateRequest{Name: "x", EnableIPv6: &yes, IPAM: &network.IPAM{Config: []network.IPAMConfig{
			{Subnet: netip.MustParsePrefix("10.1.0.0/24")}, {Subnet: netip.MustParsePrefix("10.2.0.0/24")}}}}, "one IPv4"},
		{network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{
			{Gateway: netip.MustParseAddr("10.1.0.1")}}}}, "needs a subnet"},
	} {
		_, _, err := newNetwork(tc.req)
		assert.ErrorIs(t, err, errdefs.ErrInvalidArgument, tc.want)
		assert.ErrorContains(t, err, tc.want)
	}
}

func TestPlanSubnets(t *testing.T) {
	taken := []*state.Network{{Name: "old", Subnets: []state.Subnet{{Subnet: netip.MustParsePrefix("172.17.0.0/16")}}}}
	host := []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16")}

	// Picked: the first free pool, IPv4 first even when IPv6 was asked.
	v6, err := ipam.NewPool(netip.MustParsePrefix("fd00:9::/64"), netip.Prefix{}, netip.Addr{})
	require.NoError(t, err)
	subs, err := planSubnets(&state.Network{ID: "x", EnableIPv6: true}, []ipam.Pool{v6}, taken, host)
	require.NoError(t, err)
	require.Len(t, subs, 2)
	assert.Equal(t, netip.MustParsePrefix("172.19.0.0/16"), subs[0].Subnet)
	assert.Equal(t, netip.MustParseAddr("172.19.0.1"), subs[0].Gateway)
	assert.Equal(t, netip.MustParsePrefix("fd00:9::/64"), subs[1].Subnet)

	// Asked for and overlapping another network's: refused.
	p, err := ipam.NewPool(netip.MustParsePrefix("172.17.5.0/24"), netip.Prefix{}, netip.Addr{})
	require.NoError(t, err)
	_, err = planSubnets(&state.Network{ID: "y"}, []ipam.Pool{p}, taken, host)
	assert.ErrorContains(t, err, "overlaps")
}

func TestPortRequests(t *testing.T) {
	c := &state.Container{Config: &container.Config{ExposedPorts: network.PortSet{
		network.MustParsePort("80/tcp"): {}, network.MustParsePort("53/udp"): {}}},
		HostConfig: &container.HostConfig{PublishAllPorts: true, PortBindings: network.PortMap{
			network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8000-8010"}},
		}}}
	reqs, err := portRequests(c)
	require.NoError(t, err)
	require.Len(t, reqs, 2)
	assert.Equal(t, portRequest{proto: "udp", containerPort: 53}, reqs[0], "-P: any host port")
	assert.Equal(t, portRequest{proto: "tcp", hostIP: netip.MustParseAddr("127.0.0.1"), first: 8000, last: 8010, containerPort: 80}, reqs[1])

	for _, bad := range []string{"0-1", "9-8", "x", "70000"} {
		_, _, err := hostPortRange(bad)
		assert.Error(t, err, bad)
	}
}

func TestPortConflicts(t *testing.T) {
	local := netip.MustParseAddr("127.0.0.1")
	held := []state.PublishedPort{{Proto: "tcp", HostIP: local, HostPort: 8080}}
	assert.True(t, conflict(portRequest{proto: "tcp"}, 8080, held), "every address overlaps 127.0.0.1")
	assert.True(t, conflict(portRequest{proto: "tcp", hostIP: local}, 8080, held))
	assert.False(t, conflict(portRequest{proto: "tcp", hostIP: netip.MustParseAddr("127.0.0.2")}, 8080, held))
	assert.False(t, conflict(portRequest{proto: "udp"}, 8080, held))
	port, err := pickHostPort(portRequest{proto: "tcp", hostIP: local, first: 8080, last: 8081}, held)
	require.NoError(t, err)
	assert.NotEqual(t, uint16(8080), port)
}

func TestEndpointFor(t *testing.T) {
	c := &state.Container{ID: "c"}
	def := &state.Network{ID: "d", Name: defaultNetwork}
	user := &state.Network{ID: "u", Name: "app", Subnets: []state.Subnet{{Subnet: netip.MustParsePrefix("10.5.0.0/24")}}}
	_, err := endpointFor(c, def, &network.EndpointSettings{Aliases: []string{"a"}})
	assert.ErrorContains(t, err, "user-defined networks")
	_, err = endpointFor(c, def, &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.5.0.9")}})
	assert.ErrorContains(t, err, "user defined networks only")
	_, err = endpointFor(c, user, &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.6.0.9")}})
	assert.ErrorContains(t, err, "no configured subnet")
	ep, err := endpointFor(c, user, &network.EndpointSettings{Aliases: []string{"a"},
		IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.5.0.9")}})
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("10.5.0.9"), ep.IPv4)
	assert.Equal(t, []string{"a"}, ep.Aliases)
}
