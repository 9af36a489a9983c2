package firewall

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil"
)

// topology is a "host" namespace with bridges, "container" namespaces on
// them and an "outside" namespace behind a plain veth, standing for the
// world beyond the host's uplink.
type topology struct {
	host, out      string
	c1, c2, c3, c4 string
}

// Addresses. The outside namespace routes 10.88.0.0/16 back to the host,
// so traffic that is not masqueraded still gets answered (and a test can
// tell the two apart by the source the server sees).
const (
	gwA, gwB, gwI = "10.88.1.1", "10.88.2.1", "10.88.3.1"
	ipC1, ipC2    = "10.88.1.2", "10.88.1.3" // on br-a
	ipC3          = "10.88.2.2"              // on br-b
	ipC4          = "10.88.3.2"              // on br-i (internal)
	hostUplink    = "10.99.0.1"
	ipOut         = "10.99.0.2"
)

func newTopology(t *testing.T) *topology {
	t.Helper()
	tp := &topology{host: newNetNS(t)}
	h := nsHandle(t, tp.host)
	linkUp(t, h, "lo")
	brA := addBridge(t, h, "br-a", gwA+"/24")
	brB := addBridge(t, h, "br-b", gwB+"/24")
	brI := addBridge(t, h, "br-i", gwI+"/24")
	tp.c1 = addContainer(t, h, "veth-c1", brA, "", ipC1+"/24", gwA)
	tp.c2 = addContainer(t, h, "veth-c2", brA, "", ipC2+"/24", gwA)
	tp.c3 = addContainer(t, h, "veth-c3", brB, "", ipC3+"/24", gwB)
	tp.c4 = addContainer(t, h, "veth-c4", brI, "", ipC4+"/24", gwI)
	tp.out = addContainer(t, h, "uplink", nil, hostUplink+"/24", ipOut+"/24", "")
	require.NoError(t, nsHandle(t, tp.out).RouteAdd(routeVia("10.88.0.0/16", hostUplink)))
	return tp
}

func (tp *topology) state() State {
	return State{
		Networks: []Network{
			{Name: "a", Bridge: "br-a", Subnets: []netip.Prefix{pfx("10.88.1.0/24")}},
			{Name: "b", Bridge: "br-b", Subnets: []netip.Prefix{pfx("10.88.2.0/24")}},
			{Name: "i", Bridge: "br-i", Subnets: []netip.Prefix{pfx("10.88.3.0/24")}, Internal: true},
		},
		Ports: []Port{
			{Proto: "tcp", HostIP: mustAddr("127.0.0.1"), HostPort: 8080, ContainerIP: mustAddr(ipC3), ContainerPort: 80},
			{Proto: "tcp", HostPort: 8081, ContainerIP: mustAddr(ipC1), ContainerPort: 80},
		},
	}
}

func TestHostFirewallTraffic(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	tp := newTopology(t)
	for _, ns := range []string{tp.c1, tp.c2, tp.c3, tp.c4} {
		server(t, ns, "0.0.0.0:80")
	}
	server(t, tp.out, "0.0.0.0:80")

	// Without berth's rules (but with forwarding on) everything routes:
	// the checks below fail because of the firewall, not the topology.
	writeSysctl(t, tp.host, "net/ipv4/ip_forward", "1")
	reaches(t, tp.c1, ipC3+":80", ipC1)
	reaches(t, tp.c4, ipOut+":80", ipC4)
	reaches(t, tp.out, ipC4+":80", ipOut)
	reaches(t, tp.c1, ipOut+":80", ipC1)
	blocked(t, tp.host, "127.0.0.1:8080")
	writeSysctl(t, tp.host, "net/ipv4/ip_forward", "0")

	fw := NewHost(InNetNS(tp.host))
	require.NoError(t, fw.Apply(ctx, tp.state()))
	assert.Equal(t, "1", readSysctl(t, tp.host, "net/ipv4/ip_forward"))
	assert.Equal(t, "1", readSysctl(t, tp.host, "net/ipv4/conf/br-a/route_localnet"))
	assert.Equal(t, "1", readSysctl(t, tp.host, "net/ipv4/conf/br-b/route_localnet"))
	assert.Equal(t, "0", readSysctl(t, tp.host, "net/ipv4/conf/br-i/route_localnet"))

	t.Run("published on 127.0.0.1 from the host", func(t *testing.T) {
		reaches(t, tp.host, "127.0.0.1:8080", gwB) // masqueraded to the bridge address
	})
	t.Run("published on every address", func(t *testing.T) {
		reaches(t, tp.out, hostUplink+":8081", ipOut)
		reaches(t, tp.host, "127.0.0.1:8081", gwA)
		reaches(t, tp.host, hostUplink+":8081", "")
		blocked(t, tp.out, hostUplink+":8080") // that one is on 127.0.0.1 only
	})
	t.Run("hairpin", func(t *testing.T) {
		reaches(t, tp.c2, gwA+":8081", gwA)
		reaches(t, tp.c2, hostUplink+":8081", gwA)
	})
	t.Run("published port from another network", func(t *testing.T) {
		reaches(t, tp.c3, gwB+":8081", "")
	})
	t.Run("outbound masquerade", func(t *testing.T) {
		reaches(t, tp.c1, ipOut+":80", hostUplink)
		reaches(t, tp.c3, ipOut+":80", hostUplink)
	})
	t.Run("bridges are isolated", func(t *testing.T) {
		reaches(t, tp.c1, ipC2+":80", ipC1) // same bridge
		blocked(t, tp.c1, ipC3+":80")
		blocked(t, tp.c3, ipC1+":80")
	})
	t.Run("internal network stays on its bridge", func(t *testing.T) {
		blocked(t, tp.c4, ipOut+":80")
		blocked(t, tp.c4, ipC1+":80")
		blocked(t, tp.c1, ipC4+":80")
		blocked(t, tp.out, ipC4+":80")
		blocked(t, tp.c4, gwA+":8081") // even through a published port
	})
	t.Run("apply twice equals once", func(t *testing.T) {
		before := nft(t, tp.host, "list", "ruleset")
		require.NoError(t, fw.Apply(ctx, tp.state()))
		assert.Equal(t, before, nft(t, tp.host, "list", "ruleset"))
		// The same through a rewrite: another state, then this one again.
		require.NoError(t, fw.Apply(ctx, State{Networks: tp.state().Networks}))
		assert.NotEqual(t, before, nft(t, tp.host, "list", "ruleset"))
		require.NoError(t, fw.Apply(ctx, tp.state()))
		assert.Equal(t, before, nft(t, tp.host, "list", "ruleset"))
		reaches(t, tp.host, "127.0.0.1:8080", gwB)
	})
	t.Run("replacing the state", func(t *testing.T) {
		s := tp.state()
		s.Ports = s.Ports[1:]
		require.NoError(t, fw.Apply(ctx, s))
		blocked(t, tp.host, "127.0.0.1:8080")
		reaches(t, tp.host, "127.0.0.1:8081", gwA)
	})
	t.Run("empty state deletes the table", func(t *testing.T) {
		inst, err := fw.Current(ctx)
		require.NoError(t, err)
		assert.True(t, inst.Table)
		require.NoError(t, fw.Apply(ctx, State{}))
		inst, err = fw.Current(ctx)
		require.NoError(t, err)
		assert.True(t, inst.Empty(), "%+v", inst)
		assert.NotContains(t, nft(t, tp.host, "list", "tables"), "berth")
		// Forwarding is never turned off.
		assert.Equal(t, "1", readSysctl(t, tp.host, "net/ipv4/ip_forward"))
		require.NoError(t, fw.Apply(ctx, State{}), "empty twice")
		require.NoError(t, fw.Remove(ctx), "remove when nothing is there")
	})
}

// addDockerForward builds what dockerd leaves with iptables-nft: table ip
// filter with a FORWARD base chain of policy drop, holding a rule of its
// own that must survive berth.
func addDockerForward(t *testing.T, ns string, families ...nftables.TableFamily) {
	t.Helper()
	if len(families) == 0 {
		families = []nftables.TableFamily{nftables.TableFamilyIPv4}
	}
	for _, f := range families {
		addDockerForwardFamily(t, ns, f)
	}
}

func addDockerForwardFamily(t *testing.T, ns string, family nftables.TableFamily) {
	t.Helper()
	n, err := openNetNS(ns)
	require.NoError(t, err)
	defer n.close()
	cc, err := n.conn()
	require.NoError(t, err)
	defer func() { _ = cc.CloseLasting() }()
	tbl := cc.AddTable(&nftables.Table{Name: "filter", Family: family})
	drop := nftables.ChainPolicyDrop
	ch := cc.AddChain(&nftables.Chain{Name: "FORWARD", Table: tbl, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	cc.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: []expr.Any{&expr.Counter{}},
		UserData: userdata.AppendString(nil, userdata.TypeComment, "docker")})
	require.NoError(t, cc.Flush())
}

func TestHostFirewallForwardDrop(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	tp := newTopology(t)
	server(t, tp.c1, "0.0.0.0:80")
	server(t, tp.c2, "0.0.0.0:80")
	server(t, tp.out, "0.0.0.0:80")
	addDockerForward(t, tp.host, nftables.TableFamilyIPv4, nftables.TableFamilyIPv6)
	writeSysctl(t, tp.host, "net/ipv4/ip_forward", "1")
	blocked(t, tp.c1, ipOut+":80")
	if brNetfilter(t, tp.host) {
		blocked(t, tp.c1, ipC2+":80") // br_netfilter: bridged traffic meets FORWARD too
	}

	fw := NewHost(InNetNS(tp.host))
	require.NoError(t, fw.Apply(ctx, tp.state()))
	reaches(t, tp.c1, ipOut+":80", hostUplink)
	reaches(t, tp.c1, ipC2+":80", ipC1) // bridged, seen by FORWARD with br_netfilter
	blocked(t, tp.c1, ipC3+":80")       // isolation still holds
	blocked(t, tp.c4, ipOut+":80")
	// A published port obeys the host's forward policy: from another
	// machine it is dropped until the host's own rules let it in.
	blocked(t, tp.out, hostUplink+":8081")
	nft(t, tp.host, "add", "rule", "ip", "filter", "FORWARD", "ip", "daddr", ipC1, "tcp", "dport", "80", "accept")
	reaches(t, tp.out, hostUplink+":8081", "")

	listed := nft(t, tp.host, "list", "chain", "ip", "filter", "FORWARD")
	assert.Equal(t, 6, strings.Count(listed, `comment "berth"`), listed)
	assert.Contains(t, listed, `comment "docker"`)
	assert.Less(t, strings.Index(listed, `comment "berth"`), strings.Index(listed, `comment "docker"`),
		"berth's rules come first:\n%s", listed)
	if _, err := exec.LookPath("iptables-nft"); err == nil {
		out, err := exec.Command("nsenter", "--net="+tp.host, "iptables-nft", "-S", "FORWARD").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), `-A FORWARD -i br-a -m comment --comment berth -j ACCEPT`)
		assert.Contains(t, string(out), `-A FORWARD -o br-a -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment berth -j ACCEPT`)
	}

	assert.Equal(t, 6, strings.Count(nft(t, tp.host, "list", "chain", "ip6", "filter", "FORWARD"), `comment "berth"`))

	inst, err := fw.Current(ctx)
	require.NoError(t, err)
	assert.Equal(t, Installed{Table: true, ForwardRules: 12}, inst)

	require.NoError(t, fw.Apply(ctx, tp.state()))
	inst, err = fw.Current(ctx)
	require.NoError(t, err)
	assert.Equal(t, 12, inst.ForwardRules, "apply twice must not duplicate")

	// Fewer bridges: the marked rules follow.
	one := State{Networks: tp.state().Networks[:1]}
	require.NoError(t, fw.Apply(ctx, one))
	listed = nft(t, tp.host, "list", "chain", "ip", "filter", "FORWARD")
	assert.Equal(t, 2, strings.Count(listed, `comment "berth"`), listed)
	assert.NotContains(t, listed, "br-b")
	reaches(t, tp.c1, ipOut+":80", hostUplink)
	require.NoError(t, fw.Apply(ctx, tp.state()))
	reaches(t, tp.c1, ipOut+":80", hostUplink)

	require.NoError(t, fw.Remove(ctx))
	inst, err = fw.Current(ctx)
	require.NoError(t, err)
	assert.True(t, inst.Empty(), "%+v", inst)
	listed = nft(t, tp.host, "list", "chain", "ip", "filter", "FORWARD")
	assert.NotContains(t, listed, "berth")
	assert.Contains(t, listed, `comment "docker"`)
	assert.Contains(t, listed, "policy drop")
	blocked(t, tp.c1, ipOut+":80")
}

// TestRenderIsNftSyntax has nft check (without applying) the rendered
// table, in a namespace of its own.
func TestRenderIsNftSyntax(t *testing.T) {
	testutil.RequiresRoot(t)
	ns := newNetNS(t)
	rs, err := Plan(benchState())
	require.NoError(t, err)
	crs, err := PlanContainer([]Rule{
		{Direction: Egress, Action: Deny, CIDR: pfx("10.0.0.0/8"), Proto: "tcp", PortFirst: 1, PortLast: 1024},
		{Direction: Ingress, Action: Deny, Proto: "icmp"},
	}, Policy{Egress: Deny})
	require.NoError(t, err)
	for _, r := range []*Ruleset{rs, crs} {
		cmd := exec.Command("nsenter", "--net="+ns, "nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(r.Render())
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "nft -c rejects:\n%s\n%s", out, r.Render())
	}
}

// TestHostApplyTime measures Apply for 10 networks and 50 ports, both
// when the state changes (a rewrite) and when it does not.
func TestHostApplyTime(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	ns := newNetNS(t)
	h := nsHandle(t, ns)
	s := benchState()
	for _, n := range s.Networks {
		addBridge(t, h, n.Bridge, netip.PrefixFrom(n.Subnets[0].Addr().Next(), 24).String())
	}
	addDockerForward(t, ns)
	other := benchState()
	other.Ports[0].HostPort = 30000
	fw := NewHost(InNetNS(ns))
	require.NoError(t, fw.Apply(ctx, s))
	const runs = 40
	measure := func(next func(i int) State) []time.Duration {
		times := make([]time.Duration, runs)
		for i := range times {
			st := next(i)
			start := time.Now()
			require.NoError(t, fw.Apply(ctx, st))
			times[i] = time.Since(start)
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		return times
	}
	changed := measure(func(i int) State {
		if i%2 == 0 {
			return other
		}
		return s
	})
	same := measure(func(int) State { return s })
	rs, err := Plan(s)
	require.NoError(t, err)
	rules := 0
	for _, c := range rs.Chains {
		rules += len(c.Rules)
	}
	t.Logf("Apply, 10 networks and 50 ports (%d rules + %d in FORWARD), %d runs each:", rules, len(rs.ForwardAccept), runs)
	t.Logf("  changed state (rewrite): min %v, median %v, max %v", changed[0], changed[runs/2], changed[runs-1])
	t.Logf("  same state (digest matches): min %v, median %v, max %v", same[0], same[runs/2], same[runs-1])
	start := time.Now()
	for i := 0; i < runs; i++ {
		_, _ = Plan(s)
	}
	t.Logf("  Plan alone: %v per call", time.Since(start)/runs)
	assert.Less(t, changed[runs/2], 100*time.Millisecond, "Apply is far slower than expected")
}

// brNetfilter reports whether bridged IPv4 traffic goes through iptables
// chains in the namespace (br_netfilter loaded and enabled).
func brNetfilter(t *testing.T, ns string) bool {
	t.Helper()
	var on bool
	_ = inNS(t, ns, func() error {
		b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
		on = err == nil && strings.TrimSpace(string(b)) == "1"
		return nil
	})
	return on
}

// TestHostTablesOfTwoStores has two Hosts with their own tables share one
// namespace: each applies and removes its own table and FORWARD rules and
// leaves the other's alone.
func TestHostTablesOfTwoStores(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	tp := newTopology(t)
	server(t, tp.out, "0.0.0.0:80")
	addDockerForward(t, tp.host, nftables.TableFamilyIPv4)
	nets := tp.state().Networks
	a := NewHost(InNetNS(tp.host), Table("berth-a"))
	b := NewHost(InNetNS(tp.host), Table("berth-b"))
	require.NoError(t, a.Apply(ctx, State{Networks: nets[:1]}))
	require.NoError(t, b.Apply(ctx, State{Networks: nets[1:2]}))

	listed := nft(t, tp.host, "list", "chain", "ip", "filter", "FORWARD")
	assert.Equal(t, 2, strings.Count(listed, `comment "berth-a"`), listed)
	assert.Equal(t, 2, strings.Count(listed, `comment "berth-b"`), listed)
	for _, name := range []string{"berth-a", "berth-b"} {
		nft(t, tp.host, "list", "table", "inet", name) // fails the test when missing
	}
	reaches(t, tp.c1, ipOut+":80", hostUplink)

	// Re-applying a's state leaves b's rules in place; removing a leaves b.
	require.NoError(t, a.Apply(ctx, State{Networks: nets[:1]}))
	require.NoError(t, a.Remove(ctx))
	inst, err := a.Current(ctx)
	require.NoError(t, err)
	assert.True(t, inst.Empty(), "%+v", inst)
	inst, err = b.Current(ctx)
	require.NoError(t, err)
	assert.Equal(t, Installed{Table: true, ForwardRules: 2}, inst)
	require.NoError(t, b.Remove(ctx))
}
