package dns

import (
	"encoding/binary"
	"errors"
	"strconv"

	"golang.org/x/net/dns/dnsmessage"
)

// Sizes of RFC 1035 and RFC 6891.
const (
	headerLen  = 12
	minMsgSize = 512   // largest UDP message a client without EDNS takes
	maxMsgSize = 65535 // largest message the TCP framing carries
	ednsSize   = 4096  // the UDP size local answers advertise
)

// Header fields read and written straight on the wire: the flags word is
// bytes 2-3, the section counts follow it.
const (
	flagQR      = 1 << 15
	flagAA      = 1 << 10
	flagTC      = 1 << 9
	flagZ       = 1 << 6
	opcodeShift = 11
	opcodeMask  = 0xf << opcodeShift
	rcodeMask   = 0x0f

	opcodeQuery  = 0
	opcodeNotify = 4

	typeOPT = 41
)

var errMalformed = errors.New("malformed dns message")

// request is one query as the resolver needs it: what it asks, how to
// answer it, and the wire bytes forwarded upstream.
type request struct {
	raw  []byte // as received: forwarded unchanged but for the ID
	hdr  dnsmessage.Header
	q    dnsmessage.Question
	edns bool // the query carries an OPT record
	size int  // the largest UDP answer the client accepts
}

// parseRequest checks a query the way stub resolvers expect a server to:
// nothing comes back for a response or a message shorter than a header
// (answering those could feed a reflection loop), NOTIMP for opcodes other
// than QUERY and NOTIFY, FORMERR for any question count but one, for more
// records than a query carries (one answer, one authority, two
// additionals) and for a message that does not parse. It returns either
// the request or the reply to send (possibly nil).
func parseRequest(raw []byte) (*request, []byte) {
	if len(raw) < headerLen {
		return nil, nil
	}
	flags := binary.BigEndian.Uint16(raw[2:])
	if flags&flagQR != 0 {
		return nil, nil
	}
	if op := (flags & opcodeMask) >> opcodeShift; op != opcodeQuery && op != opcodeNotify {
		return nil, rejectReply(raw, dnsmessage.RCodeNotImplemented)
	}
	qd, an, ns, ar := sectionCounts(raw)
	if qd != 1 || an > 1 || ns > 1 || ar > 2 {
		return nil, rejectReply(raw, dnsmessage.RCodeFormatError)
	}
	req, err := parseQuery(raw)
	if err != nil {
		return nil, rejectReply(raw, dnsmessage.RCodeFormatError)
	}
	return req, nil
}

func parseQuery(raw []byte) (*request, error) {
	req := &request{raw: raw, size: minMsgSize}
	var p dnsmessage.Parser
	var err error
	if req.hdr, err = p.Start(raw); err != nil {
		return nil, err
	}
	if req.q, err = p.Question(); err != nil {
		return nil, err
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil, err
	}
	if err := p.SkipAllAnswers(); err != nil {
		return nil, err
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return nil, err
	}
	for {
		h, err := p.AdditionalHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return req, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Type != dnsmessage.TypeOPT {
			if err := p.SkipAdditional(); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := p.OPTResource(); err != nil {
			return nil, err
		}
		// The last OPT record counts; below 512 bytes the size means 512
		// (RFC 6891 6.2.3).
		req.edns = true
		req.size = max(int(h.Class), minMsgSize)
	}
}

func sectionCounts(msg []byte) (qd, an, ns, ar int) {
	return int(binary.BigEndian.Uint16(msg[4:])), int(binary.BigEndian.Uint16(msg[6:])),
		int(binary.BigEndian.Uint16(msg[8:])), int(binary.BigEndian.Uint16(msg[10:]))
}

// rejectReply answers a query refused before parsing with its own header:
// the ID and the flags it set, QR on, AA and Z off, the rcode, no records;
// FORMERR also resets the opcode to QUERY.
func rejectReply(raw []byte, rcode dnsmessage.RCode) []byte {
	out := make([]byte, headerLen)
	copy(out, raw[:4])
	flags := binary.BigEndian.Uint16(raw[2:])
	flags = (flags | flagQR) &^ (flagAA | flagZ | rcodeMask)
	if rcode == dnsmessage.RCodeFormatError {
		flags &^= opcodeMask
	}
	binary.BigEndian.PutUint16(out[2:], flags|uint16(rcode))
	return out
}

// replyHeader starts the header of an answer to req. RA is always set so
// stub resolvers that check it accept forwarded names too.
func replyHeader(req *request, rcode dnsmessage.RCode) dnsmessage.Header {
	h := dnsmessage.Header{
		ID:                 req.hdr.ID,
		Response:           true,
		OpCode:             req.hdr.OpCode,
		RecursionAvailable: true,
		RCode:              rcode,
	}
	if h.OpCode == opcodeQuery {
		h.RecursionDesired = req.hdr.RecursionDesired
		h.CheckingDisabled = req.hdr.CheckingDisabled
	}
	return h
}

// rcodeReply is an answer carrying only the question and rcode.
func rcodeReply(req *request, rcode dnsmessage.RCode) []byte {
	b := dnsmessage.NewBuilder(make([]byte, 0, headerLen+int(req.q.Name.Length)+6), replyHeader(req, rcode))
	out, err := finish(&b, req.q, nil)
	if err != nil {
		// Unreachable for a question that parsed; the header alone still
		// tells the client.
		b = dnsmessage.NewBuilder(nil, replyHeader(req, rcode))
		out, _ = b.Finish()
	}
	return out
}

// finish writes the question and answers (which may be nil) into b.
func finish(b *dnsmessage.Builder, q dnsmessage.Question, answers func(*dnsmessage.Builder) error) ([]byte, error) {
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if answers != nil {
		if err := b.StartAnswers(); err != nil {
			return nil, err
		}
		if err := answers(b); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// truncate cuts msg down to size bytes for a UDP client: it keeps the
// longest run of whole records from the start that fits, sets TC when a
// record other than the OPT one had to go, and keeps the OPT record
// (moved to the end when it fell in the part cut). The records kept are
// the original bytes, and compression pointers only point backwards, so
// what is kept needs no re-encoding. msg is returned as is when it fits.
func truncate(msg []byte, size int) ([]byte, error) {
	if len(msg) <= size {
		return msg, nil
	}
	if len(msg) < headerLen {
		return nil, errMalformed
	}
	qd, an, ns, ar := sectionCounts(msg)
	off := headerLen
	var err error
	for range qd {
		if off, err = skipWireName(msg, off); err != nil {
			return nil, err
		}
		if off += 4; off > len(msg) {
			return nil, errMalformed
		}
	}
	questionsEnd := off
	total := an + ns + ar
	ends := make([]int, total) // where each record ends
	optIdx := -1
	var opt []byte
	for i := range total {
		start := off
		if off, err = skipWireName(msg, off); err != nil {
			return nil, err
		}
		if off+10 > len(msg) {
			return nil, errMalformed
		}
		typ := binary.BigEndian.Uint16(msg[off:])
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
		if off > len(msg) {
			return nil, errMalformed
		}
		if i >= an+ns && typ == typeOPT && optIdx < 0 {
			optIdx, opt = i, msg[start:off]
		}
		ends[i] = off
	}
	keep, end, moveOPT := 0, questionsEnd, optIdx >= 0
	for k := total; k >= 0; k-- {
		e := questionsEnd
		if k > 0 {
			e = ends[k-1]
		}
		extra := 0
		if optIdx >= k {
			extra = len(opt)
		}
		if e+extra <= size || k == 0 {
			keep, end, moveOPT = k, e, optIdx >= k
			break
		}
	}
	out := make([]byte, 0, end+len(opt))
	out = append(out, msg[:end]...)
	kept := [3]int{min(keep, an), min(max(keep-an, 0), ns), min(max(keep-an-ns, 0), ar)}
	dropped := total - keep
	if moveOPT {
		out = append(out, opt...)
		kept[2]++
		dropped--
	}
	binary.BigEndian.PutUint16(out[6:], uint16(kept[0]))
	binary.BigEndian.PutUint16(out[8:], uint16(kept[1]))
	binary.BigEndian.PutUint16(out[10:], uint16(kept[2]))
	if dropped > 0 {
		out[2] |= flagTC >> 8
	}
	return out, nil
}

// skipWireName returns the offset after the (possibly compressed) name
// starting at off.
func skipWireName(msg []byte, off int) (int, error) {
	for off < len(msg) {
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			off += 1 + c
		case 0xc0:
			if off+2 > len(msg) {
				return 0, errMalformed
			}
			return off + 2, nil
		default:
			return 0, errMalformed
		}
	}
	return 0, errMalformed
}

// typeString names a query type in error messages, in the zone-file
// spelling ("AAAA", or "TYPE65534" for one without a mnemonic).
func typeString(t dnsmessage.Type) string {
	switch t {
	case dnsmessage.TypeA:
		return "A"
	case dnsmessage.TypeNS:
		return "NS"
	case dnsmessage.TypeCNAME:
		return "CNAME"
	case dnsmessage.TypeSOA:
		return "SOA"
	case dnsmessage.TypePTR:
		return "PTR"
	case dnsmessage.TypeMX:
		return "MX"
	case dnsmessage.TypeTXT:
		return "TXT"
	case dnsmessage.TypeAAAA:
		return "AAAA"
	case dnsmessage.TypeSRV:
		return "SRV"
	case dnsmessage.TypeSVCB:
		return "SVCB"
	case dnsmessage.TypeHTTPS:
		return "HTTPS"
	case dnsmessage.TypeALL:
		return "ANY"
	}
	return "TYPE" + strconv.Itoa(int(t))
}
