package dns

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// query is a recursive query for name and qtype with a random ID.
func query(name string, qtype dnsmessage.Type) *dnsmessage.Message {
	return &dnsmessage.Message{
		Header: dnsmessage.Header{ID: uint16(rand.Uint32()), RecursionDesired: true},
		Questions: []dnsmessage.Question{{
			Name: dnsmessage.MustNewName(name), Type: qtype, Class: dnsmessage.ClassINET,
		}},
	}
}

// withEDNS adds an OPT record offering size bytes over UDP.
func withEDNS(m *dnsmessage.Message, size int) *dnsmessage.Message {
	var h dnsmessage.ResourceHeader
	if err := h.SetEDNS0(size, dnsmessage.RCodeSuccess, false); err != nil {
		panic(err)
	}
	m.Additionals = append(m.Additionals, dnsmessage.Resource{Header: h, Body: &dnsmessage.OPTResource{}})
	return m
}

func pack(t testing.TB, m *dnsmessage.Message) []byte {
	t.Helper()
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}

func unpack(t testing.TB, b []byte) *dnsmessage.Message {
	t.Helper()
	var m dnsmessage.Message
	require.NoError(t, m.Unpack(b))
	return &m
}

// local runs localAnswer on q and decodes its reply (nil: forwarded).
func local(t *testing.T, r *Records, gw netip.Addr, q *dnsmessage.Message, rot uint32) *dnsmessage.Message {
	t.Helper()
	req, reply := parseRequest(pack(t, q))
	require.Nil(t, reply)
	require.NotNil(t, req)
	out := localAnswer(r, gw, netip.Addr{}, req, rot)
	if out == nil {
		return nil
	}
	m := unpack(t, out)
	assert.Equal(t, q.ID, m.ID)
	assert.True(t, m.Response)
	assert.True(t, m.RecursionAvailable)
	assert.Equal(t, q.RecursionDesired, m.RecursionDesired)
	assert.Equal(t, q.Questions, m.Questions)
	return m
}

func answerAddrs(t *testing.T, m *dnsmessage.Message) []string {
	t.Helper()
	var out []string
	for _, rr := range m.Answers {
		switch b := rr.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(b.A).String())
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(b.AAAA).String())
		case *dnsmessage.PTRResource:
			out = append(out, b.PTR.String())
		default:
			t.Fatalf("unexpected record %v", rr.GoString())
		}
	}
	return out
}

// reverseName is the in-addr.arpa or ip6.arpa name of a.
func reverseName(a netip.Addr) string {
	var sb strings.Builder
	b := a.AsSlice()
	for i := len(b) - 1; i >= 0; i-- {
		if a.Is4() {
			fmt.Fprintf(&sb, "%d.", b[i])
		} else {
			fmt.Fprintf(&sb, "%x.%x.", b[i]&0xf, b[i]>>4)
		}
	}
	if a.Is4() {
		return sb.String() + "in-addr.arpa."
	}
	return sb.String() + "ip6.arpa."
}

func TestLocalAnswer(t *testing.T) {
	r, err := Compile(testConfig())
	require.NoError(t, err)

	m := local(t, r, gwA, query("Web.", dnsmessage.TypeA), 0)
	require.NotNil(t, m)
	assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode)
	assert.True(t, m.Authoritative)
	assert.Equal(t, []string{"172.18.0.2"}, answerAddrs(t, m))
	assert.Equal(t, uint32(localTTL), m.Answers[0].Header.TTL)
	assert.Equal(t, dnsmessage.ClassINET, m.Answers[0].Header.Class)
	assert.Equal(t, "Web.", m.Answers[0].Header.Name.String(), "the question's spelling is echoed")
	assert.Empty(t, m.Additionals, "no EDNS without the client's")

	m = local(t, r, gwA, query("web.", dnsmessage.TypeAAAA), 0)
	require.NotNil(t, m)
	assert.Equal(t, []string{"fd00:18::2"}, answerAddrs(t, m))

	m = local(t, r, gwA, query("v4only.", dnsmessage.TypeAAAA), 0)
	require.NotNil(t, m, "AAAA of an IPv4-only container is answered, not forwarded")
	assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode)
	assert.Empty(t, m.Answers)

	m = local(t, r, gwA, query("web.", dnsmessage.TypeMX), 0)
	require.NotNil(t, m, "other types of a local name are not forwarded")
	assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode)
	assert.Empty(t, m.Answers)

	assert.Nil(t, local(t, r, gwA, query("db.", dnsmessage.TypeA), 0), "another network's name goes upstream")
	assert.Nil(t, local(t, r, gwA, query("example.com.", dnsmessage.TypeA), 0))
	assert.Nil(t, local(t, r, gwA, query("example.com.", dnsmessage.TypeMX), 0))

	q := query("web.", dnsmessage.TypeA)
	q.Questions[0].Class = dnsmessage.ClassCHAOS
	assert.Nil(t, local(t, r, gwA, q, 0))

	// A query with EDNS gets an answer advertising it.
	m = local(t, r, gwA, withEDNS(query("web.", dnsmessage.TypeA), 1232), 0)
	require.NotNil(t, m)
	assert.Equal(t, []string{"172.18.0.2"}, answerAddrs(t, m))
	require.Len(t, m.Additionals, 1)
	assert.Equal(t, dnsmessage.TypeOPT, m.Additionals[0].Header.Type)
	assert.Equal(t, dnsmessage.Class(ednsSize), m.Additionals[0].Header.Class)
	assert.False(t, m.Additionals[0].Header.DNSSECAllowed())
}

func TestLocalAnswerRotates(t *testing.T) {
	r, err := Compile(testConfig())
	require.NoError(t, err)
	seen := map[string]bool{}
	for rot := range uint32(4) {
		m := local(t, r, gwA, query("lb.", dnsmessage.TypeA), rot)
		require.NotNil(t, m)
		got := answerAddrs(t, m)
		assert.ElementsMatch(t, []string{"172.18.0.2", "172.18.0.3"}, got)
		seen[got[0]] = true
	}
	assert.Len(t, seen, 2, "each address comes first in turn")
}

func TestLocalAnswerPTR(t *testing.T) {
	r, err := Compile(testConfig())
	require.NoError(t, err)
	m := local(t, r, gwA, query("2.0.18.172.in-addr.arpa.", dnsmessage.TypePTR), 0)
	require.NotNil(t, m)
	assert.Equal(t, []string{"web.a."}, answerAddrs(t, m))
	assert.Equal(t, uint32(localTTL), m.Answers[0].Header.TTL)

	m = local(t, r, gwA, query(reverseName(netip.MustParseAddr("fd00:18::2")), dnsmessage.TypePTR), 0)
	require.NotNil(t, m)
	assert.Equal(t, []string{"web.a."}, answerAddrs(t, m))

	assert.Nil(t, local(t, r, gwB, query("2.0.18.172.in-addr.arpa.", dnsmessage.TypePTR), 0), "other network")
	assert.Nil(t, local(t, r, gwA, query("9.0.18.172.in-addr.arpa.", dnsmessage.TypePTR), 0), "unknown address")
}

// A name too long for DNS (the records do not limit names) is SERVFAIL,
// never a malformed message.
func TestLocalAnswerUnencodable(t *testing.T) {
	r, err := Compile(&Config{Networks: []Network{{
		Name:      "a",
		Gateways:  []netip.Addr{gwA},
		Endpoints: []Endpoint{{Name: strings.Repeat("x", 70), Addresses: []netip.Addr{netip.MustParseAddr("172.18.0.9")}}},
	}}})
	require.NoError(t, err)
	m := local(t, r, gwA, query("9.0.18.172.in-addr.arpa.", dnsmessage.TypePTR), 0)
	require.NotNil(t, m)
	assert.Equal(t, dnsmessage.RCodeServerFailure, m.RCode)
	assert.Empty(t, m.Answers)
}

// Many containers behind one alias: over UDP without EDNS the answer is
// cut to 512 bytes with TC set; with EDNS it fits whole.
func TestLocalAnswerTruncated(t *testing.T) {
	cfg := &Config{Networks: []Network{{Name: "a", Gateways: []netip.Addr{gwA}}}}
	for i := range 60 {
		cfg.Networks[0].Endpoints = append(cfg.Networks[0].Endpoints, Endpoint{
			Name: fmt.Sprintf("w%d", i), Aliases: []string{"many"},
			Addresses: []netip.Addr{netip.AddrFrom4([4]byte{172, 18, 1, byte(i + 1)})},
		})
	}
	r, err := Compile(cfg)
	require.NoError(t, err)

	req, _ := parseRequest(pack(t, query("many.", dnsmessage.TypeA)))
	require.NotNil(t, req)
	full := localAnswer(r, gwA, netip.Addr{}, req, 0)
	assert.Greater(t, len(full), minMsgSize)
	out := fit(req, "udp", full)
	assert.LessOrEqual(t, len(out), minMsgSize)
	m := unpack(t, out)
	assert.True(t, m.Truncated)
	assert.NotEmpty(t, m.Answers)
	assert.Less(t, len(m.Answers), 60)
	m = unpack(t, fit(req, "tcp", full))
	assert.False(t, m.Truncated)
	assert.Len(t, m.Answers, 60)

	req, _ = parseRequest(pack(t, withEDNS(query("many.", dnsmessage.TypeA), 4096)))
	require.NotNil(t, req)
	m = unpack(t, fit(req, "udp", localAnswer(r, gwA, netip.Addr{}, req, 0)))
	assert.False(t, m.Truncated)
	assert.Len(t, m.Answers, 60)
	require.Len(t, m.Additionals, 1)
	assert.Equal(t, dnsmessage.TypeOPT, m.Additionals[0].Header.Type)
}

func TestArpaAddr(t *testing.T) {
	assert.Equal(t, "3.2.1.10.in-addr.arpa.", reverseName(netip.MustParseAddr("10.1.2.3")))
	assert.Equal(t, "2.0.0.0."+strings.Repeat("0.", 20)+"8.1.0.0.0.0.d.f.ip6.arpa.", reverseName(netip.MustParseAddr("fd00:18::2")))
	for _, s := range []string{"10.1.2.3", "255.0.0.1", "fd00:18::2", "2001:db8::ff00:42:8329"} {
		a := netip.MustParseAddr(s)
		got, ok := arpaAddr(reverseName(a))
		require.True(t, ok, reverseName(a))
		assert.Equal(t, a, got)
	}
	got, ok := arpaAddr("3.2.1.10.IN-ADDR.ARPA")
	assert.True(t, ok, "any case, trailing dot or not")
	assert.Equal(t, netip.MustParseAddr("10.1.2.3"), got)
	for _, bad := range []string{"1.2.3.in-addr.arpa.", "256.2.3.4.in-addr.arpa.", "01.2.3.4.in-addr.arpa.", "x.ip6.arpa.", "example.com."} {
		_, ok := arpaAddr(bad)
		assert.False(t, ok, bad)
	}
}
