package link

import (
	"net/netip"
	"strings"

	"github.com/berth-containers/berth/internal/errdefs"
)

// ParseRoute reads a route in the --route syntax: DEST or DEST,via=GATEWAY.
// DEST is a prefix with its host bits clear, or a bare address (a host
// route: /32 or /128); GATEWAY is an address of DEST's family. Without
// a gateway the route is on-link. Errors are errdefs.ErrInvalidArgument.
func ParseRoute(s string) (Route, error) {
	dst, rest, hasVia := strings.Cut(strings.TrimSpace(s), ",")
	var r Route
	p, err := parseRouteDest(strings.TrimSpace(dst))
	if err != nil {
		return r, errdefs.Invalid("invalid route %q: %v", s, err)
	}
	r.Dst = p
	if !hasVia {
		return r, nil
	}
	key, gw, ok := strings.Cut(strings.TrimSpace(rest), "=")
	if !ok || strings.TrimSpace(key) != "via" {
		return r, errdefs.Invalid("invalid route %q: want DEST[,via=GATEWAY]", s)
	}
	a, err := netip.ParseAddr(strings.TrimSpace(gw))
	switch {
	case err != nil || a.Zone() != "":
		return r, errdefs.Invalid("invalid route %q: gateway %q is not an IP address", s, gw)
	case a.Is4() != p.Addr().Is4() || a.Is4In6():
		return r, errdefs.Invalid("invalid route %q: gateway %s is not of the destination's address family", s, a)
	case a.IsUnspecified() || a.IsMulticast():
		return r, errdefs.Invalid("invalid route %q: gateway %s cannot be a next hop", s, a)
	}
	r.Via = a
	return r, nil
}

// parseRouteDest reads a route's destination.
func parseRouteDest(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, errdefs.Invalid("destination %q is not an IP address or prefix", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errdefs.Invalid("destination %q is not a prefix", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, errdefs.Invalid("destination %s has host bits set: did you mean %s?", p, m)
	}
	return p, nil
}

// String writes the route in the syntax ParseRoute reads.
func (r Route) String() string {
	if !r.Via.IsValid() {
		return r.Dst.String()
	}
	return r.Dst.String() + ",via=" + r.Via.String()
}
