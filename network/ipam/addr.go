package ipam

import (
	"encoding/binary"
	"net/netip"
)

// u128 is an address as a 128-bit number, so prefix arithmetic is the same
// for both families (an IPv4 address uses the low 32 bits).
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

func fromU128(v u128, is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(v.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], v.hi)
	binary.BigEndian.PutUint64(b[8:], v.lo)
	return netip.AddrFrom16(b)
}

// pow2 returns 1<<n for n in [0, 127].
func pow2(n int) u128 {
	if n >= 64 {
		return u128{hi: 1 << (n - 64)}
	}
	return u128{lo: 1 << n}
}

// add returns v+w and whether it overflowed 128 bits.
func (v u128) add(w u128) (u128, bool) {
	lo := v.lo + w.lo
	carry := uint64(0)
	if lo < v.lo {
		carry = 1
	}
	hi := v.hi + w.hi + carry
	over := hi < v.hi || (carry == 1 && hi == v.hi)
	return u128{hi: hi, lo: lo}, over
}

func (v u128) cmp(w u128) int {
	switch {
	case v.hi < w.hi:
		return -1
	case v.hi > w.hi:
		return 1
	case v.lo < w.lo:
		return -1
	case v.lo > w.lo:
		return 1
	}
	return 0
}

// lastAddr is the highest address of p (the IPv4 broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	host := p.Addr().BitLen() - p.Bits()
	v := toU128(p.Addr())
	if host == 128 {
		return fromU128(u128{^uint64(0), ^uint64(0)}, false)
	}
	size := pow2(host)
	// v + size - 1, without overflow since v is aligned on size.
	if size.lo == 0 {
		size.hi--
		size.lo = ^uint64(0)
	} else {
		size.lo--
	}
	end, _ := v.add(size)
	return fromU128(end, p.Addr().Is4())
}
