package dns

import (
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// localTTL is the TTL of answers from the records, Docker's value.
const localTTL = 600

// localAnswer builds the reply to req from the records of the network
// listening on gateway, or returns nil when the name is not one of the
// network's and the query must go upstream. rot rotates the order of
// several addresses so clients taking the first one spread over them.
func localAnswer(rec *Records, gateway, client netip.Addr, req *request, rot uint32) []byte {
	q := req.q
	if q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY {
		return nil
	}
	switch q.Type {
	case dnsmessage.TypePTR:
		return ptrAnswer(rec, gateway, req)
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		set, ok := rec.lookupFrom(gateway, client, q.Name.String())
		if !ok {
			return nil
		}
		addrs := set.v4
		if q.Type == dnsmessage.TypeAAAA {
			addrs = set.v6
		}
		return reply(req, func(b *dnsmessage.Builder) error {
			n := len(addrs)
			for i := range n {
				if err := addrRR(b, q, addrs[(i+int(rot%uint32(n)))%n]); err != nil {
					return err
				}
			}
			return nil
		})
	default:
		// A container name answers no other type: NODATA, so the name is
		// not leaked to the upstream resolvers.
		if _, ok := rec.lookupFrom(gateway, client, q.Name.String()); ok {
			return reply(req, nil)
		}
		return nil
	}
}

func ptrAnswer(rec *Records, gateway netip.Addr, req *request) []byte {
	addr, ok := arpaAddr(req.q.Name.String())
	if !ok {
		return nil
	}
	name, ok := rec.Reverse(gateway, addr)
	if !ok {
		return nil
	}
	return reply(req, func(b *dnsmessage.Builder) error {
		ptr, err := dnsmessage.NewName(name)
		if err != nil {
			return err
		}
		return b.PTRResource(rrHeader(req.q), dnsmessage.PTRResource{PTR: ptr})
	})
}

// reply builds an authoritative answer with the records answers adds,
// advertising EDNS when the query used it. A reply that cannot be encoded
// (a container name too long for DNS) is SERVFAIL.
func reply(req *request, answers func(*dnsmessage.Builder) error) []byte {
	h := replyHeader(req, dnsmessage.RCodeSuccess)
	h.Authoritative = true
	b := dnsmessage.NewBuilder(make([]byte, 0, minMsgSize), h)
	b.EnableCompression()
	out, err := finish(&b, req.q, func(b *dnsmessage.Builder) error {
		if answers != nil {
			if err := answers(b); err != nil {
				return err
			}
		}
		if !req.edns {
			return nil
		}
		if err := b.StartAdditionals(); err != nil {
			return err
		}
		var opt dnsmessage.ResourceHeader
		if err := opt.SetEDNS0(ednsSize, dnsmessage.RCodeSuccess, false); err != nil {
			return err
		}
		return b.OPTResource(opt, dnsmessage.OPTResource{})
	})
	if err != nil {
		return rcodeReply(req, dnsmessage.RCodeServerFailure)
	}
	return out
}

// rrHeader is the header of a record answering q, echoing the question's
// spelling of the name.
func rrHeader(q dnsmessage.Question) dnsmessage.ResourceHeader {
	return dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassINET, TTL: localTTL}
}

func addrRR(b *dnsmessage.Builder, q dnsmessage.Question, a netip.Addr) error {
	if a.Is4() {
		return b.AResource(rrHeader(q), dnsmessage.AResource{A: a.As4()})
	}
	return b.AAAAResource(rrHeader(q), dnsmessage.AAAAResource{AAAA: a.As16()})
}

// arpaAddr turns a reverse name (in-addr.arpa or ip6.arpa) back into the
// address it names.
func arpaAddr(name string) (netip.Addr, bool) {
	name = canonical(name)
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			nib := 31 - i
			b[nib/2] |= byte(v) << (4 * (1 - nib%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
