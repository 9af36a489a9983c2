package link

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

// ParseRoute's canonical text is what the engine reads back: parsing it
// again gives the same route.
func TestParseRouteRoundTrip(t *testing.T) {
	for _, in := range []string{"10.9.0.0/16,via=172.18.0.5", "192.0.2.0/24", "0.0.0.0/0,via=10.0.0.1", "2001:DB8::/32, via = FE80::1", "::/0", "10.0.0.1"} {
		r, err := ParseRoute(in)
		require.NoError(t, err, in)
		again, err := ParseRoute(r.String())
		require.NoError(t, err, r.String())
		assert.Equal(t, r, again, in)
	}
	r, err := ParseRoute("2001:DB8::/32, via = FE80::1")
	require.NoError(t, err)
	assert.Equal(t, "2001:db8::/32,via=fe80::1", r.String())
	assert.Equal(t, netip.MustParseAddr("fe80::1"), r.Via)
	r, err = ParseRoute("10.0.0.1")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.1/32", r.String())
	assert.False(t, r.Via.IsValid(), "on-link")
}

func TestParseRoute(t *testing.T) {
	r, err := ParseRoute("10.9.0.0/16,via=172.18.0.5")
	require.NoError(t, err)
	assert.Equal(t, netip.MustParsePrefix("10.9.0.0/16"), r.Dst)
	assert.Equal(t, netip.MustParseAddr("172.18.0.5"), r.Via)
	r, err = ParseRoute("192.0.2.7")
	require.NoError(t, err)
	assert.Equal(t, netip.MustParsePrefix("192.0.2.7/32"), r.Dst)
	assert.False(t, r.Via.IsValid())
	for _, bad := range []string{"nonsense", "10.9.0.1/16", "10.9.0.0/16,gw=1.2.3.4", "10.9.0.0/16,via=x", "10.9.0.0/16,via=fd00::1"} {
		_, err := ParseRoute(bad)
		assert.ErrorIs(t, err, errdefs.ErrInvalidArgument, bad)
	}
}
