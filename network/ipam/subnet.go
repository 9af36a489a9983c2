package ipam

import (
	"crypto/sha256"
	"fmt"
	"net/netip"

	"github.com/berth-containers/berth/internal/errdefs"
)

// SplitPool is a base prefix cut into subnets of one size, from which
// networks created without --subnet get theirs (Docker's
// default-address-pools entry {"base": ..., "size": ...}).
type SplitPool struct {
	Base netip.Prefix
	Size int
}

// DefaultPools returns Docker's default local address pools, in the order
// Docker takes subnets from them: 172.17.0.0/16 to 172.31.0.0/16, then
// 192.168.0.0/20 to 192.168.240.0/20.
func DefaultPools() []SplitPool {
	return []SplitPool{
		{netip.MustParsePrefix("172.17.0.0/16"), 16},
		{netip.MustParsePrefix("172.18.0.0/16"), 16},
		{netip.MustParsePrefix("172.19.0.0/16"), 16},
		{netip.MustParsePrefix("172.20.0.0/14"), 16},
		{netip.MustParsePrefix("172.24.0.0/14"), 16},
		{netip.MustParsePrefix("172.28.0.0/14"), 16},
		{netip.MustParsePrefix("192.168.0.0/16"), 20},
	}
}

// ULAPool returns an IPv6 pool of /64s inside a unique local /48
// (fdXX:XXXX:XXXX::/48, RFC 4193) whose global ID is derived from hostID,
// so one host always proposes the same IPv6 subnets and two hosts almost
// never the same. This is what IPv6 networks without --subnet draw from.
func ULAPool(hostID string) SplitPool {
	sum := sha256.Sum256([]byte("berth-ula\x00" + hostID))
	var b [16]byte
	b[0] = 0xfd
	copy(b[1:6], sum[:5])
	return SplitPool{Base: netip.PrefixFrom(netip.AddrFrom16(b), 48), Size: 64}
}

// PickSubnet returns the first subnet of Docker's default pools that
// overlaps none of inUse (the subnets of existing networks and the host's
// own routes and addresses).
func PickSubnet(inUse []netip.Prefix) (netip.Prefix, error) {
	return PickSubnetFrom(DefaultPools(), inUse)
}

// maxPickSteps bounds the candidates PickSubnetFrom looks at per pool; a
// pool of /64s in a /48 would otherwise offer 65536 of them.
const maxPickSteps = 1 << 17

// PickSubnetFrom returns the first subnet, in pool order, that overlaps
// none of inUse. A candidate inside a larger prefix in use jumps past that
// prefix at once, so the cost follows len(inUse), not the pool's size.
func PickSubnetFrom(pools []SplitPool, inUse []netip.Prefix) (netip.Prefix, error) {
	for _, sp := range pools {
		if err := sp.check(); err != nil {
			return netip.Prefix{}, err
		}
		if p, ok := sp.pick(inUse); ok {
			return p, nil
		}
	}
	return netip.Prefix{}, errdefs.Precondition("all predefined address pools have been fully subnetted")
}

func (sp SplitPool) check() error {
	b := sp.Base
	if !b.IsValid() || b != b.Masked() || sp.Size < b.Bits() || sp.Size > b.Addr().BitLen() {
		return errdefs.Invalid("invalid address pool %s with size %d", b, sp.Size)
	}
	return nil
}

func (sp SplitPool) pick(inUse []netip.Prefix) (netip.Prefix, bool) {
	is4 := sp.Base.Addr().Is4()
	end := toU128(lastAddr(sp.Base))
	step := pow2(sp.Base.Addr().BitLen() - sp.Size)
	cur := toU128(sp.Base.Addr())
	for range maxPickSteps {
		cand := netip.PrefixFrom(fromU128(cur, is4), sp.Size)
		blocker, busy := overlapping(cand, inUse)
		if !busy {
			return cand, true
		}
		// Skip to the first aligned candidate past both cand and blocker.
		next, over := cur.add(step)
		if blocker.Bits() < sp.Size {
			after, o := toU128(lastAddr(blocker)).add(u128{lo: 1})
			if o || after.cmp(end) > 0 {
				return netip.Prefix{}, false
			}
			if after.cmp(next) > 0 {
				next = after
			}
		}
		if over || next.cmp(end) > 0 {
			return netip.Prefix{}, false
		}
		cur = next
	}
	return netip.Prefix{}, false
}

// overlapping returns the first prefix of inUse that overlaps p, ignoring
// the other family.
func overlapping(p netip.Prefix, inUse []netip.Prefix) (netip.Prefix, bool) {
	for _, u := range inUse {
		u = u.Masked()
		if u.IsValid() && u.Addr().Is4() == p.Addr().Is4() && u.Overlaps(p) {
			return u, true
		}
	}
	return netip.Prefix{}, false
}

// String formats the pool as Docker's daemon.json does.
func (sp SplitPool) String() string {
	return fmt.Sprintf("base=%s,size=%d", sp.Base, sp.Size)
}
