package firewall

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// newNetNS creates a network namespace bound to a file in a temporary
// directory, removed (unmounted) in Cleanup.
func newNetNS(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		merr := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- merr
	}()
	require.NoError(t, <-errc)
	t.Cleanup(func() {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount netns %s: %v", path, err)
		}
	})
	return path
}

// inNS runs fn on a thread inside the namespace. Sockets fn creates stay
// in that namespace when used from elsewhere.
func inNS(t *testing.T, path string, fn func() error) error {
	t.Helper()
	ns, err := openNetNS(path)
	require.NoError(t, err)
	defer ns.close()
	return ns.do(fn)
}

// nsHandle opens a netlink handle for a namespace.
func nsHandle(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	require.NoError(t, err)
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	t.Cleanup(func() { h.Close(); ns.Close() })
	return h
}

// nft lists with the nft program inside a namespace.
func nft(t *testing.T, path string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + path, "nft"}, args...)...).CombinedOutput()
	require.NoError(t, err, "nft %s: %s", strings.Join(args, " "), out)
	return string(out)
}

func writeSysctl(t *testing.T, ns, key, value string) {
	t.Helper()
	require.NoError(t, inNS(t, ns, func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	}))
}

func readSysctl(t *testing.T, ns, key string) string {
	t.Helper()
	var v []byte
	require.NoError(t, inNS(t, ns, func() error {
		var err error
		v, err = os.ReadFile(filepath.Join("/proc/sys", key))
		return err
	}))
	return strings.TrimSpace(string(v))
}

func linkUp(t *testing.T, h *netlink.Handle, name string, addrs ...string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	require.NoError(t, err)
	for _, a := range addrs {
		ad, err := netlink.ParseAddr(a)
		require.NoError(t, err)
		require.NoError(t, h.AddrAdd(l, ad))
	}
	require.NoError(t, h.LinkSetUp(l))
	return l
}

// addBridge makes a bridge with a gateway address in the host namespace.
func addBridge(t *testing.T, host *netlink.Handle, name, gw string) *netlink.Bridge {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	require.NoError(t, host.LinkAdd(br))
	linkUp(t, host, name, gw)
	l, err := host.LinkByName(name)
	require.NoError(t, err)
	return l.(*netlink.Bridge)
}

// addContainer makes a namespace attached to a bridge (or, with bridge
// nil, to a plain veth end in the host namespace carrying hostAddr), with
// ip on eth0 and a default route through gw.
func addContainer(t *testing.T, host *netlink.Handle, hostVeth string, bridge *netlink.Bridge, hostAddr, ip, gw string) string {
	t.Helper()
	ns := newNetNS(t)
	fd, err := unix.Open(ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostVeth}, PeerName: "eth0", PeerNamespace: netlink.NsFd(fd)}
	if bridge != nil {
		veth.MasterIndex = bridge.Index
	}
	require.NoError(t, host.LinkAdd(veth))
	if hostAddr != "" {
		linkUp(t, host, hostVeth, hostAddr)
	} else {
		linkUp(t, host, hostVeth)
	}
	c := nsHandle(t, ns)
	linkUp(t, c, "lo")
	linkUp(t, c, "eth0", ip)
	if gw != "" {
		require.NoError(t, c.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}))
	}
	return ns
}

// server listens on TCP in a namespace and answers each connection with
// the address it came from, so tests see NAT at work.
func server(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	require.NoError(t, inNS(t, ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			peer := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			_, _ = io.WriteString(c, peer.String())
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
}

// dial connects from a namespace and returns the peer address the server
// saw, or an error (a dropped SYN times out after timeout).
func dial(t *testing.T, ns, addr string, timeout time.Duration) (string, error) {
	t.Helper()
	var seen string
	err := inNS(t, ns, func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c)
		seen = string(bytes.TrimSpace(b))
		return err
	})
	return seen, err
}

const (
	passTimeout = 2 * time.Second
	dropTimeout = 400 * time.Millisecond
)

// reaches asserts that a connection from ns to addr works and the server
// saw source want (empty: any).
func reaches(t *testing.T, ns, addr, want string) {
	t.Helper()
	seen, err := dial(t, ns, addr, passTimeout)
	if err != nil {
		t.Errorf("connect to %s: %v (want it to pass)", addr, err)
		return
	}
	if want != "" && seen != want {
		t.Errorf("connect to %s: server saw source %s, want %s", addr, seen, want)
	}
}

// blocked asserts that a connection from ns to addr fails.
func blocked(t *testing.T, ns, addr string) {
	t.Helper()
	if seen, err := dial(t, ns, addr, dropTimeout); err == nil {
		t.Errorf("connect to %s passed (server saw %s), want it blocked", addr, seen)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func routeVia(dst, gw string) *netlink.Route {
	_, n, err := net.ParseCIDR(dst)
	if err != nil {
		panic(err)
	}
	return &netlink.Route{Dst: n, Gw: net.ParseIP(gw)}
}
