package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

var (
	mp = netip.MustParsePrefix
	ma = netip.MustParseAddr
)

func TestParsePoolDefaults(t *testing.T) {
	p, err := ParsePool("172.18.0.0/16", "", "")
	require.NoError(t, err)
	assert.Equal(t, mp("172.18.0.0/16"), p.Subnet)
	assert.Equal(t, mp("172.18.0.0/16"), p.Range)
	assert.Equal(t, ma("172.18.0.1"), p.Gateway)
	assert.Equal(t, mp("172.18.0.1/16"), p.GatewayPrefix())

	// With an ip-range the default gateway is the range's first address.
	p, err = ParsePool("10.1.0.0/16", "10.1.5.0/24", "")
	require.NoError(t, err)
	assert.Equal(t, ma("10.1.5.0"), p.Gateway)
	p, err = ParsePool("10.1.0.0/16", "10.1.0.0/24", "")
	require.NoError(t, err)
	assert.Equal(t, ma("10.1.0.1"), p.Gateway, "the network address is never the gateway")

	p, err = ParsePool("fd00:1::/64", "", "")
	require.NoError(t, err)
	assert.Equal(t, ma("fd00:1::1"), p.Gateway)

	p, err = ParsePool("10.9.0.0/24", "", "10.9.0.254")
	require.NoError(t, err)
	assert.Equal(t, ma("10.9.0.254"), p.Gateway)
}

func TestParsePoolErrors(t *testing.T) {
	cases := []struct{ subnet, rng, gw, msg string }{
		{"nonsense", "", "", "not in CIDR notation"},
		{"10.1.2.3/16", "", "", "it should be 10.1.0.0/16"},
		{"10.1.0.0/16", "10.2.0.0/24", "", "not inside subnet"},
		{"10.1.0.0/16", "10.0.0.0/8", "", "not inside subnet"},
		{"10.1.0.0/16", "10.1.0.7/24", "", "it should be 10.1.0.0/24"},
		{"10.1.0.0/16", "fd00::/64", "", "other address family"},
		{"10.1.0.0/16", "", "10.2.0.1", "not inside subnet"},
		{"10.1.0.0/16", "", "10.1.0.0", "network address"},
		{"10.1.0.0/16", "", "10.1.255.255", "broadcast address"},
		{"fd00::/64", "", "fd00::", "subnet-router anycast"},
		{"10.1.0.0/16", "", "fd00::1", "other address family"},
		{"10.1.0.0/16", "", "bogus", "not an IP address"},
		{"10.1.0.0/32", "", "", "too small"},
		{"10.1.0.0/30", "", "10.1.0.1", ""}, // ok: .2 left
		{"fd00::/128", "", "", "too small"},
		{"fd00::/127", "", "", "too small"},
		{"::ffff:10.0.0.0/104", "", "", "IPv4-mapped"},
	}
	for _, c := range cases {
		_, err := ParsePool(c.subnet, c.rng, c.gw)
		if c.msg == "" {
			assert.NoError(t, err, c)
			continue
		}
		if assert.Error(t, err, c) {
			assert.Contains(t, err.Error(), c.msg, c)
			assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument), c)
		}
	}
	// A /31 holds exactly a gateway and one address (RFC 3021).
	p, err := ParsePool("10.1.0.0/31", "", "")
	require.NoError(t, err)
	assert.Equal(t, ma("10.1.0.0"), p.Gateway)
	a, err := p.Allocate(nil, netip.Addr{})
	require.NoError(t, err)
	assert.Equal(t, ma("10.1.0.1"), a)
}

func TestAllocateLowestFree(t *testing.T) {
	p, err := ParsePool("172.18.0.0/16", "", "")
	require.NoError(t, err)
	a, err := p.Allocate(nil, netip.Addr{})
	require.NoError(t, err)
	assert.Equal(t, ma("172.18.0.2"), a)

	used := NewSet(ma("172.18.0.2"), ma("172.18.0.3"), ma("172.18.0.5"))
	a, err = p.Allocate(used, netip.Addr{})
	require.NoError(t, err)
	assert.Equal(t, ma("172.18.0.4"), a)

	f := UsedFunc(func(x netip.Addr) bool { return x.Compare(ma("172.18.1.0")) < 0 })
	a, err = p.Allocate(f, netip.Addr{})
	require.NoError(t, err)
	assert.Equal(t, ma("172.18.1.0"), a, "x.0 inside a /16 is an ordinary address")
}

func TestAllocateRange(t *testing.T) {
	p, err := ParsePool("10.1.0.0/16", "10.1.7.0/30", "10.1.0.1")
	require.NoError(t, err)
	used := NewSet()
	var got []netip.Addr
	for range 4 {
		a, err := p.Allocate(used, netip.Addr{})
		require.NoError(t, err)
		got = append(got, a)
		used[a] = struct{}{}
	}
	assert.Equal(t, []netip.Addr{ma("10.1.7.0"), ma("10.1.7.1"), ma("10.1.7.2"), ma("10.1.7.3")}, got)
	_, err = p.Allocate(used, netip.Addr{})
	assert.True(t, errors.Is(err, errdefs.ErrFailedPrecondition), "%v", err)
	assert.Contains(t, err.Error(), "no available addresses in subnet 10.1.0.0/16 (ip-range 10.1.7.0/30)")

	// --ip may lie outside the ip-range, inside the subnet.
	a, err := p.Allocate(used, ma("10.1.200.9"))
	require.NoError(t, err)
	assert.Equal(t, ma("10.1.200.9"), a)
}

func TestAllocateExhaustion(t *testing.T) {
	p, err := ParsePool("192.168.5.0/29", "", "")
	require.NoError(t, err)
	used := NewSet()
	for range 5 { // .2 to .6: .0, .1 (gateway) and .7 are reserved
		a, err := p.Allocate(used, netip.Addr{})
		require.NoError(t, err)
		used[a] = struct{}{}
	}
	_, err = p.Allocate(used, netip.Addr{})
	require.Error(t, err)
	assert.True(t, errors.Is(err, errdefs.ErrFailedPrecondition))
	assert.Contains(t, err.Error(), "no available addresses in subnet 192.168.5.0/29")
}

func TestAllocateWanted(t *testing.T) {
	p, err := ParsePool("172.20.0.0/24", "", "")
	require.NoError(t, err)
	used := NewSet(ma("172.20.0.9"))

	a, err := p.Allocate(used, ma("172.20.0.10"))
	require.NoError(t, err)
	assert.Equal(t, ma("172.20.0.10"), a)

	for _, c := range []struct {
		want  string
		class error
		msg   string
	}{
		{"172.20.0.9", errdefs.ErrAlreadyExists, "address 172.20.0.9 is already in use"},
		{"172.20.0.1", errdefs.ErrAlreadyExists, "gateway"},
		{"172.20.1.5", errdefs.ErrInvalidArgument, "not inside subnet 172.20.0.0/24"},
		{"172.20.0.0", errdefs.ErrInvalidArgument, "network address"},
		{"172.20.0.255", errdefs.ErrInvalidArgument, "broadcast address"},
		{"fd00::5", errdefs.ErrInvalidArgument, "not inside subnet"},
	} {
		_, err := p.Allocate(used, ma(c.want))
		if assert.Error(t, err, c.want) {
			assert.True(t, errors.Is(err, c.class), "%s: %v", c.want, err)
			assert.Contains(t, err.Error(), c.msg)
		}
	}
	// A v4-mapped --ip is the IPv4 address it maps.
	a, err = p.Allocate(used, ma("::ffff:172.20.0.11"))
	require.NoError(t, err)
	assert.Equal(t, ma("172.20.0.11"), a)
}

func TestAllocateIPv6(t *testing.T) {
	p, err := ParsePool("fd12:3456:789a:1::/64", "", "")
	require.NoError(t, err)
	a, err := p.Allocate(NewSet(ma("fd12:3456:789a:1::2")), netip.Addr{})
	require.NoError(t, err)
	assert.Equal(t, ma("fd12:3456:789a:1::3"), a)
	assert.Equal(t, mp("fd12:3456:789a:1::3/64"), p.Prefix(a))

	// The last address of an IPv6 subnet is no broadcast: it can be used.
	p, err = ParsePool("fd00::/126", "", "")
	require.NoError(t, err)
	used := NewSet(ma("fd00::2"))
	a, err = p.Allocate(used, netip.Addr{})
	require.NoError(t, err)
	assert.Equal(t, ma("fd00::3"), a)
	used[a] = struct{}{}
	_, err = p.Allocate(used, netip.Addr{})
	assert.True(t, errors.Is(err, errdefs.ErrFailedPrecondition))
}

func TestAllocateLargePoolIsFast(t *testing.T) {
	p, err := ParsePool("172.30.0.0/16", "", "")
	require.NoError(t, err)
	used := NewSet()
	for i := range 5000 {
		b := [4]byte{172, 30, byte((i + 2) >> 8), byte(i + 2)}
		used[netip.AddrFrom4(b)] = struct{}{}
	}
	res := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Allocate(used, netip.Addr{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A walk over the 5000 taken addresses: well under a millisecond.
	assert.Less(t, res.NsPerOp(), int64(5_000_000), "allocation took %s", res)
	a, _ := p.Allocate(used, netip.Addr{})
	assert.Equal(t, ma("172.30.19.138"), a)
}

func BenchmarkAllocate16With5000Used(b *testing.B) {
	p, err := ParsePool("172.30.0.0/16", "", "")
	require.NoError(b, err)
	used := NewSet()
	for i := range 5000 {
		used[netip.AddrFrom4([4]byte{172, 30, byte((i + 2) >> 8), byte(i + 2)})] = struct{}{}
	}
	for b.Loop() {
		if _, err := p.Allocate(used, netip.Addr{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPickSubnetOrder(t *testing.T) {
	var inUse []netip.Prefix
	var got []string
	for range 31 {
		p, err := PickSubnet(inUse)
		require.NoError(t, err)
		got = append(got, p.String())
		inUse = append(inUse, p)
	}
	assert.Equal(t, "172.17.0.0/16", got[0])
	assert.Equal(t, "172.31.0.0/16", got[14])
	assert.Equal(t, "192.168.0.0/20", got[15])
	assert.Equal(t, "192.168.240.0/20", got[30])
	_, err := PickSubnet(inUse)
	assert.True(t, errors.Is(err, errdefs.ErrFailedPrecondition))
	assert.Contains(t, err.Error(), "fully subnetted")
}

func TestPickSubnetSkipsOverlaps(t *testing.T) {
	p, err := PickSubnet([]netip.Prefix{
		mp("172.17.0.0/16"),   // docker0
		mp("172.18.5.0/24"),   // a route inside the next candidate
		mp("172.16.0.0/15"),   // covers 172.16 and 172.17
		mp("172.19.0.1/32"),   // a host address
		mp("fd00::/8"),        // other family: ignored
		mp("172.20.0.0/14"),   // a whole pool
		mp("172.24.3.77/16"),  // host bits: treated as 172.24.0.0/16
		mp("192.168.0.0/24"),  // irrelevant yet
		mp("10.0.0.0/8"),      // irrelevant
		mp("172.25.128.0/17"), // half of the next
	})
	require.NoError(t, err)
	assert.Equal(t, mp("172.26.0.0/16"), p)

	// Everything 172.16/12 taken by one route: straight to 192.168.
	p, err = PickSubnet([]netip.Prefix{mp("172.16.0.0/12"), mp("192.168.0.0/20")})
	require.NoError(t, err)
	assert.Equal(t, mp("192.168.16.0/20"), p)
}

func TestPickSubnetULA(t *testing.T) {
	sp := ULAPool("host-a")
	assert.Equal(t, sp, ULAPool("host-a"), "stable for one host")
	assert.NotEqual(t, sp.Base, ULAPool("host-b").Base)
	assert.Equal(t, 48, sp.Base.Bits())
	assert.Equal(t, byte(0xfd), sp.Base.Addr().As16()[0])

	first, err := PickSubnetFrom([]SplitPool{sp}, nil)
	require.NoError(t, err)
	assert.Equal(t, netip.PrefixFrom(sp.Base.Addr(), 64), first)
	second, err := PickSubnetFrom([]SplitPool{sp}, []netip.Prefix{first, mp("10.0.0.0/8")})
	require.NoError(t, err)
	assert.True(t, sp.Base.Contains(second.Addr()))
	assert.False(t, second.Overlaps(first))
	assert.Equal(t, 64, second.Bits())

	// The whole /48 in use: exhausted without walking 65536 candidates
	// one by one.
	_, err = PickSubnetFrom([]SplitPool{sp}, []netip.Prefix{sp.Base})
	assert.True(t, errors.Is(err, errdefs.ErrFailedPrecondition))

	_, err = PickSubnetFrom([]SplitPool{{Base: mp("10.0.0.0/16"), Size: 8}}, nil)
	assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument))
}

func TestMAC(t *testing.T) {
	mac, err := MACFromIPv4(ma("172.17.0.2"))
	require.NoError(t, err)
	assert.Equal(t, "02:42:ac:11:00:02", mac.String())
	_, err = MACFromIPv4(ma("fd00::1"))
	assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument))

	seen := map[string]bool{}
	for range 50 {
		r, err := MACFor(netip.Addr{})
		require.NoError(t, err)
		require.Len(t, r, 6)
		assert.Zero(t, r[0]&0x01, "unicast")
		assert.Equal(t, byte(0x02), r[0]&0x02, "locally administered")
		seen[r.String()] = true
	}
	assert.Greater(t, len(seen), 45, "random MACs repeat")
	d, err := MACFor(ma("10.0.0.3"))
	require.NoError(t, err)
	assert.Equal(t, "02:42:0a:00:00:03", d.String())

	m, err := ParseMAC("92:d0:c6:0a:29:33")
	require.NoError(t, err)
	assert.Equal(t, "92:d0:c6:0a:29:33", m.String())
	for _, bad := range []string{"zz:zz", "01:00:5e:00:00:01", "00:00:00:00:00:00", "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"} {
		_, err := ParseMAC(bad)
		if assert.Error(t, err, bad) {
			assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument))
			assert.True(t, strings.HasPrefix(err.Error(), "invalid MAC address"))
		}
	}
}

func TestLastAddr(t *testing.T) {
	assert.Equal(t, ma("10.255.255.255"), lastAddr(mp("10.0.0.0/8")))
	assert.Equal(t, ma("255.255.255.255"), lastAddr(mp("0.0.0.0/0")))
	assert.Equal(t, ma("fd00::ffff:ffff:ffff:ffff"), lastAddr(mp("fd00::/64")))
	assert.Equal(t, ma("fd00:0:ffff:ffff:ffff:ffff:ffff:ffff"), lastAddr(mp("fd00::/32")))
	assert.Equal(t, ma("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), lastAddr(mp("::/0")))
	assert.Equal(t, ma("10.0.0.5"), lastAddr(mp("10.0.0.5/32")))
}
