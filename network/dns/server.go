// Package dns is the resolver containers on user-defined networks query:
// it answers the names, short IDs and aliases of the containers on the
// network a query arrives on (and, for a container on several networks, of
// all of them), and forwards every other name to the
// upstream resolvers unchanged.
//
// One resolver serves a whole store. It listens on UDP and TCP port 53 of
// every network's gateway address (in the host's network namespace, on the
// bridge) and tells networks apart by the address a query arrived on. Its
// records come from a Source; the engine keeps them in a file written with
// WriteFile and read through a FileSource.
package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
)

// Defaults of Options.
const (
	DefaultPort           = 53
	DefaultForwardTimeout = 4 * time.Second
	DefaultRescan         = 200 * time.Millisecond
)

// shutdownGrace bounds how long a closing listener waits for the queries
// it is still answering.
const shutdownGrace = time.Second

// Options tune Serve. The zero value serves port 53 and never exits idle.
type Options struct {
	// Port is the port listened on at every gateway (DefaultPort if 0).
	Port int
	// IdleExit makes Serve return once the records have held no network
	// for this long; 0 never.
	IdleExit time.Duration
	// ForwardTimeout bounds one forwarded query over all upstreams
	// (DefaultForwardTimeout if 0); past it the client gets SERVFAIL.
	ForwardTimeout time.Duration
	// Rescan is how often the listeners are matched to the records'
	// gateways (DefaultRescan if 0): a new network is served within it.
	Rescan time.Duration
	// LockPath, when set, makes the resolver the only one of its store: Serve
	// holds an exclusive lock on this file while it runs and returns an
	// errdefs.ErrAlreadyExists error when another resolver holds it. See
	// Running for how the engine starts one without a race with IdleExit;
	// that protocol needs a Source that reads fresh records on every call
	// (a FileSource with interval 0).
	LockPath string
	// OnError, when set, is told about errors no client sees: records
	// that do not load, gateways that cannot be bound, failed forwards.
	OnError func(error)
}

func (o *Options) withDefaults() {
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.ForwardTimeout == 0 {
		o.ForwardTimeout = DefaultForwardTimeout
	}
	if o.Rescan == 0 {
		o.Rescan = DefaultRescan
	}
	if o.OnError == nil {
		o.OnError = func(error) {}
	}
}

// Serve runs the resolver until ctx is cancelled or, with opts.IdleExit,
// until no network has been left for that long; both return nil. Every
// opts.Rescan it binds the gateways new in the records and closes the
// listeners of gateways gone from them. A gateway that cannot be bound is
// reported to opts.OnError and tried again at the next rescan.
func Serve(ctx context.Context, src Source, opts Options) error {
	opts.withDefaults()
	s := &server{src: src, opts: opts, listeners: map[netip.Addr]*listener{}}
	if opts.LockPath != "" {
		lock, ok, err := flock.TryExclusive(opts.LockPath)
		if err != nil {
			return fmt.Errorf("dns resolver: %w", err)
		}
		if !ok {
			return errdefs.AlreadyExists("dns resolver already running (%s is locked)", opts.LockPath)
		}
		s.lock = lock
		defer func() {
			if err := s.lock.Unlock(); err != nil {
				s.opts.OnError(fmt.Errorf("dns resolver: release %s: %w", opts.LockPath, err))
			}
		}()
	}
	defer s.closeAll()
	tick := time.NewTicker(opts.Rescan)
	defer tick.Stop()
	var idleSince time.Time
	for {
		n, ok := s.rescan(ctx)
		switch {
		case !ok || n > 0:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = time.Now()
		case opts.IdleExit > 0 && time.Since(idleSince) >= opts.IdleExit:
			if !s.stillNeeded(ctx) {
				return nil
			}
			idleSince = time.Time{}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Running reports whether a resolver holds the lock at lockPath. The engine
// writes the records first and then calls Running, starting a resolver
// when it reports false; with Serve's exit protocol (stillNeeded) no
// network is left without a resolver whichever order the two interleave.
func Running(lockPath string) (bool, error) {
	lock, ok, err := flock.TryExclusive(lockPath)
	if err != nil {
		return false, fmt.Errorf("dns resolver: %w", err)
	}
	if ok {
		return false, lock.Unlock()
	}
	return true, nil
}

// stillNeeded decides an idle exit. Without a lock the resolver just goes.
// With one it lets the lock go first and only then reads the records once
// more: an engine that wrote a network before that read is seen here (and
// the resolver takes the lock back and stays, unless a new resolver has
// already taken it), and one that wrote it after finds the lock free and
// starts a new resolver.
func (s *server) stillNeeded(ctx context.Context) bool {
	if s.lock == nil {
		return false
	}
	if err := s.lock.Unlock(); err != nil {
		s.opts.OnError(err)
	}
	s.lock = nil
	rec, err := s.src.Records(ctx)
	if err != nil {
		s.opts.OnError(err)
	}
	if rec == nil || len(rec.gateways) == 0 {
		return false
	}
	lock, ok, err := flock.TryExclusive(s.opts.LockPath)
	if err != nil || !ok {
		if err != nil {
			s.opts.OnError(err)
		}
		return false
	}
	s.lock = lock
	return true
}

// server is one running resolver.
type server struct {
	lock      *flock.Lock // held while serving, with Options.LockPath
	src       Source
	opts      Options
	listeners map[netip.Addr]*listener // only Serve's goroutine touches it
	bindErr   map[netip.Addr]string    // last bind error reported per gateway
	rot       atomic.Uint32
}

// rescan matches the listeners to the records; it returns how many
// gateways the records hold and false when they could not be read.
func (s *server) rescan(ctx context.Context) (int, bool) {
	rec, err := s.src.Records(ctx)
	if err != nil {
		s.opts.OnError(err)
	}
	if rec == nil {
		return 0, false
	}
	want := rec.Gateways()
	add, remove := planListeners(s.listeners, want)
	for _, gw := range remove {
		s.listeners[gw].close()
		delete(s.listeners, gw)
	}
	for _, gw := range add {
		l, err := s.listen(ctx, gw)
		if err != nil {
			s.reportBind(gw, err)
			continue
		}
		s.reportBind(gw, nil)
		s.listeners[gw] = l
	}
	return len(want), true
}

// reportBind reports a bind error once per gateway until it changes, so a
// gateway that stays unbindable does not flood OnError every rescan.
func (s *server) reportBind(gw netip.Addr, err error) {
	if s.bindErr == nil {
		s.bindErr = map[netip.Addr]string{}
	}
	if err == nil {
		delete(s.bindErr, gw)
		return
	}
	if s.bindErr[gw] != err.Error() {
		s.bindErr[gw] = err.Error()
		s.opts.OnError(err)
	}
}

// planListeners returns the gateways to bind and those to close.
func planListeners[V any](have map[netip.Addr]V, want []netip.Addr) (add, remove []netip.Addr) {
	wanted := make(map[netip.Addr]bool, len(want))
	for _, gw := range want {
		wanted[gw] = true
		if _, ok := have[gw]; !ok {
			add = append(add, gw)
		}
	}
	for gw := range have {
		if !wanted[gw] {
			remove = append(remove, gw)
		}
	}
	return add, remove
}

func (s *server) closeAll() {
	var wg sync.WaitGroup
	for gw, l := range s.listeners {
		wg.Go(l.close)
		delete(s.listeners, gw)
	}
	wg.Wait()
}

// TCP connection limits, those of common DNS servers: a client gets
// tcpReadTimeout for its first query and tcpIdleTimeout between the next
// ones, at most maxTCPQueries on one connection.
const (
	tcpReadTimeout  = 2 * time.Second
	tcpIdleTimeout  = 8 * time.Second
	tcpWriteTimeout = 2 * time.Second
	maxTCPQueries   = 128
)

// acceptBackoff is the pause after a failed read or accept that is not the
// socket closing (out of file descriptors, say), so the loop does not spin.
const acceptBackoff = 10 * time.Millisecond

// listener is the UDP and TCP servers of one gateway.
//
//	serveUDP ──┬─ local answer: written inline
//	           └─ forwarded: one goroutine per query
//	acceptTCP ─── one goroutine per connection, its queries in turn
//
// Every goroutine is counted in done; close stops the reads, gives the
// queries in flight shutdownGrace to finish and then closes the sockets.
type listener struct {
	gw     netip.Addr
	cancel context.CancelFunc // aborts the queries being forwarded
	udp    *net.UDPConn
	tcp    *net.TCPListener
	done   sync.WaitGroup

	mu      sync.Mutex
	closing bool
	conns   map[*net.TCPConn]struct{}
}

func (l *listener) close() {
	l.cancel()
	aLongTimeAgo := time.Unix(1, 0) // a deadline that ends blocked reads at once
	l.mu.Lock()
	l.closing = true
	// Deadlines in the past wake every blocked read; a socket that
	// refuses one is closed already, which wakes it too.
	for c := range l.conns {
		_ = c.SetReadDeadline(aLongTimeAgo)
	}
	l.mu.Unlock()
	_ = l.udp.SetReadDeadline(aLongTimeAgo)
	l.tcp.Close()
	finished := make(chan struct{})
	go func() {
		l.done.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(shutdownGrace):
	}
	l.udp.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	<-finished
}

func (l *listener) isClosing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closing
}

// track registers a connection so close can end it; false once closing.
func (l *listener) track(c *net.TCPConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *listener) forget(c *net.TCPConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.Close()
}

// readDeadline arms c's read deadline unless the listener is closing,
// which has set one in the past that must not be overridden.
func (l *listener) readDeadline(c *net.TCPConn, d time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	return c.SetReadDeadline(time.Now().Add(d)) == nil
}

// listen binds gw's port over UDP and TCP and starts serving both.
// IP_FREEBIND lets the bind succeed before the bridge's address is
// configured (or while an IPv6 address is still tentative), so records
// written ahead of the bridge do not cost a rescan.
func (s *server) listen(ctx context.Context, gw netip.Addr) (*listener, error) {
	addr := net.JoinHostPort(gw.String(), strconv.Itoa(s.opts.Port))
	lc := net.ListenConfig{Control: freebind}
	udpNet, tcpNet := "udp4", "tcp4"
	if gw.Is6() {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	pc, err := lc.ListenPacket(ctx, udpNet, addr)
	if err != nil {
		return nil, fmt.Errorf("dns listen %s/udp: %w", addr, err)
	}
	tl, err := lc.Listen(ctx, tcpNet, addr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dns listen %s/tcp: %w", addr, err)
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &listener{
		gw:     gw,
		cancel: cancel,
		udp:    pc.(*net.UDPConn),
		tcp:    tl.(*net.TCPListener),
		conns:  map[*net.TCPConn]struct{}{},
	}
	l.done.Go(func() { s.serveUDP(lctx, l) })
	l.done.Go(func() { s.acceptTCP(lctx, l) })
	return l, nil
}

func freebind(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "udp6" || network == "tcp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		}
	})
	return errors.Join(err, serr)
}

// serveUDP answers the datagrams arriving on l. Local answers are written
// from this loop (they take microseconds); a forwarded query gets its own
// goroutine so a slow upstream holds up no one else.
func (s *server) serveUDP(ctx context.Context, l *listener) {
	buf := make([]byte, maxMsgSize)
	for {
		n, from, err := l.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.isClosing() {
				return
			}
			time.Sleep(acceptBackoff)
			continue
		}
		client := from.Addr().Unmap()
		reply, req, ups := s.handle(ctx, l.gw, client, "udp", buf[:n])
		if req == nil {
			if reply != nil {
				s.sendUDP(l, reply, from)
			}
			continue
		}
		req.raw = append([]byte(nil), req.raw...)
		l.done.Go(func() {
			s.sendUDP(l, s.forwardReply(ctx, req, ups, "udp"), from)
		})
	}
}

// sendUDP sends a reply; a failure is the client's loss alone, reported.
func (s *server) sendUDP(l *listener, reply []byte, to netip.AddrPort) {
	if _, err := l.udp.WriteToUDPAddrPort(reply, to); err != nil {
		s.opts.OnError(fmt.Errorf("dns resolver: reply to %s: %w", to, err))
	}
}

func (s *server) acceptTCP(ctx context.Context, l *listener) {
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(acceptBackoff)
			continue
		}
		if !l.track(c) {
			c.Close()
			continue
		}
		l.done.Go(func() { s.serveTCPConn(ctx, l, c) })
	}
}

// serveTCPConn answers the queries of one connection in turn, each framed
// by its two-byte length (RFC 1035 4.2.2).
func (s *server) serveTCPConn(ctx context.Context, l *listener, c *net.TCPConn) {
	defer l.forget(c)
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	timeout := tcpReadTimeout
	var lb [2]byte
	for range maxTCPQueries {
		if !l.readDeadline(c, timeout) {
			return
		}
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			return
		}
		raw := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c, raw); err != nil {
			return
		}
		reply, req, ups := s.handle(ctx, l.gw, client, "tcp", raw)
		if req != nil {
			reply = s.forwardReply(ctx, req, ups, "tcp")
		}
		if reply != nil {
			out := make([]byte, 2+len(reply))
			binary.BigEndian.PutUint16(out, uint16(len(reply)))
			copy(out[2:], reply)
			if err := c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout)); err != nil {
				return
			}
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		timeout = tcpIdleTimeout
	}
}

// handle decides what to do with the message raw, arriving on gw from
// client over proto: either a reply to send at once (nil for none) or,
// with req set, a query to forward to ups.
func (s *server) handle(ctx context.Context, gw, client netip.Addr, proto string, raw []byte) (reply []byte, req *request, ups []netip.AddrPort) {
	req, reply = parseRequest(raw)
	if req == nil {
		return reply, nil, nil
	}
	rec, err := s.src.Records(ctx)
	if err != nil {
		s.opts.OnError(err)
	}
	switch {
	case rec == nil:
		reply = rcodeReply(req, dnsmessage.RCodeServerFailure)
	case !rec.Allowed(gw, client):
		reply = rcodeReply(req, dnsmessage.RCodeRefused)
	default:
		if reply = localAnswer(rec, gw, client, req, s.rot.Add(1)); reply == nil {
			return nil, req, rec.Upstreams(gw, client)
		}
	}
	return fit(req, proto, reply), nil, nil
}

// forwardReply forwards req to ups and returns what the client gets: the
// upstream's answer byte for byte but for the ID, cut down when it is too
// large for the client's UDP size, or SERVFAIL when no upstream answered.
func (s *server) forwardReply(ctx context.Context, req *request, ups []netip.AddrPort, proto string) []byte {
	resp, err := forward(ctx, req.raw, ups, proto, s.opts.ForwardTimeout)
	if err != nil {
		s.opts.OnError(fmt.Errorf("dns %s %s: %w", req.q.Name.String(), typeString(req.q.Type), err))
		return fit(req, proto, rcodeReply(req, dnsmessage.RCodeServerFailure))
	}
	binary.BigEndian.PutUint16(resp, req.hdr.ID)
	// The TCP retry may have fetched more than the client can take over
	// UDP: it gets a truncated answer and comes back over TCP.
	return fit(req, proto, resp)
}

// fit truncates m to what the client takes: its UDP size over UDP, what
// the length prefix can say over TCP.
func fit(req *request, proto string, m []byte) []byte {
	size := maxMsgSize
	if proto == "udp" {
		size = req.size
	}
	out, err := truncate(m, size)
	if err != nil {
		return rcodeReply(req, dnsmessage.RCodeServerFailure)
	}
	return out
}
