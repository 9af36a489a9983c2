package link

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/testutil"
	"github.com/berth-containers/berth/network/netns"
)

// lab is a made-up host: a namespace standing in for the host's, with
// container namespaces beside it. Everything is removed in t.Cleanup.
type lab struct {
	t    testing.TB
	dir  string
	host string
}

func newLab(t testing.TB) *lab {
	t.Helper()
	testutil.RequiresRoot(t)
	l := &lab{t: t, dir: t.TempDir()}
	l.host = l.ns("host")
	return l
}

func (l *lab) ns(name string) string {
	l.t.Helper()
	p := filepath.Join(l.dir, name)
	require.NoError(l.t, netns.Create(p))
	l.t.Cleanup(func() { assert.NoError(l.t, netns.Remove(p)) })
	return p
}

// do runs fn in the lab's host namespace.
func (l *lab) do(fn func() error) error { return netns.Do(l.host, fn) }

func (l *lab) must(fn func() error) {
	l.t.Helper()
	require.NoError(l.t, l.do(fn))
}

const (
	brName = "brtest0"
)

var ctx = context.Background()

func (l *lab) bridge() Bridge {
	b := Bridge{Name: brName, Addrs: []netip.Prefix{mp("10.77.0.1/24"), mp("fd77::1/64")}, MTU: 1500}
	l.must(func() error { return EnsureBridge(ctx, b) })
	l.t.Cleanup(func() { assert.NoError(l.t, l.do(func() error { return DeleteBridge(ctx, brName) })) })
	return b
}

func endpoint(nsPath, hostIf string, n byte) Endpoint {
	return Endpoint{
		NetNS: nsPath, Bridge: brName, IfName: "eth0", HostIf: hostIf,
		Addrs: []netip.Prefix{
			netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, 0, n}), 24),
			netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x77, 15: n}), 64),
		},
		Gateway4: ma("10.77.0.1"), Gateway6: ma("fd77::1"),
		MAC: net.HardwareAddr{0x02, 0x42, 10, 77, 0, n},
	}
}

// run starts busybox inside nsPath and waits for it, bounded in time.
func run(t *testing.T, nsPath string, args ...string) (string, error) {
	t.Helper()
	bb := testutil.RequiresBusybox(t)
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, bb, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The child is forked from the thread inside the namespace.
	if err := netns.Do(nsPath, cmd.Start); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return out.String(), err
}

// tcpRoundTrip listens in srvNS and dials from cliNS, sending one line.
func tcpRoundTrip(t *testing.T, srvNS, cliNS, listen, dial string) {
	t.Helper()
	var ln net.Listener
	require.NoError(t, netns.Do(srvNS, func() error {
		var err error
		ln, err = net.Listen("tcp", listen)
		return err
	}))
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	var conn net.Conn
	require.NoError(t, netns.Do(cliNS, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", dial, 5*time.Second)
		return err
	}))
	_, err := conn.Write([]byte("hello " + dial))
	require.NoError(t, err)
	conn.Close()
	select {
	case s := <-got:
		assert.Equal(t, "hello "+dial, s)
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
	}
}

func routesIn(t *testing.T, nsPath string) []netlink.Route {
	t.Helper()
	h, ns, err := nsHandle(nsPath)
	require.NoError(t, err)
	defer ns.Close()
	defer h.Close()
	rs, err := h.RouteList(nil, netlink.FAMILY_ALL)
	require.NoError(t, err)
	return rs
}

func hasRoute(rs []netlink.Route, dst string, gw string) bool {
	for _, r := range rs {
		d := "default"
		if p, ok := fromIPNet(r.Dst); ok && p.Bits() > 0 {
			d = p.String()
		}
		g := ""
		if r.Gw != nil {
			g = r.Gw.String()
		}
		if d == dst && g == gw {
			return true
		}
	}
	return false
}

func TestBridgeTwoEndpoints(t *testing.T) {
	l := newLab(t)
	b := l.bridge()
	c1, c2 := l.ns("c1"), l.ns("c2")

	// Idempotent, and an existing bridge is brought to the wanted state.
	b.Addrs = append(b.Addrs, mp("10.78.0.1/24"))
	b.MTU = 1400
	l.must(func() error { return EnsureBridge(ctx, b) })
	var br Info
	l.must(func() error { var err error; br, err = Addrs(ctx, "", brName); return err })
	assert.Subset(t, br.Addrs, b.Addrs)
	assert.Equal(t, 1400, br.MTU)
	assert.True(t, br.Up)

	e1, e2 := endpoint(c1, "bvtest1", 2), endpoint(c2, "bvtest2", 3)
	e1.Hairpin = true
	e1.Routes = []Route{{Dst: mp("192.0.2.0/24"), Via: ma("10.77.0.254")}, {Dst: mp("198.51.100.0/24")}, {Dst: mp("2001:db8::/32"), Via: ma("fd77::fe")}}
	l.must(func() error { return Attach(ctx, e1) })
	l.must(func() error { return Attach(ctx, e2) })
	t.Cleanup(func() {
		assert.NoError(t, l.do(func() error { return Detach(ctx, "bvtest1") }))
		assert.NoError(t, l.do(func() error { return Detach(ctx, "bvtest2") }))
	})

	// Inside: addresses, MAC, MTU from the bridge, up.
	info, err := Addrs(ctx, c1, "eth0")
	require.NoError(t, err)
	assert.Subset(t, info.Addrs, e1.Addrs)
	assert.Equal(t, e1.MAC.String(), info.MAC.String())
	assert.Equal(t, 1400, info.MTU)
	assert.True(t, info.Up)

	// Host side: on the bridge, hairpin only where asked.
	l.must(func() error {
		h, err := hostHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		brl, err := h.LinkByName(brName)
		if err != nil {
			return err
		}
		for name, hairpin := range map[string]bool{"bvtest1": true, "bvtest2": false} {
			v, err := h.LinkByName(name)
			if err != nil {
				return err
			}
			assert.Equal(t, brl.Attrs().Index, v.Attrs().MasterIndex, name)
			assert.NotZero(t, v.Attrs().Flags&net.FlagUp, name)
			pi, err := h.LinkGetProtinfo(v)
			if err != nil {
				return err
			}
			assert.Equal(t, hairpin, pi.Hairpin, name)
		}
		return nil
	})

	// Routes: defaults of both families, the extra ones.
	rs := routesIn(t, c1)
	assert.True(t, hasRoute(rs, "default", "10.77.0.1"), "%v", rs)
	assert.True(t, hasRoute(rs, "default", "fd77::1"), "%v", rs)
	assert.True(t, hasRoute(rs, "192.0.2.0/24", "10.77.0.254"), "%v", rs)
	assert.True(t, hasRoute(rs, "198.51.100.0/24", ""), "%v", rs)
	assert.True(t, hasRoute(rs, "2001:db8::/32", "fd77::fe"), "%v", rs)

	// Traffic: ping both ways, the gateway, IPv6, and TCP over both.
	for _, c := range []struct{ ns, dst string }{{c1, "10.77.0.3"}, {c2, "10.77.0.2"}, {c1, "10.77.0.1"}} {
		out, err := run(t, c.ns, "ping", "-c1", "-W2", c.dst)
		assert.NoError(t, err, "ping %s: %s", c.dst, out)
	}
	out, err := run(t, c1, "ping6", "-c1", "-W2", "fd77::3")
	assert.NoError(t, err, "ping6: %s", out)
	tcpRoundTrip(t, c2, c1, "10.77.0.3:8080", "10.77.0.3:8080")
	tcpRoundTrip(t, c1, c2, "[fd77::2]:8081", "[fd77::2]:8081")

	// Reconcile helpers see what was made.
	var veths, ports, none []string
	var prefixes []netip.Prefix
	l.must(func() error {
		var err error
		if veths, err = HostVeths(ctx, "bvtest"); err != nil {
			return err
		}
		if ports, err = BridgeVeths(ctx, "bvtest", []string{brName}); err != nil {
			return err
		}
		if none, err = BridgeVeths(ctx, "bvtest", []string{"nosuchbr"}); err != nil {
			return err
		}
		prefixes, err = HostPrefixes(ctx)
		return err
	})
	assert.Equal(t, []string{"bvtest1", "bvtest2"}, veths)
	assert.Subset(t, veths, ports)
	assert.NotEmpty(t, ports, "the veths on the lab's bridge")
	assert.Empty(t, none)
	assert.Contains(t, prefixes, mp("10.77.0.0/24"))
	assert.Contains(t, prefixes, mp("10.78.0.0/24"))
	assert.Contains(t, prefixes, mp("fd77::/64"))
}

func TestHostPrefixesSkipsDefault(t *testing.T) {
	l := newLab(t)
	l.bridge()
	var prefixes []netip.Prefix
	l.must(func() error {
		h, err := hostHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		br, err := h.LinkByName(brName)
		if err != nil {
			return err
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: br.Attrs().Index, Dst: toIPNet(mp("0.0.0.0/0")), Gw: net.ParseIP("10.77.0.9")}); err != nil {
			return err
		}
		prefixes, err = HostPrefixes(ctx)
		return err
	})
	assert.Contains(t, prefixes, mp("10.77.0.0/24"))
	for _, p := range prefixes {
		assert.NotZero(t, p.Bits(), "default route listed: %v", prefixes)
	}
}

// nothingLeft checks that the lab's host holds no test veth and the
// container namespace only lo.
func (l *lab) nothingLeft(t *testing.T, c string) {
	t.Helper()
	var veths []string
	l.must(func() error { var err error; veths, err = HostVeths(ctx, "bv"); return err })
	assert.Empty(t, veths)
	var names []string
	require.NoError(t, netns.Do(c, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	}))
	assert.Equal(t, []string{"lo"}, names)
}

func TestAttachFailureLeavesNothing(t *testing.T) {
	l := newLab(t)
	c := l.ns("c")

	// No bridge at all.
	e := endpoint(c, "bvfail", 2)
	err := l.do(func() error { return Attach(ctx, e) })
	assert.True(t, errors.Is(err, errdefs.ErrNotFound), "%v", err)
	assert.Contains(t, err.Error(), "bridge brtest0 does not exist")
	l.nothingLeft(t, c)

	// A failure after the pair exists: a route whose next hop is on no
	// connected network.
	l.bridge()
	e.Routes = []Route{{Dst: mp("192.0.2.0/24"), Via: ma("203.0.113.1")}}
	err = l.do(func() error { return Attach(ctx, e) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "add route to 192.0.2.0/24 via 203.0.113.1")
	l.nothingLeft(t, c)

	// A missing namespace.
	e.Routes = nil
	e.NetNS = filepath.Join(l.dir, "missing")
	err = l.do(func() error { return Attach(ctx, e) })
	assert.True(t, errors.Is(err, errdefs.ErrNotFound), "%v", err)

	// A name already taken is someone else's: left alone.
	e.NetNS = c
	l.must(func() error { return Attach(ctx, e) })
	e2 := endpoint(c, "bvfail", 3)
	e2.IfName = "eth1"
	err = l.do(func() error { return Attach(ctx, e2) })
	assert.True(t, errors.Is(err, errdefs.ErrAlreadyExists), "%v", err)
	info, err := Addrs(ctx, c, "eth0")
	require.NoError(t, err, "the existing endpoint survives")
	assert.Contains(t, info.Addrs, e.Addrs[0])
	l.must(func() error { return Detach(ctx, "bvfail") })
	l.nothingLeft(t, c)
}

func TestDetach(t *testing.T) {
	l := newLab(t)
	l.bridge()
	c := l.ns("c")
	e1 := endpoint(c, "bvdet1", 2)
	e2 := endpoint(c, "bvdet2", 3)
	e2.IfName = "eth1"
	e2.Gateway4, e2.Gateway6 = netip.Addr{}, netip.Addr{} // one default route per family
	l.must(func() error { return Attach(ctx, e1) })
	l.must(func() error { return Attach(ctx, e2) })

	// By host name, twice.
	l.must(func() error { return Detach(ctx, "bvdet1") })
	l.must(func() error { return Detach(ctx, "bvdet1") })
	_, err := Addrs(ctx, c, "eth0")
	assert.True(t, errors.Is(err, errdefs.ErrNotFound), "%v", err)

	// By inside name: the host end goes with it.
	require.NoError(t, DetachIn(ctx, c, "eth1"))
	require.NoError(t, DetachIn(ctx, c, "eth1"))
	require.NoError(t, DetachIn(ctx, filepath.Join(l.dir, "gone"), "eth1"))
	l.nothingLeft(t, c)

	// Bridges: deleting twice is fine.
	l.must(func() error { return DeleteBridge(ctx, brName) })
	l.must(func() error { return DeleteBridge(ctx, brName) })
}

func TestEnsureBridgeRefusesOtherLink(t *testing.T) {
	l := newLab(t)
	l.must(func() error {
		h, err := hostHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		la := netlink.NewLinkAttrs()
		la.Name = brName
		return h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "brtestpeer"})
	})
	err := l.do(func() error { return EnsureBridge(ctx, Bridge{Name: brName}) })
	assert.True(t, errors.Is(err, errdefs.ErrAlreadyExists), "%v", err)
	err = l.do(func() error { return DeleteBridge(ctx, brName) })
	assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument), "%v", err)
}

// BenchmarkContainerSetup measures what one container's network costs:
// a namespace, EnsureBridge on the existing bridge, Attach. Teardown is
// outside the timer.
func BenchmarkContainerSetup(b *testing.B) {
	l := newLab(b)
	l.bridge()
	p := filepath.Join(l.dir, "bench")
	e := endpoint(p, "bvbench", 2)
	br := Bridge{Name: brName, Addrs: []netip.Prefix{mp("10.77.0.1/24"), mp("fd77::1/64")}, MTU: 1500}
	err := l.do(func() error {
		for b.Loop() {
			if err := netns.Create(p); err != nil {
				return err
			}
			if err := EnsureBridge(ctx, br); err != nil {
				return err
			}
			if err := Attach(ctx, e); err != nil {
				return err
			}
			b.StopTimer()
			if err := Detach(ctx, e.HostIf); err != nil {
				return err
			}
			if err := netns.Remove(p); err != nil {
				return err
			}
			b.StartTimer()
		}
		return nil
	})
	require.NoError(b, err)
}
