package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
	"github.com/berth-containers/berth/internal/testutil"
)

// Every test gets its own block of loopback addresses, 127.77.<n>.0/24:
// Linux answers on all of 127.0.0.0/8 without adding addresses, so these
// stand in for the gateways of bridges.
var nextBlock atomic.Uint32

func loopbackBlock() func(host byte) netip.Addr {
	n := byte(nextBlock.Add(1))
	return func(host byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 77, n, host}) }
}

// freePort finds a port free on the loopback; the test binds it on its own
// addresses, which nothing else uses.
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := c.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, c.Close())
	return port
}

// testDNS serves DNS for the tests on ap over the protocols listed,
// answering with handle (nil: no answer); it stops in Cleanup.
func testDNS(t *testing.T, ap netip.AddrPort, protos []string, handle func(proto string, req *dnsmessage.Message) *dnsmessage.Message) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(wg.Wait) // runs after the closes below
	respond := func(proto string, raw []byte) []byte {
		var req dnsmessage.Message
		if err := req.Unpack(raw); err != nil {
			return nil
		}
		resp := handle(proto, &req)
		if resp == nil {
			return nil
		}
		out, err := resp.Pack()
		if err != nil {
			panic(err)
		}
		return out
	}
	for _, proto := range protos {
		if proto == "udp" {
			pc, err := net.ListenPacket("udp4", ap.String())
			require.NoError(t, err)
			t.Cleanup(func() { pc.Close() })
			wg.Go(func() {
				buf := make([]byte, maxMsgSize)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					if out := respond("udp", buf[:n]); out != nil {
						_, _ = pc.WriteTo(out, from)
					}
				}
			})
			continue
		}
		l, err := net.Listen("tcp4", ap.String())
		require.NoError(t, err)
		t.Cleanup(func() {
			l.Close()
			mu.Lock()
			defer mu.Unlock()
			for c := range conns {
				c.Close()
			}
		})
		wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns[c] = true
				mu.Unlock()
				wg.Go(func() {
					defer c.Close()
					for {
						raw, err := readFramed(c)
						if err != nil {
							return
						}
						if out := respond("tcp", raw); out != nil {
							if _, err := c.Write(framed(out)); err != nil {
								return
							}
						}
					}
				})
			}
		})
	}
}

func framed(m []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...)
}

func readFramed(c net.Conn) ([]byte, error) {
	var lb [2]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		return nil, err
	}
	m := make([]byte, binary.BigEndian.Uint16(lb[:]))
	_, err := io.ReadFull(c, m)
	return m, err
}

// replyTo starts an upstream's answer to req.
func replyTo(req *dnsmessage.Message) *dnsmessage.Message {
	return &dnsmessage.Message{
		Header:    dnsmessage.Header{ID: req.ID, Response: true, OpCode: req.OpCode, RecursionDesired: req.RecursionDesired, RecursionAvailable: true},
		Questions: req.Questions,
	}
}

// exchangeRaw sends q to server over proto ("udp" or "tcp"), from the
// local address from when it is valid, and returns the reply's bytes.
func exchangeRaw(server netip.AddrPort, from netip.Addr, proto string, q *dnsmessage.Message, timeout time.Duration) ([]byte, error) {
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: timeout}
	if from.IsValid() {
		if proto == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: from.AsSlice()}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
		}
	}
	c, err := d.Dial(proto, server.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if proto == "tcp" {
		if _, err := c.Write(framed(wire)); err != nil {
			return nil, err
		}
		return readFramed(c)
	}
	if _, err := c.Write(wire); err != nil {
		return nil, err
	}
	buf := make([]byte, maxMsgSize)
	n, err := c.Read(buf)
	return buf[:n], err
}

// exchange is exchangeRaw decoding the reply, which must carry q's ID.
func exchange(server netip.AddrPort, from netip.Addr, proto string, q *dnsmessage.Message, timeout time.Duration) (*dnsmessage.Message, error) {
	raw, err := exchangeRaw(server, from, proto, q, timeout)
	if err != nil {
		return nil, err
	}
	var m dnsmessage.Message
	if err := m.Unpack(raw); err != nil {
		return nil, err
	}
	if m.ID != q.ID {
		return nil, fmt.Errorf("reply ID %d, want %d", m.ID, q.ID)
	}
	return &m, nil
}

// fakeUpstream is a resolver standing in for the host's: example.com has
// an address, big.example has TXT records too large for 512 bytes (over
// UDP it answers truncated, with no records), silent.example is never
// answered, everything else is NXDOMAIN. It keeps the last answer it sent.
type fakeUpstream struct {
	addr     netip.AddrPort
	udp, tcp atomic.Int32
	names    sync.Map // names asked
	last     atomic.Pointer[[]byte]
}

func bigTXT() []string {
	return []string{strings.Repeat("a", 200), strings.Repeat("b", 200), strings.Repeat("c", 200)}
}

func startUpstream(t *testing.T, addr netip.Addr, port int) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{addr: netip.AddrPortFrom(addr, uint16(port))}
	testDNS(t, u.addr, []string{"udp", "tcp"}, func(proto string, req *dnsmessage.Message) *dnsmessage.Message {
		if proto == "udp" {
			u.udp.Add(1)
		} else {
			u.tcp.Add(1)
		}
		q := req.Questions[0]
		u.names.Store(q.Name.String(), true)
		m := replyTo(req)
		switch q.Name.String() {
		case "example.com.":
			m.Answers = append(m.Answers, dnsmessage.Resource{
				Header: dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 42},
				Body:   &dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}},
			})
		case "big.example.":
			if proto == "udp" {
				m.Truncated = true
				break
			}
			for _, s := range bigTXT() {
				m.Answers = append(m.Answers, dnsmessage.Resource{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 7},
					Body:   &dnsmessage.TXTResource{TXT: []string{s}},
				})
			}
		case "silent.example.":
			return nil
		default:
			m.RCode = dnsmessage.RCodeNameError
		}
		if out, err := m.Pack(); err == nil {
			u.last.Store(&out)
		}
		return m
	})
	return u
}

// blackhole is a UDP and TCP endpoint that takes queries and never answers.
func blackhole(t *testing.T, addr netip.Addr, port int) netip.AddrPort {
	t.Helper()
	ap := netip.AddrPortFrom(addr, uint16(port))
	pc, err := net.ListenPacket("udp4", ap.String())
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	l, err := net.Listen("tcp4", ap.String())
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return ap
}

// harness is a running Serve over a records file.
type harness struct {
	path string
	port int
	errs chan error
	done chan error
}

func startServe(t *testing.T, cfg *Config, opts Options) *harness {
	t.Helper()
	h := &harness{path: filepath.Join(t.TempDir(), "dns.json"), port: opts.Port, errs: make(chan error, 100), done: make(chan error, 1)}
	if cfg != nil {
		require.NoError(t, WriteFile(h.path, cfg))
	}
	if opts.OnError == nil {
		opts.OnError = func(err error) {
			select {
			case h.errs <- err:
			default:
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- Serve(ctx, NewFileSource(h.path, 0), opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			assert.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return h
}

func (h *harness) write(t *testing.T, cfg *Config) {
	t.Helper()
	require.NoError(t, WriteFile(h.path, cfg))
}

// ask sends one query to gw over proto ("udp", "tcp") and fails the test
// on a transport error.
func (h *harness) ask(t *testing.T, gw netip.Addr, proto, name string, qtype dnsmessage.Type) *dnsmessage.Message {
	t.Helper()
	m, err := h.exchange(gw, netip.Addr{}, proto, query(name, qtype))
	require.NoError(t, err, "%s %s over %s to %s", name, typeString(qtype), proto, gw)
	return m
}

func (h *harness) exchange(gw, from netip.Addr, proto string, q *dnsmessage.Message) (*dnsmessage.Message, error) {
	return exchange(netip.AddrPortFrom(gw, uint16(h.port)), from, proto, q, 3*time.Second)
}

// waitServing polls gw until its listener accepts, for at most bound.
func (h *harness) waitServing(t *testing.T, gw netip.Addr, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < bound {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(gw, uint16(h.port)).String(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s not served within %v", gw, bound)
	return 0
}

// twoNetworks is a store with two networks, a on gw(1) and b on gw(2),
// forwarding to up.
func twoNetworks(gw func(byte) netip.Addr, up netip.AddrPort) *Config {
	return &Config{
		Upstreams: []string{up.String()},
		Networks: []Network{
			{
				Name:     "a",
				Gateways: []netip.Addr{gw(1)},
				Endpoints: []Endpoint{
					{Name: "web", ID: "0123456789abcdef0123456789abcdef", Aliases: []string{"lb"}, Addresses: []netip.Addr{gw(10), netip.MustParseAddr("fd00:77::10")}},
					{Name: "web2", Aliases: []string{"lb"}, Addresses: []netip.Addr{gw(11)}},
				},
			},
			{
				Name:      "b",
				Gateways:  []netip.Addr{gw(2)},
				Endpoints: []Endpoint{{Name: "db", Addresses: []netip.Addr{gw(20)}}},
			},
		},
	}
}

func setup(t *testing.T, opts Options) (*harness, func(byte) netip.Addr, *fakeUpstream) {
	t.Helper()
	gw := loopbackBlock()
	if opts.Port == 0 {
		opts.Port = freePort(t)
	}
	up := startUpstream(t, gw(53), opts.Port)
	h := startServe(t, twoNetworks(gw, up.addr), opts)
	h.waitServing(t, gw(1), 2*time.Second)
	h.waitServing(t, gw(2), 2*time.Second)
	return h, gw, up
}

func TestServeLocalNames(t *testing.T) {
	h, gw, up := setup(t, Options{})
	for _, proto := range []string{"udp", "tcp"} {
		for _, name := range []string{"web.", "WEB.", "0123456789ab.", "web.a.", "0123456789AB.A."} {
			m := h.ask(t, gw(1), proto, name, dnsmessage.TypeA)
			assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode, name)
			assert.Equal(t, []string{gw(10).String()}, answerAddrs(t, m), "%s over %s", name, proto)
		}
		m := h.ask(t, gw(1), proto, "web.", dnsmessage.TypeAAAA)
		assert.Equal(t, []string{"fd00:77::10"}, answerAddrs(t, m))

		m = h.ask(t, gw(1), proto, "web2.", dnsmessage.TypeAAAA)
		assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode, "AAAA of an IPv4-only container is NODATA")
		assert.Empty(t, m.Answers)

		m = h.ask(t, gw(1), proto, reverseName(gw(11)), dnsmessage.TypePTR)
		assert.Equal(t, []string{"web2.a."}, answerAddrs(t, m))
	}

	// Several containers behind one alias: all addresses, order rotated.
	firsts := map[string]bool{}
	for range 4 {
		m := h.ask(t, gw(1), "udp", "lb.", dnsmessage.TypeA)
		got := answerAddrs(t, m)
		assert.ElementsMatch(t, []string{gw(10).String(), gw(11).String()}, got)
		firsts[got[0]] = true
	}
	assert.Len(t, firsts, 2, "rotation")

	// A stub resolver asking the bare name (as a container's libc does with
	// ndots:0): both address families are asked, the missing AAAA must not
	// fail the lookup.
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, netip.AddrPortFrom(gw(1), uint16(h.port)).String())
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := r.LookupHost(ctx, "web2")
	require.NoError(t, err)
	assert.Equal(t, []string{gw(11).String()}, addrs)
	names, err := r.LookupAddr(ctx, gw(10).String())
	require.NoError(t, err)
	assert.Equal(t, []string{"web.a."}, names)

	_, asked := up.names.Load("web.")
	assert.False(t, asked, "local names never reach the upstream")
}

func TestServeIsolation(t *testing.T) {
	h, gw, up := setup(t, Options{})
	m := h.ask(t, gw(1), "udp", "db.", dnsmessage.TypeA)
	assert.Equal(t, dnsmessage.RCodeNameError, m.RCode, "b's container is not visible on a")
	assert.Empty(t, m.Answers)
	m = h.ask(t, gw(2), "udp", "web.", dnsmessage.TypeA)
	assert.Equal(t, dnsmessage.RCodeNameError, m.RCode, "a's container is not visible on b")
	m = h.ask(t, gw(2), "udp", reverseName(gw(10)), dnsmessage.TypePTR)
	assert.Empty(t, m.Answers)
	m = h.ask(t, gw(2), "udp", "db.", dnsmessage.TypeA)
	assert.Equal(t, []string{gw(20).String()}, answerAddrs(t, m))
	_, asked := up.names.Load("db.")
	assert.True(t, asked, "an unknown name is forwarded")

	// With subnets listed, a client outside them is refused.
	cfg := twoNetworks(gw, up.addr)
	cfg.Networks[1].Subnets = []netip.Prefix{netip.PrefixFrom(gw(16), 28)}
	h.write(t, cfg)
	m, err := h.exchange(gw(2), gw(17), "udp", query("db.", dnsmessage.TypeA))
	require.NoError(t, err)
	assert.Equal(t, []string{gw(20).String()}, answerAddrs(t, m), "client inside the subnet")
	m, err = h.exchange(gw(2), gw(10), "udp", query("db.", dnsmessage.TypeA))
	require.NoError(t, err)
	assert.Equal(t, dnsmessage.RCodeRefused, m.RCode, "a's container asking b's gateway")
}

func TestServeForward(t *testing.T) {
	h, gw, up := setup(t, Options{})
	for _, proto := range []string{"udp", "tcp"} {
		udp0, tcp0 := up.udp.Load(), up.tcp.Load()
		q := query("example.com.", dnsmessage.TypeA)
		q.ID = 4242
		raw, err := exchangeRaw(netip.AddrPortFrom(gw(1), uint16(h.port)), netip.Addr{}, proto, q, 3*time.Second)
		require.NoError(t, err)
		sent := up.last.Load()
		require.NotNil(t, sent)
		require.Len(t, raw, len(*sent))
		assert.NotEqual(t, uint16(4242), binary.BigEndian.Uint16(*sent), "the upstream saw an ID of our own")
		assert.Equal(t, (*sent)[2:], raw[2:], "the upstream's answer byte for byte")
		m := unpack(t, raw)
		assert.Equal(t, uint16(4242), m.ID)
		assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode)
		assert.False(t, m.Authoritative, "the upstream's answer, not ours")
		require.Len(t, m.Answers, 1)
		assert.Equal(t, "example.com.", m.Answers[0].Header.Name.String())
		assert.Equal(t, uint32(42), m.Answers[0].Header.TTL)
		assert.Equal(t, []string{"192.0.2.1"}, answerAddrs(t, m))
		if proto == "udp" {
			assert.Equal(t, udp0+1, up.udp.Load(), "forwarded over the query's protocol")
			assert.Equal(t, tcp0, up.tcp.Load())
		} else {
			assert.Equal(t, tcp0+1, up.tcp.Load(), "forwarded over the query's protocol")
			assert.Equal(t, udp0, up.udp.Load())
		}
		m = h.ask(t, gw(2), proto, "nothing.example.", dnsmessage.TypeA)
		assert.Equal(t, dnsmessage.RCodeNameError, m.RCode)
	}

	// Truncated over UDP upstream: fetched again over TCP. A client with a
	// large EDNS buffer gets it all over UDP...
	udp0, tcp0 := up.udp.Load(), up.tcp.Load()
	q := withEDNS(query("big.example.", dnsmessage.TypeTXT), 4096)
	m, err := h.exchange(gw(1), netip.Addr{}, "udp", q)
	require.NoError(t, err)
	assert.False(t, m.Truncated)
	assert.Len(t, m.Answers, 3)
	assert.Equal(t, udp0+1, up.udp.Load())
	assert.Equal(t, tcp0+1, up.tcp.Load(), "TC retried over TCP")

	// ...one without EDNS gets a truncated answer and retries over TCP.
	m, err = h.exchange(gw(1), netip.Addr{}, "udp", query("big.example.", dnsmessage.TypeTXT))
	require.NoError(t, err)
	assert.True(t, m.Truncated)
	assert.Less(t, len(m.Answers), 3)
	m = h.ask(t, gw(1), "tcp", "big.example.", dnsmessage.TypeTXT)
	assert.False(t, m.Truncated)
	assert.Len(t, m.Answers, 3)
}

func TestServeUpstreamFailure(t *testing.T) {
	gw := loopbackBlock()
	port := freePort(t)
	up := startUpstream(t, gw(53), port)
	own := startUpstream(t, gw(54), port)
	dead := netip.AddrPortFrom(gw(60), uint16(port)) // nothing listens: refused at once
	hole := blackhole(t, gw(61), port)               // takes queries, never answers
	const timeout = 600 * time.Millisecond
	cfg := &Config{
		Upstreams: []string{dead.String(), hole.String()},
		Networks: []Network{{
			Gateways: []netip.Addr{gw(1)},
			Endpoints: []Endpoint{
				{Name: "own", Addresses: []netip.Addr{gw(30)}, Upstreams: []string{own.addr.String()}},
			},
		}},
	}
	h := startServe(t, cfg, Options{Port: port, ForwardTimeout: timeout})
	h.waitServing(t, gw(1), 2*time.Second)

	for _, proto := range []string{"udp", "tcp"} {
		start := time.Now()
		m := h.ask(t, gw(1), proto, "example.com.", dnsmessage.TypeA)
		took := time.Since(start)
		assert.Equal(t, dnsmessage.RCodeServerFailure, m.RCode, proto)
		assert.Less(t, took, timeout+400*time.Millisecond, "SERVFAIL within the timeout")
		assert.Greater(t, took, timeout/4, "the silent upstream got its share of the time")
		select {
		case err := <-h.errs:
			assert.ErrorContains(t, err, "every upstream failed")
		case <-time.After(time.Second):
			t.Error("forward failure not reported")
		}

		m = h.ask(t, gw(1), proto, "silent.example.", dnsmessage.TypeA)
		assert.Equal(t, dnsmessage.RCodeServerFailure, m.RCode)
	}

	// A dead first upstream falls through to a live one.
	cfg.Upstreams = []string{dead.String(), up.addr.String()}
	h.write(t, cfg)
	m := h.ask(t, gw(1), "udp", "example.com.", dnsmessage.TypeA)
	assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode)
	assert.Len(t, m.Answers, 1)

	// A container with --dns servers is forwarded to them.
	own0, up0 := own.udp.Load(), up.udp.Load()
	m, err := h.exchange(gw(1), gw(30), "udp", query("example.com.", dnsmessage.TypeA))
	require.NoError(t, err)
	assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode)
	assert.Equal(t, own0+1, own.udp.Load(), "the container's own upstream")
	assert.Equal(t, up0, up.udp.Load())
}

func TestServeRecordsChange(t *testing.T) {
	h, gw, up := setup(t, Options{})
	m := h.ask(t, gw(1), "udp", "late.", dnsmessage.TypeA)
	assert.Equal(t, dnsmessage.RCodeNameError, m.RCode)

	// The bound: a container is resolvable by the first query after
	// WriteFile returns (every query checks the file).
	for i := range 20 {
		cfg := twoNetworks(gw, up.addr)
		addr := netip.AddrFrom4([4]byte{10, 99, 0, byte(i + 1)})
		cfg.Networks[0].Endpoints = append(cfg.Networks[0].Endpoints, Endpoint{Name: "late", Addresses: []netip.Addr{addr}})
		h.write(t, cfg)
		m = h.ask(t, gw(1), "udp", "late.", dnsmessage.TypeA)
		require.Equal(t, []string{addr.String()}, answerAddrs(t, m), "write %d", i)
	}

	h.write(t, twoNetworks(gw, up.addr))
	m = h.ask(t, gw(1), "udp", "late.", dnsmessage.TypeA)
	assert.Equal(t, dnsmessage.RCodeNameError, m.RCode, "a removed container is gone at once")
}

func TestServeNetworksAddedRemoved(t *testing.T) {
	h, gw, up := setup(t, Options{Rescan: 100 * time.Millisecond})
	cfg := twoNetworks(gw, up.addr)
	cfg.Networks = append(cfg.Networks, Network{
		Name: "c", Gateways: []netip.Addr{gw(3)},
		Endpoints: []Endpoint{{Name: "cache", Addresses: []netip.Addr{gw(40)}}},
	})
	h.write(t, cfg)
	took := h.waitServing(t, gw(3), time.Second)
	t.Logf("new network served after %v", took)
	m := h.ask(t, gw(3), "udp", "cache.", dnsmessage.TypeA)
	assert.Equal(t, []string{gw(40).String()}, answerAddrs(t, m))

	cfg.Networks = cfg.Networks[1:] // a goes
	h.write(t, cfg)
	closed := false
	for range 100 {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(gw(1), uint16(h.port)).String(), 200*time.Millisecond)
		if err != nil {
			closed = true
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	assert.True(t, closed, "a removed network's listener is closed")
	m = h.ask(t, gw(2), "udp", "db.", dnsmessage.TypeA)
	assert.Equal(t, []string{gw(20).String()}, answerAddrs(t, m), "the other networks stay served")
}

func TestServeIdleExit(t *testing.T) {
	gw := loopbackBlock()
	port := freePort(t)
	h := startServe(t, &Config{Networks: []Network{{Gateways: []netip.Addr{gw(1)}}}}, Options{Port: port, IdleExit: 300 * time.Millisecond, Rescan: 50 * time.Millisecond})
	h.waitServing(t, gw(1), 2*time.Second)
	select {
	case err := <-h.done:
		t.Fatalf("Serve returned while a network exists: %v", err)
	case <-time.After(600 * time.Millisecond):
	}

	start := time.Now()
	h.write(t, &Config{})
	select {
	case err := <-h.done:
		require.NoError(t, err)
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, 300*time.Millisecond)
		assert.Less(t, took, 2*time.Second)
		h.done <- nil // for the cleanup
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not exit idle")
	}
	_, err := net.DialTimeout("tcp", netip.AddrPortFrom(gw(1), uint16(port)).String(), time.Second)
	assert.Error(t, err, "listeners closed on exit")
}

func TestServeConcurrent(t *testing.T) {
	h, gw, _ := setup(t, Options{})
	type probe struct {
		gw    netip.Addr
		proto string
		name  string
		want  []string
	}
	probes := []probe{
		{gw(1), "udp", "web.", []string{gw(10).String()}},
		{gw(1), "tcp", "web2.", []string{gw(11).String()}},
		{gw(2), "udp", "db.", []string{gw(20).String()}},
		{gw(1), "udp", "example.com.", []string{"192.0.2.1"}},
		{gw(2), "tcp", "example.com.", []string{"192.0.2.1"}},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 16 {
		wg.Go(func() {
			for i := range 40 {
				p := probes[(g+i)%len(probes)]
				m, err := h.exchange(p.gw, netip.Addr{}, p.proto, query(p.name, dnsmessage.TypeA))
				if err != nil {
					errs <- err
					continue
				}
				var got []string
				for _, rr := range m.Answers {
					if a, ok := rr.Body.(*dnsmessage.AResource); ok {
						got = append(got, netip.AddrFrom4(a.A).String())
					}
				}
				if !slices.Equal(got, p.want) {
					errs <- fmt.Errorf("%s on %s over %s: got %v, want %v", p.name, p.gw, p.proto, got, p.want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	assert.NoError(t, errors.Join(all...))
}

// askConn sends q over the connected UDP socket c and decodes the reply.
func askConn(c net.Conn, q *dnsmessage.Message, buf []byte) (*dnsmessage.Message, error) {
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := c.Write(wire); err != nil {
		return nil, err
	}
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil {
		return nil, err
	}
	if m.ID != q.ID {
		return nil, fmt.Errorf("reply ID %d, want %d", m.ID, q.ID)
	}
	return &m, nil
}

// TestServeLatency measures a local name's round trip over UDP.
func TestServeLatency(t *testing.T) {
	h, gw, _ := setup(t, Options{})
	conn, err := net.Dial("udp", netip.AddrPortFrom(gw(1), uint16(h.port)).String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	buf := make([]byte, maxMsgSize)
	const n = 500
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		m, err := askConn(conn, query("web.", dnsmessage.TypeA), buf)
		require.NoError(t, err)
		require.Len(t, m.Answers, 1)
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("local name over UDP, %d queries: median %v, p99 %v, max %v", n, lat[n/2], lat[n*99/100], lat[n-1])
	assert.Less(t, lat[n/2], 5*time.Millisecond)
}

func BenchmarkServeLocalName(b *testing.B) {
	gw := loopbackBlock()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(b, err)
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	path := filepath.Join(b.TempDir(), "dns.json")
	require.NoError(b, WriteFile(path, twoNetworks(gw, netip.MustParseAddrPort("127.0.0.1:9"))))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, NewFileSource(path, 0), Options{Port: port}) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	conn, err := net.Dial("udp", netip.AddrPortFrom(gw(1), uint16(port)).String())
	require.NoError(b, err)
	b.Cleanup(func() { conn.Close() })
	buf := make([]byte, maxMsgSize)
	for range 200 {
		if _, err = askConn(conn, query("web.", dnsmessage.TypeA), buf); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(b, err)
	q := query("web.", dnsmessage.TypeA)
	for b.Loop() {
		if _, err := askConn(conn, q, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestServePort53 runs the resolver the way berth does, on port 53.
func TestServePort53(t *testing.T) {
	testutil.RequiresRoot(t)
	h, gw, _ := setup(t, Options{Port: 53})
	m := h.ask(t, gw(1), "udp", "web.", dnsmessage.TypeA)
	assert.Equal(t, []string{gw(10).String()}, answerAddrs(t, m))
	m = h.ask(t, gw(1), "tcp", "example.com.", dnsmessage.TypeA)
	assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode)
	assert.Len(t, m.Answers, 1)
}

func TestServeLockAndIdleHandover(t *testing.T) {
	gw := loopbackBlock()
	port := freePort(t)
	lockPath := filepath.Join(t.TempDir(), "dns.lock")
	running, err := Running(lockPath)
	require.NoError(t, err)
	assert.False(t, running)

	one := &Config{Networks: []Network{{Gateways: []netip.Addr{gw(1)}}}}
	h := startServe(t, one, Options{Port: port, LockPath: lockPath, IdleExit: 200 * time.Millisecond, Rescan: 50 * time.Millisecond})
	h.waitServing(t, gw(1), 2*time.Second)
	running, err = Running(lockPath)
	require.NoError(t, err)
	assert.True(t, running)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = Serve(ctx, NewFileSource(h.path, 0), Options{Port: port, LockPath: lockPath})
	assert.ErrorIs(t, err, errdefs.ErrAlreadyExists, "a second resolver of the store")

	// Idle, it lets the lock go; with a network back in the records it
	// takes it again and stays.
	h.write(t, &Config{})
	select {
	case err := <-h.done:
		require.NoError(t, err)
		h.done <- nil
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not exit idle")
	}
	running, err = Running(lockPath)
	require.NoError(t, err)
	assert.False(t, running, "lock released on exit")

	s := &server{src: NewFileSource(h.path, 0), opts: Options{LockPath: lockPath}}
	s.opts.withDefaults()
	lock, ok, err := flock.TryExclusive(lockPath)
	require.NoError(t, err)
	require.True(t, ok)
	s.lock = lock
	t.Cleanup(func() { _ = s.lock.Unlock() })
	h.write(t, one)
	assert.True(t, s.stillNeeded(ctx), "a network written before the recheck keeps it")
	running, err = Running(lockPath)
	require.NoError(t, err)
	assert.True(t, running, "and it holds the lock again")

	h.write(t, &Config{})
	assert.False(t, s.stillNeeded(ctx))
	running, err = Running(lockPath)
	require.NoError(t, err)
	assert.False(t, running)
}

// An upstream that truncates over UDP and has no TCP: the client gets the
// truncated answer rather than SERVFAIL.
func TestServeTruncatedWithoutTCP(t *testing.T) {
	gw := loopbackBlock()
	port := freePort(t)
	testDNS(t, netip.AddrPortFrom(gw(53), uint16(port)), []string{"udp"}, func(_ string, req *dnsmessage.Message) *dnsmessage.Message {
		m := replyTo(req)
		m.Truncated = true
		m.Answers = append(m.Answers, dnsmessage.Resource{
			Header: dnsmessage.ResourceHeader{Name: req.Questions[0].Name, Class: dnsmessage.ClassINET, TTL: 5},
			Body:   &dnsmessage.TXTResource{TXT: []string{"part"}},
		})
		return m
	})
	h := startServe(t, &Config{
		Upstreams: []string{netip.AddrPortFrom(gw(53), uint16(port)).String()},
		Networks:  []Network{{Gateways: []netip.Addr{gw(1)}}},
	}, Options{Port: port, ForwardTimeout: time.Second})
	h.waitServing(t, gw(1), 2*time.Second)
	m := h.ask(t, gw(1), "udp", "partial.example.", dnsmessage.TypeTXT)
	assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode)
	assert.True(t, m.Truncated)
	require.Len(t, m.Answers, 1)
	require.IsType(t, &dnsmessage.TXTResource{}, m.Answers[0].Body)
	assert.Equal(t, []string{"part"}, m.Answers[0].Body.(*dnsmessage.TXTResource).TXT)
}

// Messages that are not plain queries get the answers common servers give:
// FORMERR, NOTIMP, or nothing at all for a response.
func TestServeMalformed(t *testing.T) {
	h, gw, up := setup(t, Options{})
	server := netip.AddrPortFrom(gw(1), uint16(h.port))
	for _, proto := range []string{"udp", "tcp"} {
		two := query("web.", dnsmessage.TypeA)
		two.Questions = append(two.Questions, two.Questions[0])
		m, err := exchange(server, netip.Addr{}, proto, two, 3*time.Second)
		require.NoError(t, err, proto)
		assert.Equal(t, dnsmessage.RCodeFormatError, m.RCode, proto)
		assert.Empty(t, m.Answers)

		update := query("web.", dnsmessage.TypeA)
		update.OpCode = 5
		m, err = exchange(server, netip.Addr{}, proto, update, 3*time.Second)
		require.NoError(t, err, proto)
		assert.Equal(t, dnsmessage.RCodeNotImplemented, m.RCode, proto)
		assert.Equal(t, dnsmessage.OpCode(5), m.OpCode)
	}

	resp := query("web.", dnsmessage.TypeA)
	resp.Response = true
	_, err := exchangeRaw(server, netip.Addr{}, "udp", resp, 300*time.Millisecond)
	var nerr net.Error
	require.ErrorAs(t, err, &nerr, "a response is not answered")
	assert.True(t, nerr.Timeout())

	m := h.ask(t, gw(1), "udp", "web.", dnsmessage.TypeA)
	assert.Equal(t, []string{gw(10).String()}, answerAddrs(t, m), "still serving")
	_, asked := up.names.Load("web.")
	assert.False(t, asked)
}

// One TCP connection carries several queries, local and forwarded.
func TestServeTCPConnReused(t *testing.T) {
	h, gw, _ := setup(t, Options{})
	c, err := net.DialTimeout("tcp", netip.AddrPortFrom(gw(1), uint16(h.port)).String(), 3*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	for i := range 6 {
		name, want := "web.", gw(10).String()
		if i%2 == 1 {
			name, want = "example.com.", "192.0.2.1"
		}
		q := query(name, dnsmessage.TypeA)
		_, err := c.Write(framed(pack(t, q)))
		require.NoError(t, err)
		raw, err := readFramed(c)
		require.NoError(t, err, "query %d", i)
		m := unpack(t, raw)
		assert.Equal(t, q.ID, m.ID)
		assert.Equal(t, []string{want}, answerAddrs(t, m), "query %d", i)
	}
}

// Stopping the resolver while a query waits on a silent upstream does not
// wait for the forward timeout: the query is answered SERVFAIL at once.
func TestServeStopWhileForwarding(t *testing.T) {
	gw := loopbackBlock()
	port := freePort(t)
	hole := blackhole(t, gw(61), port)
	path := filepath.Join(t.TempDir(), "dns.json")
	require.NoError(t, WriteFile(path, &Config{Upstreams: []string{hole.String()}, Networks: []Network{{Gateways: []netip.Addr{gw(1)}}}}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, NewFileSource(path, 0), Options{Port: port, ForwardTimeout: time.Minute}) }()
	h := &harness{port: port}
	h.waitServing(t, gw(1), 2*time.Second)

	type result struct {
		m   *dnsmessage.Message
		err error
	}
	answered := make(chan result, 1)
	go func() {
		m, err := h.exchange(gw(1), netip.Addr{}, "udp", query("example.com.", dnsmessage.TypeA))
		answered <- result{m, err}
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	assert.Less(t, time.Since(start), shutdownGrace, "no wait for the forward")
	r := <-answered
	require.NoError(t, r.err)
	assert.Equal(t, dnsmessage.RCodeServerFailure, r.m.RCode)
}
