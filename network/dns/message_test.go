package dns

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

func TestParseRequest(t *testing.T) {
	q := withEDNS(query("Web.", dnsmessage.TypeAAAA), 1232)
	q.CheckingDisabled = true
	raw := pack(t, q)
	req, reply := parseRequest(raw)
	require.NotNil(t, req)
	assert.Nil(t, reply)
	assert.Equal(t, q.ID, req.hdr.ID)
	assert.Equal(t, "Web.", req.q.Name.String())
	assert.Equal(t, dnsmessage.TypeAAAA, req.q.Type)
	assert.True(t, req.edns)
	assert.Equal(t, 1232, req.size)
	assert.Equal(t, raw, req.raw)

	req, _ = parseRequest(pack(t, query("web.", dnsmessage.TypeA)))
	require.NotNil(t, req)
	assert.False(t, req.edns)
	assert.Equal(t, minMsgSize, req.size, "512 bytes without EDNS")
	req, _ = parseRequest(pack(t, withEDNS(query("web.", dnsmessage.TypeA), 100)))
	require.NotNil(t, req)
	assert.Equal(t, minMsgSize, req.size, "an EDNS size below 512 means 512")
}

func TestParseRequestRejects(t *testing.T) {
	// No answer at all: too short for a header, or a response.
	req, reply := parseRequest([]byte{1, 2, 3})
	assert.Nil(t, req)
	assert.Nil(t, reply)
	resp := query("web.", dnsmessage.TypeA)
	resp.Response = true
	req, reply = parseRequest(pack(t, resp))
	assert.Nil(t, req)
	assert.Nil(t, reply)

	check := func(name string, raw []byte, rcode dnsmessage.RCode, opcode dnsmessage.OpCode) {
		t.Helper()
		req, reply := parseRequest(raw)
		assert.Nil(t, req, name)
		require.NotNil(t, reply, name)
		m := unpack(t, reply)
		assert.Equal(t, binary.BigEndian.Uint16(raw), m.ID, name)
		assert.True(t, m.Response, name)
		assert.Equal(t, rcode, m.RCode, name)
		assert.Equal(t, opcode, m.OpCode, name)
		assert.False(t, m.Authoritative, name)
		assert.True(t, m.RecursionDesired, name+": the query's flags are kept")
		assert.Empty(t, m.Questions, name)
		assert.Empty(t, m.Answers, name)
	}

	update := query("web.", dnsmessage.TypeA)
	update.OpCode = 5
	check("update", pack(t, update), dnsmessage.RCodeNotImplemented, 5)

	two := query("web.", dnsmessage.TypeA)
	two.Questions = append(two.Questions, two.Questions[0])
	check("two questions", pack(t, two), dnsmessage.RCodeFormatError, 0)

	none := query("web.", dnsmessage.TypeA)
	none.Questions = nil
	check("no question", pack(t, none), dnsmessage.RCodeFormatError, 0)

	three := query("web.", dnsmessage.TypeA)
	for range 3 {
		withEDNS(three, 1232)
	}
	check("three additionals", pack(t, three), dnsmessage.RCodeFormatError, 0)

	cut := pack(t, query("web.", dnsmessage.TypeA))
	check("cut short", cut[:len(cut)-3], dnsmessage.RCodeFormatError, 0)

	dotted := pack(t, query("web.", dnsmessage.TypeA))
	dotted[headerLen+2] = '.' // "w.b": dnsmessage refuses dots inside labels
	check("dot in a label", dotted, dnsmessage.RCodeFormatError, 0)
}

// txtAnswer is an upstream-style answer: n TXT records of 200 bytes, an
// authority record, and an OPT record (last, or before an extra record).
func txtAnswer(t *testing.T, n int, optFirst bool) []byte {
	t.Helper()
	name := dnsmessage.MustNewName("big.example.")
	m := &dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 7, Response: true, RecursionAvailable: true},
		Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET}},
	}
	for i := range n {
		m.Answers = append(m.Answers, dnsmessage.Resource{
			Header: dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: 7},
			Body:   &dnsmessage.TXTResource{TXT: []string{strings.Repeat(string(rune('a'+i)), 200)}},
		})
	}
	m.Authorities = []dnsmessage.Resource{{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("example."), Class: dnsmessage.ClassINET, TTL: 9},
		Body:   &dnsmessage.NSResource{NS: dnsmessage.MustNewName("ns.example.")},
	}}
	extra := dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("ns.example."), Class: dnsmessage.ClassINET, TTL: 9},
		Body:   &dnsmessage.AResource{A: [4]byte{192, 0, 2, 53}},
	}
	if optFirst {
		withEDNS(m, 4096)
		m.Additionals = append(m.Additionals, extra)
	} else {
		m.Additionals = append(m.Additionals, extra)
		withEDNS(m, 4096)
	}
	return pack(t, m)
}

func TestTruncate(t *testing.T) {
	small := txtAnswer(t, 1, false)
	out, err := truncate(small, minMsgSize)
	require.NoError(t, err)
	assert.Equal(t, small, out, "a message that fits is left alone")

	for _, optFirst := range []bool{false, true} {
		full := txtAnswer(t, 5, optFirst)
		out, err := truncate(full, minMsgSize)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(out), minMsgSize)
		m := unpack(t, out)
		assert.True(t, m.Truncated)
		assert.Len(t, m.Answers, 2, "whole records, as many as fit")
		assert.Empty(t, m.Authorities)
		require.Len(t, m.Additionals, 1, "the OPT record stays")
		assert.Equal(t, dnsmessage.TypeOPT, m.Additionals[0].Header.Type)
		assert.Equal(t, full[headerLen:len(out)-11], out[headerLen:len(out)-11], "the records kept are the original bytes")

		// Only the extra record is cut: still TC, as it went.
		out, err = truncate(full, len(full)-1)
		require.NoError(t, err)
		m = unpack(t, out)
		assert.True(t, m.Truncated)
		assert.Len(t, m.Answers, 5)
		assert.Len(t, m.Authorities, 1)
		require.Len(t, m.Additionals, 1)
		assert.Equal(t, dnsmessage.TypeOPT, m.Additionals[0].Header.Type)
	}

	// Nothing fits but the question: the header and question go anyway.
	out, err = truncate(txtAnswer(t, 5, false), 20)
	require.NoError(t, err)
	m := unpack(t, out)
	assert.True(t, m.Truncated)
	assert.Empty(t, m.Answers)
	assert.Len(t, m.Questions, 1)

	_, err = truncate(txtAnswer(t, 5, false)[:600], minMsgSize)
	assert.Error(t, err, "a message cut short by its sender")
}

func TestTypeString(t *testing.T) {
	assert.Equal(t, "AAAA", typeString(dnsmessage.TypeAAAA))
	assert.Equal(t, "ANY", typeString(dnsmessage.TypeALL))
	assert.Equal(t, "TYPE65534", typeString(65534))
}
