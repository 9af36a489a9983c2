package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// maxStaleReads bounds how many stray datagrams (late answers to earlier
// queries, spoofing attempts) one UDP exchange skips before giving up.
const maxStaleReads = 8

var bufPool = sync.Pool{New: func() any { b := make([]byte, maxMsgSize); return &b }}

// forward sends query (the client's, as it came) to the upstreams in
// order over proto ("udp" or "tcp") and returns the first usable response
// as it came off the wire, with the ID still the one forward chose (a
// random one, so an off-path attacker cannot guess it from the client's).
// A UDP response with TC set is fetched again over TCP from the same
// upstream (the truncated one is kept if that fails). SERVFAIL and REFUSED
// move on to the next upstream (the last such answer is returned if none
// does better). The whole exchange is bounded by timeout, shared out
// between the upstreams not yet tried so a dead first one leaves time for
// the others.
func forward(ctx context.Context, query []byte, ups []netip.AddrPort, proto string, timeout time.Duration) ([]byte, error) {
	if len(ups) == 0 {
		return nil, errors.New("forward: no upstream resolvers")
	}
	if len(query) < headerLen {
		return nil, fmt.Errorf("forward: %w", errMalformed)
	}
	id := uint16(rand.Uint32())
	wire := append([]byte(nil), query...)
	binary.BigEndian.PutUint16(wire, id)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last []byte
	var errs []error
	for i, up := range ups {
		deadline, _ := ctx.Deadline()
		share := time.Until(deadline) / time.Duration(len(ups)-i)
		resp, err := exchangeOne(ctx, up, proto, wire, id, share)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch dnsmessage.RCode(resp[3] & rcodeMask) {
		case dnsmessage.RCodeServerFailure, dnsmessage.RCodeRefused:
			last = resp
			continue
		}
		return resp, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, fmt.Errorf("forward: every upstream failed: %w", errors.Join(errs...))
}

// exchangeOne asks one upstream, retrying over TCP when the UDP answer is
// truncated.
func exchangeOne(ctx context.Context, up netip.AddrPort, proto string, wire []byte, id uint16, d time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if proto != "udp" {
		return exchangeTCP(ctx, up, wire, id)
	}
	resp, err := exchangeUDP(ctx, up, wire, id)
	if err != nil || resp[2]&(flagTC>>8) == 0 {
		return resp, err
	}
	// An upstream that cannot answer over TCP still gave a truncated
	// answer, which tells the client as much as we know.
	if full, err := exchangeTCP(ctx, up, wire, id); err == nil {
		return full, nil
	}
	return resp, nil
}

// dialUpstream connects to up, with ctx's deadline on the connection and
// ctx's cancellation unblocking it; stop closes it.
func dialUpstream(ctx context.Context, proto string, up netip.AddrPort) (net.Conn, func(), error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, proto, up.String())
	if err != nil {
		return nil, nil, fmt.Errorf("upstream %s: %w", up, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("upstream %s: set deadline: %w", up, err)
		}
	}
	unblock := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	return c, func() { unblock(); c.Close() }, nil
}

func exchangeUDP(ctx context.Context, up netip.AddrPort, wire []byte, id uint16) ([]byte, error) {
	c, stop, err := dialUpstream(ctx, "udp", up)
	if err != nil {
		return nil, err
	}
	defer stop()
	if _, err := c.Write(wire); err != nil {
		return nil, fmt.Errorf("upstream %s: %w", up, err)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for range maxStaleReads {
		n, err := c.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", up, err)
		}
		if n >= 12 && binary.BigEndian.Uint16(buf) == id && buf[2]&(flagQR>>8) != 0 {
			return append([]byte(nil), buf[:n]...), nil
		}
	}
	return nil, fmt.Errorf("upstream %s: no matching answer", up)
}

func exchangeTCP(ctx context.Context, up netip.AddrPort, wire []byte, id uint16) ([]byte, error) {
	c, stop, err := dialUpstream(ctx, "tcp", up)
	if err != nil {
		return nil, err
	}
	defer stop()
	out := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	copy(out[2:], wire)
	if _, err := c.Write(out); err != nil {
		return nil, fmt.Errorf("upstream %s over tcp: %w", up, err)
	}
	var lb [2]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		return nil, fmt.Errorf("upstream %s over tcp: %w", up, err)
	}
	resp := make([]byte, binary.BigEndian.Uint16(lb[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		return nil, fmt.Errorf("upstream %s over tcp: %w", up, err)
	}
	if len(resp) < 12 || binary.BigEndian.Uint16(resp) != id {
		return nil, fmt.Errorf("upstream %s over tcp: answer does not match the query", up)
	}
	return resp, nil
}
