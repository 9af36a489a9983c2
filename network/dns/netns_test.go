package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/testutil"
)

// newNS creates an anonymous network namespace and returns a handle to
// it; the namespace goes away once the handle is closed (in Cleanup) and
// no socket or process is left in it.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare: %w", err)}
			return
		}
		ns, err := netns.Get()
		ch <- result{ns, err}
	}()
	r := <-ch
	require.NoError(t, r.err)
	t.Cleanup(func() { r.ns.Close() })
	return r.ns
}

// inNS runs fn on a thread inside ns; sockets fn creates stay there.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func nsHandle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	t.Cleanup(h.Close)
	return h
}

func linkUp(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	require.NoError(t, err)
	require.NoError(t, h.LinkSetUp(l))
	return l
}

func addAddr(t *testing.T, h *netlink.Handle, l netlink.Link, p string) {
	t.Helper()
	a, err := netlink.ParseAddr(p)
	require.NoError(t, err)
	require.NoError(t, h.AddrAdd(l, a))
}

// attach makes a bridge in the host namespace and a container namespace
// joined to it by a veth pair, with address cidr inside and a default
// route through the bridge's address gw.
func attach(t *testing.T, host *netlink.Handle, hostNS netns.NsHandle, bridge, veth string, gw, cidr string) netns.NsHandle {
	t.Helper()
	c := newNS(t)
	require.NoError(t, host.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge}}))
	br := linkUp(t, host, bridge)
	require.NoError(t, host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: veth, MasterIndex: br.Attrs().Index}, PeerName: "eth0", PeerNamespace: netlink.NsFd(c)}))
	linkUp(t, host, veth)
	ch := nsHandle(t, c)
	linkUp(t, ch, "lo")
	eth := linkUp(t, ch, "eth0")
	addAddr(t, ch, eth, cidr)
	require.NoError(t, ch.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw), LinkIndex: eth.Attrs().Index}))
	return c
}

// TestServeBridges runs the resolver the way berth does: in the host's
// namespace (here one the test made) on port 53 of two bridges' gateway
// addresses, queried from containers on veth pairs. The records name the
// gateways before the bridges have their addresses, as when the engine
// writes them ahead of the bridge.
func TestServeBridges(t *testing.T) {
	testutil.RequiresRoot(t)
	hostNS := newNS(t)
	host := nsHandle(t, hostNS)
	linkUp(t, host, "lo")
	c1 := attach(t, host, hostNS, "br-dns-a", "veth-dns-a", "10.77.1.1", "10.77.1.2/24")
	c2 := attach(t, host, hostNS, "br-dns-b", "veth-dns-b", "10.77.2.1", "10.77.2.2/24")

	// The upstream runs on the real host's loopback: forwarded queries
	// leave from the resolver's other threads, which are in the host's
	// namespace, while its listeners live in hostNS.
	lo := loopbackBlock()
	up := startUpstream(t, lo(53), freePort(t))

	gwA, gwB := netip.MustParseAddr("10.77.1.1"), netip.MustParseAddr("10.77.2.1")
	cfg := &Config{
		Upstreams: []string{up.addr.String()},
		Networks: []Network{
			{Name: "a", Gateways: []netip.Addr{gwA}, Subnets: []netip.Prefix{netip.MustParsePrefix("10.77.1.0/24")},
				Endpoints: []Endpoint{{Name: "web", ID: "fedcba9876543210fedcba", Addresses: []netip.Addr{netip.MustParseAddr("10.77.1.2")}}}},
			{Name: "b", Gateways: []netip.Addr{gwB}, Subnets: []netip.Prefix{netip.MustParsePrefix("10.77.2.0/24")},
				Endpoints: []Endpoint{{Name: "db", Aliases: []string{"postgres"}, Addresses: []netip.Addr{netip.MustParseAddr("10.77.2.2")}}}},
		},
	}
	path := filepath.Join(t.TempDir(), "dns.json")
	require.NoError(t, WriteFile(path, cfg))
	errs := make(chan error, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- inNS(hostNS, func() error {
			return Serve(ctx, NewFileSource(path, 0), Options{OnError: func(err error) {
				select {
				case errs <- err:
				default:
				}
			}})
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})

	// Give the listeners a rescan to bind, then configure the bridges.
	time.Sleep(2 * DefaultRescan)
	select {
	case err := <-errs:
		t.Fatalf("bind before the bridge had its address: %v", err)
	default:
	}
	addAddr(t, host, linkUp(t, host, "br-dns-a"), "10.77.1.1/24")
	addAddr(t, host, linkUp(t, host, "br-dns-b"), "10.77.2.1/24")

	ask := func(ns netns.NsHandle, gw netip.Addr, proto, name string, qtype dnsmessage.Type) *dnsmessage.Message {
		t.Helper()
		var m *dnsmessage.Message
		err := inNS(ns, func() error {
			var err error
			// The bridge's ports take a moment to forward after they come up.
			for range 50 {
				if m, err = exchange(netip.AddrPortFrom(gw, 53), netip.Addr{}, proto, query(name, qtype), 300*time.Millisecond); err == nil {
					return nil
				}
				time.Sleep(20 * time.Millisecond)
			}
			return err
		})
		require.NoError(t, err, "%s on %s over %s", name, gw, proto)
		return m
	}

	for _, proto := range []string{"udp", "tcp"} {
		m := ask(c1, gwA, proto, "web.", dnsmessage.TypeA)
		assert.Equal(t, []string{"10.77.1.2"}, answerAddrs(t, m))
		m = ask(c1, gwA, proto, "fedcba987654.", dnsmessage.TypeA)
		assert.Equal(t, []string{"10.77.1.2"}, answerAddrs(t, m))
		m = ask(c1, gwA, proto, "db.", dnsmessage.TypeA)
		assert.Equal(t, dnsmessage.RCodeNameError, m.RCode, "b's container from a")
		m = ask(c1, gwA, proto, "example.com.", dnsmessage.TypeA)
		assert.Equal(t, []string{"192.0.2.1"}, answerAddrs(t, m), "forwarded from the host's namespace")

		m = ask(c2, gwB, proto, "POSTGRES.", dnsmessage.TypeA)
		assert.Equal(t, []string{"10.77.2.2"}, answerAddrs(t, m))
		m = ask(c2, gwB, proto, "2.2.77.10.in-addr.arpa.", dnsmessage.TypePTR)
		assert.Equal(t, []string{"db.b."}, answerAddrs(t, m))
		m = ask(c2, gwB, proto, "web.", dnsmessage.TypeA)
		assert.Equal(t, dnsmessage.RCodeNameError, m.RCode, "a's container from b")

		// a's container sending its query to b's gateway (routed through
		// its own) is refused.
		m = ask(c1, gwB, proto, "db.", dnsmessage.TypeA)
		assert.Equal(t, dnsmessage.RCodeRefused, m.RCode)
	}
}
