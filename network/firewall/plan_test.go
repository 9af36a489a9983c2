package firewall

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func chainByName(t *testing.T, rs *Ruleset, name string) Chain {
	t.Helper()
	for _, c := range rs.Chains {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no chain %q in plan:\n%s", name, rs.Render())
	return Chain{}
}

func hasChain(rs *Ruleset, name string) bool {
	for _, c := range rs.Chains {
		if c.Name == name {
			return true
		}
	}
	return false
}

func ruleStrings(c Chain) []string {
	out := make([]string, len(c.Rules))
	for i, r := range c.Rules {
		out[i] = r.String()
	}
	return out
}

func TestPlanEmpty(t *testing.T) {
	rs, err := Plan(State{})
	require.NoError(t, err)
	assert.True(t, rs.Empty())
	assert.Empty(t, rs.Sysctls)
	assert.Equal(t, "# empty: table inet berth is deleted\n", rs.Render())
}

func TestPlanMasquerade(t *testing.T) {
	rs, err := Plan(State{Networks: []Network{
		{Name: "default", Bridge: "berth0", Subnets: []netip.Prefix{pfx("10.88.0.0/16"), pfx("fd00:88::/64")}},
	}})
	require.NoError(t, err)
	post := chainByName(t, rs, chainPostrouting)
	assert.Equal(t, HookPostrouting, post.Hook)
	assert.Equal(t, TypeNAT, post.Type)
	assert.Equal(t, PrioritySrcNAT, post.Priority)
	assert.Equal(t, []string{
		`oifname != "berth0" ip saddr 10.88.0.0/16 masquerade`,
		`oifname != "berth0" ip6 saddr fd00:88::/64 masquerade`,
	}, ruleStrings(post))
	// One network: nothing to isolate, no ports: no DNAT chains.
	assert.False(t, hasChain(rs, chainForward))
	assert.False(t, hasChain(rs, chainPrerouting))
	assert.Empty(t, rs.Sets)
	assert.Equal(t, []Sysctl{
		{Path: "net/ipv4/ip_forward", Value: "1"},
		{Path: "net/ipv6/conf/all/forwarding", Value: "1"},
	}, rs.Sysctls)
	assert.Equal(t, []string{`iifname "berth0" accept comment "berth"`, `oifname "berth0" ct state established,related accept comment "berth"`},
		[]string{rs.ForwardAccept[0].String(), rs.ForwardAccept[1].String()})
}

func TestPlanSubnetsAreMasked(t *testing.T) {
	rs, err := Plan(State{Networks: []Network{{Bridge: "br0", Subnets: []netip.Prefix{pfx("10.1.2.3/24")}}}})
	require.NoError(t, err)
	assert.Equal(t, pfx("10.1.2.0/24"), chainByName(t, rs, chainPostrouting).Rules[0].Saddr)
}

func TestPlanIsolationAndInternal(t *testing.T) {
	rs, err := Plan(State{Networks: []Network{
		{Name: "a", Bridge: "br-a", Subnets: []netip.Prefix{pfx("10.1.0.0/24")}},
		{Name: "b", Bridge: "br-b", Subnets: []netip.Prefix{pfx("10.2.0.0/24")}},
		{Name: "i", Bridge: "br-i", Subnets: []netip.Prefix{pfx("10.3.0.0/24")}, Internal: true},
	}})
	require.NoError(t, err)
	fwd := chainByName(t, rs, chainForward)
	assert.Equal(t, HookForward, fwd.Hook)
	assert.False(t, fwd.Drop, "forward policy stays accept: berth only drops its own traffic")
	assert.Equal(t, []string{
		`iifname "br-i" oifname != "br-i" drop`,
		`iifname != "br-i" oifname "br-i" drop`,
		`iifname "br-a" oifname != "br-a" oifname @bridges drop`,
		`iifname "br-b" oifname != "br-b" oifname @bridges drop`,
		`iifname "br-i" oifname != "br-i" oifname @bridges drop`,
	}, ruleStrings(fwd))
	assert.Equal(t, []Set{{Name: "bridges", Elements: []string{"br-a", "br-b", "br-i"}}}, rs.Sets)
	// The internal network gets no masquerade.
	for _, r := range chainByName(t, rs, chainPostrouting).Rules {
		assert.NotEqual(t, "br-i", r.NotOIF, r.String())
		assert.NotEqual(t, pfx("10.3.0.0/24"), r.Saddr, r.String())
	}
	assert.Len(t, rs.ForwardAccept, 6)
	assert.Equal(t, []Sysctl{{Path: "net/ipv4/ip_forward", Value: "1"}}, rs.Sysctls)
}

func TestPlanInternalOnlyNeedsNoForwarding(t *testing.T) {
	rs, err := Plan(State{Networks: []Network{
		{Bridge: "br-i", Subnets: []netip.Prefix{pfx("10.3.0.0/24")}, Internal: true},
	}})
	require.NoError(t, err)
	assert.Empty(t, rs.Sysctls)
	assert.False(t, hasChain(rs, chainPostrouting))
	assert.Len(t, chainByName(t, rs, chainForward).Rules, 2)
}

func TestPlanPorts(t *testing.T) {
	rs, err := Plan(State{
		Networks: []Network{
			{Name: "a", Bridge: "br-a", Subnets: []netip.Prefix{pfx("10.1.0.0/24"), pfx("fd01::/64")}},
			{Name: "b", Bridge: "br-b", Subnets: []netip.Prefix{pfx("10.2.0.0/24")}},
		},
		Ports: []Port{
			{Proto: "tcp", HostPort: 8080, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Proto: "udp", HostIP: addr("0.0.0.0"), HostPort: 53, ContainerIP: addr("10.1.0.2"), ContainerPort: 5353},
			{Proto: "tcp", HostIP: addr("127.0.0.1"), HostPort: 9000, ContainerIP: addr("10.2.0.5"), ContainerPort: 9000, Bridge: "br-b"},
			{Proto: "tcp", HostIP: addr("::"), HostPort: 8080, ContainerIP: addr("fd01::2"), ContainerPort: 80},
			{Proto: "tcp", HostIP: addr("2001:db8::1"), HostPort: 443, ContainerIP: addr("fd01::2"), ContainerPort: 8443},
		},
	})
	require.NoError(t, err)

	pre := chainByName(t, rs, chainPrerouting)
	assert.Equal(t, PriorityDstNAT, pre.Priority)
	assert.Equal(t, []string{`fib daddr type local jump ports`}, ruleStrings(pre))
	out := chainByName(t, rs, chainOutput)
	assert.Equal(t, HookOutput, out.Hook)
	assert.Equal(t, []string{`ip6 daddr ::1 return`, `fib daddr type local jump ports`}, ruleStrings(out))
	assert.Equal(t, []string{
		`meta nfproto ipv4 tcp dport 8080 dnat ip to 10.1.0.2:80`,
		`meta nfproto ipv4 udp dport 53 dnat ip to 10.1.0.2:5353`,
		`ip daddr 127.0.0.1 tcp dport 9000 dnat ip to 10.2.0.5:9000`,
		`meta nfproto ipv6 tcp dport 8080 dnat ip6 to [fd01::2]:80`,
		`ip6 daddr 2001:db8::1 tcp dport 443 dnat ip6 to [fd01::2]:8443`,
	}, ruleStrings(chainByName(t, rs, chainPorts)))

	post := ruleStrings(chainByName(t, rs, chainPostrouting))
	// Loopback sources (127.0.0.1 published ports) leave masqueraded.
	assert.Contains(t, post, `oifname "br-a" ip saddr 127.0.0.0/8 masquerade`)
	assert.Contains(t, post, `oifname "br-b" ip saddr 127.0.0.0/8 masquerade`)
	// Hairpin: a container reaching a neighbour's published port.
	assert.Contains(t, post, `oifname "br-a" ip saddr 10.1.0.0/24 ct status dnat masquerade`)
	assert.Contains(t, post, `oifname "br-a" ip6 saddr fd01::/64 ct status dnat masquerade`)
	assert.Contains(t, post, `oifname "br-b" ip saddr 10.2.0.0/24 ct status dnat masquerade`)

	// Published ports are reachable from other bridges, before isolation.
	fwd := ruleStrings(chainByName(t, rs, chainForward))
	assert.Equal(t, `ct status dnat accept`, fwd[0])

	assert.Contains(t, rs.Sysctls, Sysctl{Path: "net/ipv4/conf/br-a/route_localnet", Value: "1"})
	assert.Contains(t, rs.Sysctls, Sysctl{Path: "net/ipv4/conf/br-b/route_localnet", Value: "1"})
}

func TestPlanPortWithoutIPv6HasNoLoopbackReturn(t *testing.T) {
	rs, err := Plan(State{
		Networks: []Network{{Bridge: "br0", Subnets: []netip.Prefix{pfx("10.1.0.0/24")}}},
		Ports:    []Port{{Proto: "tcp", HostPort: 80, ContainerIP: addr("10.1.0.2"), ContainerPort: 80}},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{`fib daddr type local jump ports`}, ruleStrings(chainByName(t, rs, chainOutput)))
}

func TestPlanRejects(t *testing.T) {
	nets := []Network{{Name: "a", Bridge: "br-a", Subnets: []netip.Prefix{pfx("10.1.0.0/24"), pfx("fd01::/64")}}}
	for name, s := range map[string]State{
		"empty bridge":       {Networks: []Network{{Name: "x"}}},
		"long bridge":        {Networks: []Network{{Name: "x", Bridge: "a-very-long-bridge-name"}}},
		"quote in bridge":    {Networks: []Network{{Name: "x", Bridge: `br"0`}}},
		"bridge twice":       {Networks: []Network{{Name: "x", Bridge: "br0"}, {Name: "y", Bridge: "br0"}}},
		"bad proto":          {Networks: nets, Ports: []Port{{Proto: "sctp", HostPort: 1, ContainerIP: addr("10.1.0.2"), ContainerPort: 1}}},
		"zero host port":     {Networks: nets, Ports: []Port{{Proto: "tcp", ContainerIP: addr("10.1.0.2"), ContainerPort: 1}}},
		"no container ip":    {Networks: nets, Ports: []Port{{Proto: "tcp", HostPort: 1, ContainerPort: 1}}},
		"unknown network":    {Networks: nets, Ports: []Port{{Proto: "tcp", HostPort: 1, ContainerIP: addr("10.9.0.2"), ContainerPort: 1}}},
		"mixed families":     {Networks: nets, Ports: []Port{{Proto: "tcp", HostIP: addr("127.0.0.1"), HostPort: 1, ContainerIP: addr("fd01::2"), ContainerPort: 1}}},
		"mixed any families": {Networks: nets, Ports: []Port{{Proto: "tcp", HostIP: addr("::"), HostPort: 1, ContainerIP: addr("10.1.0.2"), ContainerPort: 1}}},
		"ipv6 loopback":      {Networks: nets, Ports: []Port{{Proto: "tcp", HostIP: addr("::1"), HostPort: 1, ContainerIP: addr("fd01::2"), ContainerPort: 1}}},
		"published twice": {Networks: nets, Ports: []Port{
			{Proto: "tcp", HostPort: 80, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Proto: "tcp", HostIP: addr("127.0.0.1"), HostPort: 80, ContainerIP: addr("10.1.0.3"), ContainerPort: 80},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Plan(s)
			require.Error(t, err)
			assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument), "%v", err)
		})
	}
}

func TestPlanSamePortOtherFamilyOrProto(t *testing.T) {
	_, err := Plan(State{
		Networks: []Network{{Bridge: "br-a", Subnets: []netip.Prefix{pfx("10.1.0.0/24"), pfx("fd01::/64")}}},
		Ports: []Port{
			{Proto: "tcp", HostPort: 80, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Proto: "tcp", HostPort: 80, ContainerIP: addr("fd01::2"), ContainerPort: 80},
			{Proto: "udp", HostPort: 80, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Proto: "tcp", HostIP: addr("127.0.0.1"), HostPort: 81, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Proto: "tcp", HostIP: addr("127.0.0.2"), HostPort: 81, ContainerIP: addr("10.1.0.3"), ContainerPort: 80},
		},
	})
	assert.NoError(t, err)
}

func TestPlanIsDeterministic(t *testing.T) {
	s := benchState()
	a, err := Plan(s)
	require.NoError(t, err)
	b, err := Plan(s)
	require.NoError(t, err)
	assert.Equal(t, a.Render(), b.Render())
}

func TestRender(t *testing.T) {
	rs, err := Plan(State{
		Networks: []Network{
			{Name: "a", Bridge: "br-a", Subnets: []netip.Prefix{pfx("10.1.0.0/24")}},
			{Name: "b", Bridge: "br-b", Subnets: []netip.Prefix{pfx("10.2.0.0/24")}, Internal: true},
		},
		Ports: []Port{{Proto: "tcp", HostIP: addr("127.0.0.1"), HostPort: 8080, ContainerIP: addr("10.1.0.2"), ContainerPort: 80}},
	})
	require.NoError(t, err)
	want := `table inet berth {
	set bridges {
		type ifname
		elements = { "br-a", "br-b" }
	}

	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump ports
	}

	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump ports
	}

	chain ports {
		ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 10.1.0.2:80
	}

	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "br-a" ip saddr 127.0.0.0/8 masquerade
		oifname "br-a" ip saddr 10.1.0.0/24 ct status dnat masquerade
		oifname != "br-a" ip saddr 10.1.0.0/24 masquerade
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "br-b" oifname != "br-b" drop
		iifname != "br-b" oifname "br-b" drop
		ct status dnat accept
		iifname "br-a" oifname != "br-a" oifname @bridges drop
		iifname "br-b" oifname != "br-b" oifname @bridges drop
	}
}

# when table ip filter (or ip6 filter) has a FORWARD chain with policy drop:
# insert rule ip filter FORWARD oifname "br-b" ct state established,related accept comment "berth"
# insert rule ip filter FORWARD iifname "br-b" accept comment "berth"
# insert rule ip filter FORWARD oifname "br-a" ct state established,related accept comment "berth"
# insert rule ip filter FORWARD iifname "br-a" accept comment "berth"

# sysctl net/ipv4/ip_forward = 1
# sysctl net/ipv4/conf/br-a/route_localnet = 1
`
	assert.Equal(t, want, rs.Render())
}

// TestCompileAllRules checks that every planned rule compiles to netlink
// expressions, without a kernel.
func TestCompileAllRules(t *testing.T) {
	rs, err := Plan(benchState())
	require.NoError(t, err)
	crs, err := PlanContainer([]Rule{
		{Direction: Egress, Action: Deny, CIDR: pfx("10.0.0.0/8"), Proto: "tcp", PortFirst: 1, PortLast: 1024},
		{Direction: Ingress, Action: Deny, Proto: "icmp"},
		{Direction: Ingress, Action: Allow, CIDR: pfx("fd00::/8"), Proto: "icmp"},
	}, Policy{Egress: Deny})
	require.NoError(t, err)
	n := 0
	for _, set := range []*Ruleset{rs, crs} {
		for _, c := range set.Chains {
			for _, r := range c.Rules {
				exprs, err := compileRule(r, map[string]*nftables.Set{setBridges: {Name: setBridges}})
				require.NoError(t, err, r.String())
				assert.NotEmpty(t, exprs)
				n++
			}
		}
	}
	assert.Greater(t, n, 60)
	_, err = compileRule(ChainRule{OIFSet: "nope", Verdict: Verdict{Kind: Drop}}, nil)
	assert.Error(t, err)
	_, err = compileRule(ChainRule{Verdict: Verdict{Kind: DNAT}}, nil)
	assert.Error(t, err)
}

func TestPrefixMask(t *testing.T) {
	assert.Equal(t, []byte{255, 255, 240, 0}, prefixMask(pfx("10.0.0.0/20")))
	assert.Equal(t, []byte{255, 0, 0, 0}, prefixMask(pfx("127.0.0.0/8")))
	m := prefixMask(pfx("fd00::/63"))
	assert.Len(t, m, 16)
	assert.Equal(t, byte(0xfe), m[7])
	assert.Equal(t, byte(0), m[8])
}

// benchState is 10 networks (one internal, two dual-stack) and 50
// published ports.
func benchState() State {
	var s State
	for i := 0; i < 10; i++ {
		n := Network{
			Name:     "net" + string(rune('a'+i)),
			Bridge:   "brt" + string(rune('a'+i)),
			Subnets:  []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(i), 0}), 24)},
			Internal: i == 9,
		}
		if i < 2 {
			n.Subnets = append(n.Subnets, netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, byte(i)}), 64))
		}
		s.Networks = append(s.Networks, n)
	}
	for i := 0; i < 50; i++ {
		s.Ports = append(s.Ports, Port{
			Proto:         []string{"tcp", "udp"}[i%2],
			HostPort:      uint16(20000 + i),
			ContainerIP:   netip.AddrFrom4([4]byte{10, 200, byte(i % 9), byte(2 + i/9)}),
			ContainerPort: 80,
		})
	}
	return s
}

func TestRenderNamesEveryChain(t *testing.T) {
	rs, err := Plan(benchState())
	require.NoError(t, err)
	text := rs.Render()
	for _, c := range rs.Chains {
		assert.Contains(t, text, "chain "+c.Name+" {")
	}
	assert.Equal(t, 50, strings.Count(text, "dnat ip to"))
}
