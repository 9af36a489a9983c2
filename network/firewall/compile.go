package firewall

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// ifnameSize is the width of an interface name in nftables registers
// (IFNAMSIZ): names are compared zero-padded to it, as nft does.
const ifnameSize = 16

// ipsDstNAT is conntrack's IPS_DST_NAT status bit.
const ipsDstNAT = 1 << 5

// queueTable queues in cc the messages that build ruleset rs as table
// inet berth. The table must not exist in the batch at that point.
func queueTable(cc *nftables.Conn, table string, rs *Ruleset) error {
	t := cc.AddTable(&nftables.Table{Name: table, Family: nftables.TableFamilyINet})
	sets := map[string]*nftables.Set{}
	for _, s := range rs.Sets {
		set := &nftables.Set{Table: t, Name: s.Name, KeyType: nftables.TypeIFName}
		elems := make([]nftables.SetElement, len(s.Elements))
		for i, e := range s.Elements {
			elems[i] = nftables.SetElement{Key: ifname(e)}
		}
		if err := cc.AddSet(set, elems); err != nil {
			return fmt.Errorf("queue set %s: %w", s.Name, err)
		}
		sets[s.Name] = set
	}
	// All chains first: a jump may name a chain defined later.
	chains := make([]*nftables.Chain, len(rs.Chains))
	for i, c := range rs.Chains {
		nc := &nftables.Chain{Name: c.Name, Table: t}
		if c.Base() {
			nc.Type = nftables.ChainType(c.Type)
			nc.Hooknum = hookNum(c.Hook)
			nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority))
			policy := nftables.ChainPolicyAccept
			if c.Drop {
				policy = nftables.ChainPolicyDrop
			}
			nc.Policy = &policy
		}
		chains[i] = cc.AddChain(nc)
	}
	for i, c := range rs.Chains {
		for _, r := range c.Rules {
			exprs, err := compileRule(r, sets)
			if err != nil {
				return fmt.Errorf("chain %s: rule %q: %w", c.Name, r.String(), err)
			}
			cc.AddRule(&nftables.Rule{Table: t, Chain: chains[i], Exprs: exprs, UserData: ruleUserData(r)})
		}
	}
	return nil
}

// chainDigest is a regular chain of berth's host table, never jumped to,
// whose one rule carries the digest of the ruleset the table was written
// from.
const chainDigest = "digest"

// queueDigest queues the digest chain; queueTable must come first.
func queueDigest(cc *nftables.Conn, table, digest string) {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	c := cc.AddChain(&nftables.Chain{Name: chainDigest, Table: t})
	cc.AddRule(&nftables.Rule{Table: t, Chain: c,
		Exprs:    []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}},
		UserData: userdata.AppendString(nil, userdata.TypeComment, digest)})
}

func ruleUserData(r ChainRule) []byte {
	if r.Comment == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, r.Comment)
}

func hookNum(h Hook) *nftables.ChainHook {
	switch h {
	case HookPrerouting:
		return nftables.ChainHookPrerouting
	case HookInput:
		return nftables.ChainHookInput
	case HookForward:
		return nftables.ChainHookForward
	case HookOutput:
		return nftables.ChainHookOutput
	}
	return nftables.ChainHookPostrouting
}

// compileRule turns a rule into nftables expressions, matches in the
// order ChainRule documents. Every match loads register 1 and compares it.
func compileRule(r ChainRule, sets map[string]*nftables.Set) ([]expr.Any, error) {
	var e []expr.Any
	family := r.Family
	for _, p := range []netip.Prefix{r.Saddr, r.Daddr} {
		if p.IsValid() {
			family = familyOf(p.Addr())
		}
	}
	if family != FamilyAny {
		proto := byte(unix.NFPROTO_IPV4)
		if family == FamilyIPv6 {
			proto = unix.NFPROTO_IPV6
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp(expr.CmpOpEq, []byte{proto}))
	}
	ifMatch := func(key expr.MetaKey, op expr.CmpOp, name string) {
		e = append(e, &expr.Meta{Key: key, Register: 1}, cmp(op, ifname(name)))
	}
	if r.IIF != "" {
		ifMatch(expr.MetaKeyIIFNAME, expr.CmpOpEq, r.IIF)
	}
	if r.NotIIF != "" {
		ifMatch(expr.MetaKeyIIFNAME, expr.CmpOpNeq, r.NotIIF)
	}
	if r.OIF != "" {
		ifMatch(expr.MetaKeyOIFNAME, expr.CmpOpEq, r.OIF)
	}
	if r.NotOIF != "" {
		ifMatch(expr.MetaKeyOIFNAME, expr.CmpOpNeq, r.NotOIF)
	}
	if r.OIFSet != "" {
		set, ok := sets[r.OIFSet]
		if !ok {
			return nil, fmt.Errorf("unknown set %q", r.OIFSet)
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID})
	}
	e = appendAddr(e, r.Saddr, true)
	e = appendAddr(e, r.Daddr, false)
	if r.L4Proto != 0 {
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp(expr.CmpOpEq, []byte{r.L4Proto}))
	}
	if r.DPortFirst != 0 {
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
		e = append(e, rangeOrEq(binaryutil.BigEndian.PutUint16(r.DPortFirst), binaryutil.BigEndian.PutUint16(max(r.DPortLast, r.DPortFirst))))
	}
	if r.ICMPv6TypeFirst != 0 {
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1})
		e = append(e, rangeOrEq([]byte{r.ICMPv6TypeFirst}, []byte{max(r.ICMPv6TypeLast, r.ICMPv6TypeFirst)}))
	}
	if r.CtState != 0 {
		e = append(e, &expr.Ct{Key: expr.CtKeySTATE, Register: 1})
		e = append(e, anyBits(r.CtState)...)
	}
	if r.CtDNAT {
		e = append(e, &expr.Ct{Key: expr.CtKeySTATUS, Register: 1})
		e = append(e, anyBits(ipsDstNAT)...)
	}
	if r.FibDaddrLocal {
		e = append(e, &expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			cmp(expr.CmpOpEq, binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)))
	}
	v, err := compileVerdict(r.Verdict)
	if err != nil {
		return nil, err
	}
	return append(e, v...), nil
}

func compileVerdict(v Verdict) ([]expr.Any, error) {
	switch v.Kind {
	case Accept:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, nil
	case Drop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, nil
	case Jump:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: v.Chain}}, nil
	case Return:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}, nil
	case Masquerade:
		return []expr.Any{&expr.Masq{}}, nil
	case DNAT:
		if !v.To.IsValid() {
			return nil, fmt.Errorf("dnat without a destination")
		}
		family := uint32(unix.NFPROTO_IPV4)
		if v.To.Addr().Is6() {
			family = unix.NFPROTO_IPV6
		}
		return []expr.Any{
			&expr.Immediate{Register: 1, Data: v.To.Addr().AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(v.To.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: family, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		}, nil
	}
	return nil, fmt.Errorf("unknown verdict %d", v.Kind)
}

// appendAddr matches the source or destination address against a prefix:
// load the address, mask it unless the prefix is one address, compare.
func appendAddr(e []expr.Any, p netip.Prefix, source bool) []expr.Any {
	if !p.IsValid() {
		return e
	}
	offset, size := uint32(16), uint32(4) // IPv4 daddr
	if p.Addr().Is6() {
		offset, size = 24, 16
	}
	if source {
		offset -= size // saddr precedes daddr in both headers
	}
	e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: size})
	if !p.IsSingleIP() {
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size,
			Mask: prefixMask(p), Xor: make([]byte, size)})
	}
	return append(e, cmp(expr.CmpOpEq, p.Masked().Addr().AsSlice()))
}

// prefixMask returns the netmask of p as bytes.
func prefixMask(p netip.Prefix) []byte {
	mask := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return mask
}

func cmp(op expr.CmpOp, data []byte) *expr.Cmp {
	return &expr.Cmp{Op: op, Register: 1, Data: data}
}

func rangeOrEq(from, to []byte) expr.Any {
	if string(from) == string(to) {
		return cmp(expr.CmpOpEq, from)
	}
	return &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: from, ToData: to}
}

// anyBits matches when register 1 (host-endian u32) has any of bits set.
func anyBits(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		cmp(expr.CmpOpNeq, make([]byte, 4)),
	}
}

// ifname pads an interface name with zeros to IFNAMSIZ.
func ifname(name string) []byte {
	b := make([]byte, ifnameSize)
	copy(b, name)
	return b
}

// commentOf returns a rule's comment from its userdata.
func commentOf(udata []byte) string {
	s, _ := userdata.GetString(udata, userdata.TypeComment)
	return s
}
