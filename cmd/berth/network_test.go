package main

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/engine/state"
)

func TestNetworkCreateRequest(t *testing.T) {
	yes := true
	f := networkCreateFlags{
		driver:   "bridge",
		subnets:  []string{"172.20.0.0/16", "2001:db8:1::/64"},
		gateways: []string{"2001:db8:1::1", "172.20.0.1"},
		ipRanges: []string{"172.20.5.0/24"},
		internal: true,
		opts:     []string{"mtu=1400", "com.docker.network.bridge.name=br0"},
		labels:   []string{"team=web", "bare"},
	}
	req, err := f.request("web", &yes)
	require.NoError(t, err)
	assert.Equal(t, network.CreateRequest{
		Name: "web", Driver: "bridge", EnableIPv6: &yes, Internal: true,
		IPAM: &network.IPAM{Config: []network.IPAMConfig{
			{
				Subnet:  netip.MustParsePrefix("172.20.0.0/16"),
				IPRange: netip.MustParsePrefix("172.20.5.0/24"),
				Gateway: netip.MustParseAddr("172.20.0.1"),
			},
			{Subnet: netip.MustParsePrefix("2001:db8:1::/64"), Gateway: netip.MustParseAddr("2001:db8:1::1")},
		}},
		Options: map[string]string{"mtu": "1400", "com.docker.network.bridge.name": "br0"},
		Labels:  map[string]string{"team": "web", "bare": ""},
	}, req)

	// Nothing given: the engine picks the subnet and the IPv6 default.
	req, err = (&networkCreateFlags{driver: "bridge"}).request("plain", nil)
	require.NoError(t, err)
	assert.Equal(t, network.CreateRequest{Name: "plain", Driver: "bridge"}, req)

	_, err = (&networkCreateFlags{driver: "overlay"}).request("x", nil)
	require.EqualError(t, err, "network driver overlay is not supported: berth has bridge networks")
	_, err = (&networkCreateFlags{driver: "bridge", labels: []string{"=v"}}).request("x", nil)
	require.EqualError(t, err, "--label: invalid label '=v': empty name")
	_, err = (&networkCreateFlags{driver: "bridge", opts: []string{"mtu=9"}}).request("x", nil)
	require.ErrorContains(t, err, "the MTU must be a number from 68 to 65535")
}

func TestIPAMConfig(t *testing.T) {
	got, err := ipamConfig([]string{"10.1.0.0/16"}, nil, []string{"10.1.255.254"})
	require.NoError(t, err)
	assert.Equal(t, []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.1.0.0/16"), Gateway: netip.MustParseAddr("10.1.255.254")}}, got)

	got, err = ipamConfig(nil, nil, nil)
	require.NoError(t, err)
	assert.Nil(t, got)

	tests := []struct {
		name                      string
		subnets, ranges, gateways []string
		want                      string
	}{
		{"gateway without subnet", nil, nil, []string{"10.0.0.1"}, "every ip-range or gateway must have a corresponding subnet"},
		{"more ranges than subnets", []string{"10.0.0.0/8"}, []string{"10.1.0.0/16", "10.2.0.0/16"}, nil, "every ip-range or gateway must have a corresponding subnet"},
		{"bad subnet", []string{"10.0.0/8"}, nil, nil, `invalid --subnet "10.0.0/8": want a prefix in CIDR form such as 172.20.0.0/16`},
		{"subnet host bits", []string{"10.1.2.3/16"}, nil, nil, "invalid --subnet 10.1.2.3/16: host bits are set: did you mean 10.1.0.0/16?"},
		{"two IPv4 subnets", []string{"10.1.0.0/16", "10.2.0.0/16"}, nil, nil, "--subnet: berth networks have one IPv4 and one IPv6 subnet at most: got 10.1.0.0/16 and 10.2.0.0/16"},
		{"two IPv6 subnets", []string{"2001:db8:1::/64", "10.0.0.0/8", "2001:db8:2::/64"}, nil, nil, "~got 2001:db8:1::/64 and 2001:db8:2::/64"},
		{"bad range", []string{"10.0.0.0/8"}, []string{"10.1.0.0"}, nil, `invalid --ip-range "10.1.0.0": want a prefix in CIDR form such as 172.20.0.0/16`},
		{"range outside", []string{"10.0.0.0/8"}, []string{"192.168.0.0/24"}, nil, "no matching subnet for range 192.168.0.0/24"},
		{"range wider than subnet", []string{"10.1.0.0/16"}, []string{"10.0.0.0/8"}, nil, "no matching subnet for range 10.0.0.0/8"},
		{"two ranges", []string{"10.0.0.0/8", "2001:db8::/64"}, []string{"10.1.0.0/16", "10.2.0.0/16"}, nil, "cannot configure multiple ranges (10.2.0.0/16, 10.1.0.0/16) on the same subnet (10.0.0.0/8)"},
		{"bad gateway", []string{"10.0.0.0/8"}, nil, []string{"10.0.0.256"}, `invalid --gateway "10.0.0.256": not an IP address`},
		{"gateway outside", []string{"10.0.0.0/8"}, nil, []string{"192.168.0.1"}, "no matching subnet for gateway 192.168.0.1"},
		{"two gateways", []string{"10.0.0.0/8", "2001:db8::/64"}, nil, []string{"10.0.0.1", "10.0.0.2"}, "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/8)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ipamConfig(tc.subnets, tc.ranges, tc.gateways)
			require.Error(t, err)
			if part, ok := strings.CutPrefix(tc.want, "~"); ok {
				assert.Contains(t, err.Error(), part)
			} else {
				assert.Equal(t, tc.want, err.Error())
			}
		})
	}
}

func TestNetworkOptions(t *testing.T) {
	got, err := networkOptions([]string{"com.docker.network.driver.mtu=9000", "com.docker.network.bridge.name=br-x", "flag="})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"com.docker.network.driver.mtu": "9000", "com.docker.network.bridge.name": "br-x", "flag": ""}, got)
	got, err = networkOptions(nil)
	require.NoError(t, err)
	assert.Nil(t, got)
	for in, want := range map[string]string{
		"mtu":                                 "invalid option \"mtu\" for -o: want key=value",
		"=1":                                  "invalid option \"=1\" for -o: want key=value",
		"mtu=big":                             "invalid option \"mtu=big\" for -o: the MTU must be a number from 68 to 65535",
		"com.docker.network.driver.mtu=70000": "invalid option \"com.docker.network.driver.mtu=70000\" for -o: the MTU must be a number from 68 to 65535",
	} {
		_, err := networkOptions([]string{in})
		assert.EqualError(t, err, want, in)
	}
}

// The create flags are checked before the store is opened, and a bad
// one ends with docker's status for a usage error.
func TestNetworkCreateCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"create", "-d", "macvlan", "n"}, "network driver macvlan is not supported: berth has bridge networks"},
		{[]string{"create", "--subnet", "10.0.0.0/33", "n"}, `invalid --subnet "10.0.0.0/33": want a prefix in CIDR form such as 172.20.0.0/16`},
		{[]string{"create", "--subnet", "10.0.0.0/8", "--gateway", "11.0.0.1", "n"}, "no matching subnet for gateway 11.0.0.1"},
		{[]string{"create", "-o", "mtu", "n"}, `invalid option "mtu" for -o: want key=value`},
		{[]string{"connect", "--ip", "2001:db8::1", "n", "c"}, "invalid IPv4 address: 2001:db8::1"},
		{[]string{"connect", "--mac-address", "01:02:03:04:05:06", "n", "c"}, "~it is a multicast address"},
		{[]string{"connect", "--alias", " ", "n", "c"}, "--alias: an alias must not be empty"},
	} {
		cmd := newNetworkCmd()
		cmd.SetArgs(tc.argv)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		require.Error(t, err, tc.argv)
		if part, ok := strings.CutPrefix(tc.want, "~"); ok {
			assert.Contains(t, err.Error(), part)
		} else {
			assert.Equal(t, tc.want, err.Error())
		}
		var se *statusError
		require.True(t, errors.As(err, &se), "%v", tc.argv)
		assert.Equal(t, 125, se.code)
	}
}

func TestNetworkCommandTree(t *testing.T) {
	cmd := newNetworkCmd()
	for _, name := range []string{"create", "ls", "list", "inspect", "rm", "remove", "prune", "connect", "disconnect"} {
		sub, _, err := cmd.Find([]string{name})
		require.NoError(t, err, name)
		assert.NotEqual(t, cmd, sub, name)
	}
	ls, _, err := cmd.Find([]string{"ls"})
	require.NoError(t, err)
	for _, fl := range []string{"quiet", "no-trunc", "format", "filter"} {
		assert.NotNil(t, ls.Flags().Lookup(fl), fl)
	}
	create, _, err := cmd.Find([]string{"create"})
	require.NoError(t, err)
	for _, fl := range []string{"driver", "subnet", "gateway", "ip-range", "internal", "ipv6", "opt", "label"} {
		assert.NotNil(t, create.Flags().Lookup(fl), fl)
	}
}

// testNetworks are the predefined networks and two of the user's.
func testNetworks() []*state.Network {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	id := func(c string) string { return strings.Repeat(c, 64) }
	return []*state.Network{
		{ID: id("a"), Name: "bridge", Driver: "bridge", Created: created},
		{ID: id("b"), Name: "host", Driver: "host", Created: created},
		{ID: id("c"), Name: "none", Created: created},
		{ID: id("d"), Name: "web", Driver: "bridge", Created: created, EnableIPv6: true, Labels: map[string]string{"team": "web", "tier": "front"}},
		{ID: id("e"), Name: "db", Driver: "bridge", Created: created, Internal: true},
	}
}

func TestNetworkLsOutput(t *testing.T) {
	var rows []any
	for _, n := range testNetworks() {
		rows = append(rows, networkView(n, false))
	}
	var out bytes.Buffer
	require.NoError(t, printRowsNamed(&out, "", "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", rows, map[string]string{"ID": "NETWORK ID"}))
	assert.Equal(t, ""+
		"NETWORK ID     NAME      DRIVER    SCOPE\n"+
		"aaaaaaaaaaaa   bridge    bridge    local\n"+
		"bbbbbbbbbbbb   host      host      local\n"+
		"cccccccccccc   none      null      local\n"+
		"dddddddddddd   web       bridge    local\n"+
		"eeeeeeeeeeee   db        bridge    local\n", out.String())

	out.Reset()
	require.NoError(t, printRows(&out, `{{.Name}} {{.IPv6}} {{.Internal}} {{.Labels}} {{.Label "team"}} {{.CreatedAt}}`, "", rows[3:]))
	assert.Equal(t, ""+
		"web true false team=web,tier=front web 2026-01-02 03:04:05 +0000 UTC\n"+
		"db false true   2026-01-02 03:04:05 +0000 UTC\n", out.String())

	out.Reset()
	require.NoError(t, printRows(&out, "json", "", rows[3:4]))
	assert.JSONEq(t, `{"ID":"dddddddddddd","Name":"web","Driver":"bridge","Scope":"local","IPv6":"true","Internal":"false",
		"Labels":"team=web,tier=front","CreatedAt":"2026-01-02 03:04:05 +0000 UTC"}`, out.String())

	assert.Equal(t, strings.Repeat("d", 64), networkView(testNetworks()[3], true).ID, "--no-trunc")
}

func TestNetworkFilters(t *testing.T) {
	names := func(filters []string, used map[string]bool) []string {
		t.Helper()
		fs, err := parseFilters(filters)
		require.NoError(t, err)
		require.NoError(t, checkNetworkFilters(fs))
		var out []string
		for _, n := range testNetworks() {
			if matchNetwork(n, fs, used[n.Name]) {
				out = append(out, n.Name)
			}
		}
		return out
	}
	all := []string{"bridge", "host", "none", "web", "db"}
	assert.Equal(t, all, names(nil, nil))
	assert.Equal(t, []string{"web"}, names([]string{"name=we"}, nil))
	assert.Equal(t, []string{"web", "db"}, names([]string{"name=web", "name=db"}, nil), "values of one key: any")
	assert.Equal(t, []string{"host"}, names([]string{"id=bbbb"}, nil))
	assert.Equal(t, []string{"bridge", "web", "db"}, names([]string{"driver=bridge"}, nil))
	assert.Equal(t, []string{"none"}, names([]string{"driver=null"}, nil))
	assert.Equal(t, []string{"web"}, names([]string{"label=team"}, nil))
	assert.Equal(t, []string{"web"}, names([]string{"label=team=web", "driver=bridge"}, nil), "keys: all")
	assert.Empty(t, names([]string{"label=team=db"}, nil))
	assert.Equal(t, []string{"bridge", "host", "none"}, names([]string{"type=builtin"}, nil))
	assert.Equal(t, []string{"web", "db"}, names([]string{"type=custom"}, nil))
	assert.Equal(t, []string{"db"}, names([]string{"dangling=true"}, map[string]bool{"web": true}))
	assert.Equal(t, []string{"bridge", "host", "none", "web"}, names([]string{"dangling=false"}, map[string]bool{"web": true}))

	for in, want := range map[string]string{
		"type=system":  "invalid filter: 'type'='system'",
		"dangling=yes": "invalid filter 'dangling=yes'",
		"scope=local":  "invalid filter 'scope'",
	} {
		fs, err := parseFilters([]string{in})
		require.NoError(t, err)
		assert.EqualError(t, checkNetworkFilters(fs), want, in)
	}
}

func TestNetworkDriver(t *testing.T) {
	assert.Equal(t, "host", networkDriver(&state.Network{Name: "host"}))
	assert.Equal(t, "null", networkDriver(&state.Network{Name: "none"}))
	assert.Equal(t, "bridge", networkDriver(&state.Network{Name: "anything"}))
	assert.Equal(t, "null", networkDriver(&state.Network{Name: "none", Driver: "null"}))
}

func TestConfirm(t *testing.T) {
	for in, want := range map[string]bool{
		"y\n": true, "Y\n": true, "yes\n": true, " YES \n": true, "y": true,
		"n\n": false, "\n": false, "": false, "sure\n": false,
	} {
		var out bytes.Buffer
		assert.Equal(t, want, confirm(strings.NewReader(in), &out, networkPruneWarning), "%q", in)
		assert.True(t, strings.HasPrefix(out.String(), "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "))
	}
}

// Declining the prompt leaves before the store is opened.
func TestNetworkPruneDeclined(t *testing.T) {
	cmd := newNetworkCmd()
	var out bytes.Buffer
	cmd.SetArgs([]string{"prune"})
	cmd.SetIn(strings.NewReader("n\n"))
	cmd.SetOut(&out)
	require.NoError(t, cmd.Execute())
	assert.Equal(t, networkPruneWarning, out.String())
}

func TestConnectEndpoint(t *testing.T) {
	f := connectFlags{ip: "172.20.0.9", ip6: "2001:db8::9", mac: "02:42:ac:14:00:09", aliases: []string{"api", "v1.api"}}
	es, err := f.endpoint()
	require.NoError(t, err)
	assert.Equal(t, &network.EndpointSettings{
		IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("172.20.0.9"), IPv6Address: netip.MustParseAddr("2001:db8::9")},
		Aliases:    []string{"api", "v1.api"},
		MacAddress: network.HardwareAddr{0x02, 0x42, 0xac, 0x14, 0x00, 0x09},
	}, es)
	_, err = (&connectFlags{ip6: "10.0.0.1"}).endpoint()
	assert.EqualError(t, err, "invalid IPv6 address: 10.0.0.1")
}
