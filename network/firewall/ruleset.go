package firewall

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// TableName is the name of berth's nftables table, of family inet, on the
// host and inside each container's network namespace.
const TableName = "berth"

// Marker is the comment that tags the rules berth inserts into chains it
// does not own, so that it finds and replaces them.
const Marker = "berth"

// Ruleset is a planned firewall: berth's table as data, plus what Apply
// does outside of it. The zero Ruleset is empty: applying it deletes
// berth's table and marked rules.
type Ruleset struct {
	// Sets are the named sets of table inet berth.
	Sets []Set
	// Chains are the chains of table inet berth, in order.
	Chains []Chain
	// ForwardAccept are the rules inserted, in this order, at the top of
	// the iptables-nft FORWARD chain of tables ip filter and ip6 filter
	// when that chain exists with policy drop. Each carries Marker.
	ForwardAccept []ChainRule
	// Sysctls are the kernel settings Apply ensures before the rules.
	Sysctls []Sysctl
}

// Empty reports whether the ruleset holds nothing, so berth's table and
// marked rules are to be removed.
func (r *Ruleset) Empty() bool {
	return len(r.Sets) == 0 && len(r.Chains) == 0 && len(r.ForwardAccept) == 0
}

// Set is a named set of interface names.
type Set struct {
	Name     string
	Elements []string
}

// Hook is the netfilter hook of a base chain.
type Hook string

// Hooks used by berth.
const (
	HookPrerouting  Hook = "prerouting"
	HookInput       Hook = "input"
	HookForward     Hook = "forward"
	HookOutput      Hook = "output"
	HookPostrouting Hook = "postrouting"
)

// ChainType is the type of a base chain.
type ChainType string

// Chain types used by berth.
const (
	TypeFilter ChainType = "filter"
	TypeNAT    ChainType = "nat"
)

// Standard base chain priorities.
const (
	PriorityDstNAT int32 = -100
	PriorityFilter int32 = 0
	PrioritySrcNAT int32 = 100
)

// Chain is a chain of table inet berth. A chain without Hook is a regular
// chain, reached only by jumps.
type Chain struct {
	Name     string
	Type     ChainType
	Hook     Hook
	Priority int32
	// Drop makes the policy of a base chain drop instead of accept.
	Drop  bool
	Rules []ChainRule
}

// Base reports whether the chain is attached to a hook.
func (c *Chain) Base() bool { return c.Hook != "" }

// Family restricts a rule to one IP version.
type Family uint8

// Families.
const (
	FamilyAny Family = iota
	FamilyIPv4
	FamilyIPv6
)

// IP protocol numbers used in rules.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// CtState bits, as conntrack reports them.
const (
	CtEstablished uint32 = 2
	CtRelated     uint32 = 4
)

// ChainRule is one rule: every match that is set must hold, then Verdict
// applies. Matches are evaluated in the order of the fields.
type ChainRule struct {
	// Family matches meta nfproto; an address match implies its family.
	Family Family
	// IIF and OIF match the input and output interface names; NotIIF and
	// NotOIF match any other name.
	IIF, NotIIF string
	OIF, NotOIF string
	// OIFSet matches an output interface name in the named set.
	OIFSet string
	// Saddr and Daddr match source and destination prefixes.
	Saddr, Daddr netip.Prefix
	// L4Proto matches the transport protocol (0: any).
	L4Proto uint8
	// DPortFirst..DPortLast match the transport destination port (0: any).
	DPortFirst, DPortLast uint16
	// ICMPv6TypeFirst..ICMPv6TypeLast match the ICMPv6 type (0: any).
	ICMPv6TypeFirst, ICMPv6TypeLast uint8
	// CtState matches any of these conntrack state bits.
	CtState uint32
	// CtDNAT matches connections whose destination was translated.
	CtDNAT bool
	// FibDaddrLocal matches packets to an address of this host.
	FibDaddrLocal bool

	Verdict Verdict
	// Comment is stored with the rule (nftables userdata).
	Comment string
}

// VerdictKind is what a rule does with a matching packet.
type VerdictKind uint8

// Verdicts.
const (
	Accept VerdictKind = iota + 1
	Drop
	Jump
	Return
	Masquerade
	DNAT
)

// Verdict is a rule's action: Chain for Jump, To for DNAT.
type Verdict struct {
	Kind  VerdictKind
	Chain string
	To    netip.AddrPort
}

// Sysctl is a kernel setting under /proc/sys, given by its path there
// (slashes, so interface names with dots stay unambiguous). Apply writes
// Value only when the current one differs.
type Sysctl struct {
	Path  string
	Value string
}

// digest identifies the ruleset's content; Apply stores it with the table
// to skip rewriting an unchanged firewall.
func (r *Ruleset) digest() string {
	sum := sha256.Sum256([]byte(r.Render()))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// marked returns rs with its FORWARD rules marked with marker instead of
// Marker, for a Host that owns another table than TableName.
func (r *Ruleset) marked(marker string) *Ruleset {
	if marker == Marker || len(r.ForwardAccept) == 0 {
		return r
	}
	out := *r
	out.ForwardAccept = make([]ChainRule, len(r.ForwardAccept))
	for i, cr := range r.ForwardAccept {
		cr.Comment = marker
		out.ForwardAccept[i] = cr
	}
	return &out
}

// Render prints the ruleset in nft syntax: the table as `nft -f` reads it,
// then what Apply does outside it, as comments.
func (r *Ruleset) Render() string {
	var b strings.Builder
	if r.Empty() {
		b.WriteString("# empty: table inet " + TableName + " is deleted\n")
	} else {
		r.renderTable(&b)
	}
	if len(r.ForwardAccept) > 0 {
		b.WriteString("\n# when table ip filter (or ip6 filter) has a FORWARD chain with policy drop:\n")
		for i := len(r.ForwardAccept) - 1; i >= 0; i-- {
			b.WriteString("# insert rule ip filter FORWARD " + r.ForwardAccept[i].String() + "\n")
		}
	}
	if len(r.Sysctls) > 0 {
		b.WriteString("\n")
		for _, s := range r.Sysctls {
			b.WriteString("# sysctl " + s.Path + " = " + s.Value + "\n")
		}
	}
	return b.String()
}

func (r *Ruleset) renderTable(b *strings.Builder) {
	b.WriteString("table inet " + TableName + " {\n")
	for i, s := range r.Sets {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("\tset " + s.Name + " {\n\t\ttype ifname\n")
		if len(s.Elements) > 0 {
			quoted := make([]string, len(s.Elements))
			for j, e := range s.Elements {
				quoted[j] = strconv.Quote(e)
			}
			b.WriteString("\t\telements = { " + strings.Join(quoted, ", ") + " }\n")
		}
		b.WriteString("\t}\n")
	}
	for i, c := range r.Chains {
		if i > 0 || len(r.Sets) > 0 {
			b.WriteString("\n")
		}
		b.WriteString("\tchain " + c.Name + " {\n")
		if c.Base() {
			policy := "accept"
			if c.Drop {
				policy = "drop"
			}
			fmt.Fprintf(b, "\t\ttype %s hook %s priority %s; policy %s;\n", c.Type, c.Hook, priorityName(c.Hook, c.Priority), policy)
		}
		for _, rule := range c.Rules {
			b.WriteString("\t\t" + rule.String() + "\n")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
}

// priorityName uses nft's names where nft accepts them for the hook.
func priorityName(h Hook, p int32) string {
	switch {
	case p == PriorityDstNAT && h == HookPrerouting:
		return "dstnat"
	case p == PrioritySrcNAT && h == HookPostrouting:
		return "srcnat"
	case p == PriorityFilter:
		return "filter"
	}
	return strconv.Itoa(int(p))
}

// String renders the rule in nft syntax.
func (r ChainRule) String() string {
	var parts []string
	add := func(s ...string) { parts = append(parts, s...) }
	if r.Family != FamilyAny && !r.Saddr.IsValid() && !r.Daddr.IsValid() {
		add("meta nfproto", map[Family]string{FamilyIPv4: "ipv4", FamilyIPv6: "ipv6"}[r.Family])
	}
	if r.IIF != "" {
		add("iifname", strconv.Quote(r.IIF))
	}
	if r.NotIIF != "" {
		add("iifname !=", strconv.Quote(r.NotIIF))
	}
	if r.OIF != "" {
		add("oifname", strconv.Quote(r.OIF))
	}
	if r.NotOIF != "" {
		add("oifname !=", strconv.Quote(r.NotOIF))
	}
	if r.OIFSet != "" {
		add("oifname @" + r.OIFSet)
	}
	if r.Saddr.IsValid() {
		add(ipKeyword(r.Saddr.Addr())+" saddr", prefixString(r.Saddr))
	}
	if r.Daddr.IsValid() {
		add(ipKeyword(r.Daddr.Addr())+" daddr", prefixString(r.Daddr))
	}
	switch {
	case r.DPortFirst != 0:
		add(protoName(r.L4Proto)+" dport", portRange(r.DPortFirst, r.DPortLast))
	case r.ICMPv6TypeFirst != 0:
		add("icmpv6 type", portRange(uint16(r.ICMPv6TypeFirst), uint16(r.ICMPv6TypeLast)))
	case r.L4Proto != 0:
		add("meta l4proto", protoName(r.L4Proto))
	}
	if r.CtState != 0 {
		var states []string
		if r.CtState&CtEstablished != 0 {
			states = append(states, "established")
		}
		if r.CtState&CtRelated != 0 {
			states = append(states, "related")
		}
		add("ct state", strings.Join(states, ","))
	}
	if r.CtDNAT {
		add("ct status dnat")
	}
	if r.FibDaddrLocal {
		add("fib daddr type local")
	}
	add(r.Verdict.String())
	if r.Comment != "" {
		add("comment", strconv.Quote(r.Comment))
	}
	return strings.Join(parts, " ")
}

// String renders the verdict in nft syntax.
func (v Verdict) String() string {
	switch v.Kind {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Jump:
		return "jump " + v.Chain
	case Return:
		return "return"
	case Masquerade:
		return "masquerade"
	case DNAT:
		return "dnat " + ipKeyword(v.To.Addr()) + " to " + v.To.String()
	}
	return "continue"
}

func ipKeyword(a netip.Addr) string {
	if a.Is4() {
		return "ip"
	}
	return "ip6"
}

func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func protoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "ipv6-icmp"
	}
	return strconv.Itoa(int(p))
}

func portRange(first, last uint16) string {
	if last == 0 || last == first {
		return strconv.Itoa(int(first))
	}
	return strconv.Itoa(int(first)) + "-" + strconv.Itoa(int(last))
}
