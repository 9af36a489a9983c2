package firewall

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Direction is the way traffic flows relative to the container.
type Direction uint8

// Directions. The zero Direction is invalid, so a forgotten one is caught.
const (
	Ingress Direction = iota + 1
	Egress
)

// String returns "ingress" or "egress".
func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// Action is what a container rule or policy does with matching traffic.
type Action uint8

// Actions. The zero Action allows, as the default policy does.
const (
	Allow Action = iota
	Deny
)

// String returns "allow" or "deny".
func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Rule is one firewall rule of a container.
type Rule struct {
	Direction Direction
	Action    Action
	// CIDR is the peer: source for ingress, destination for egress. The
	// zero Prefix matches any peer.
	CIDR netip.Prefix
	// Proto is "tcp", "udp", "icmp" (ICMPv6 for IPv6 peers) or "" (any).
	Proto string
	// PortFirst..PortLast is the destination port range, only with tcp or
	// udp; PortLast 0 means PortFirst alone, PortFirst 0 any port.
	PortFirst, PortLast uint16
}

// Policy is the default action per direction. The zero Policy allows all.
type Policy struct {
	Ingress Action
	Egress  Action
}

// ParseRule parses the --firewall flag syntax: comma-separated key=value
// pairs with keys direction, action, cidr, proto and port, for example
// "direction=egress,action=deny,cidr=10.1.0.0/16,proto=tcp,port=443". The
// error names the field at fault.
func ParseRule(s string) (Rule, error) {
	var r Rule
	seen := map[string]bool{}
	fail := func(field, format string, args ...any) (Rule, error) {
		return Rule{}, errdefs.Invalid("firewall rule %q: %s: %s", s, field, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(s) == "" {
		return fail("rule", "empty; want key=value pairs such as direction=egress,action=deny,cidr=10.0.0.0/8")
	}
	for _, pair := range strings.Split(s, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
		if !ok {
			return fail(key, "want key=value")
		}
		if seen[key] {
			return fail(key, "given twice")
		}
		seen[key] = true
		switch key {
		case "direction":
			switch strings.ToLower(value) {
			case "ingress":
				r.Direction = Ingress
			case "egress":
				r.Direction = Egress
			default:
				return fail(key, "%q: want ingress or egress", value)
			}
		case "action":
			a, err := parseAction(value)
			if err != nil {
				return fail(key, "%v", err)
			}
			r.Action = a
		case "cidr":
			p, err := parsePeer(value)
			if err != nil {
				return fail(key, "%v", err)
			}
			r.CIDR = p
		case "proto":
			switch v := strings.ToLower(value); v {
			case "tcp", "udp", "icmp":
				r.Proto = v
			case "any", "all":
				r.Proto = ""
			default:
				return fail(key, "%q: want tcp, udp or icmp", value)
			}
		case "port":
			first, last, err := parsePortRange(value)
			if err != nil {
				return fail(key, "%v", err)
			}
			r.PortFirst, r.PortLast = first, last
		default:
			return fail(key, "unknown key; want direction, action, cidr, proto or port")
		}
	}
	if !seen["direction"] {
		return fail("direction", "missing; want direction=ingress or direction=egress")
	}
	if !seen["action"] {
		return fail("action", "missing; want action=allow or action=deny")
	}
	if r.PortFirst != 0 && r.Proto != "tcp" && r.Proto != "udp" {
		return fail("port", "needs proto=tcp or proto=udp")
	}
	return r, nil
}

// ParseDefaults parses --firewall-default values, each comma-separated
// direction=action pairs such as "egress=deny" or
// "ingress=deny,egress=allow". Later values override earlier ones;
// directions not named allow.
func ParseDefaults(values ...string) (Policy, error) {
	var p Policy
	for _, s := range values {
		for _, pair := range strings.Split(s, ",") {
			key, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
			key = strings.ToLower(strings.TrimSpace(key))
			if !ok {
				return Policy{}, errdefs.Invalid("firewall default %q: %s: want direction=action, e.g. egress=deny", s, key)
			}
			a, err := parseAction(strings.TrimSpace(value))
			if err != nil {
				return Policy{}, errdefs.Invalid("firewall default %q: %s: %v", s, key, err)
			}
			switch key {
			case "ingress":
				p.Ingress = a
			case "egress":
				p.Egress = a
			default:
				return Policy{}, errdefs.Invalid("firewall default %q: %s: unknown direction; want ingress or egress", s, key)
			}
		}
	}
	return p, nil
}

// String renders the rule in the --firewall flag syntax ParseRule reads.
func (r Rule) String() string {
	parts := []string{"direction=" + r.Direction.String(), "action=" + r.Action.String()}
	if r.CIDR.IsValid() {
		parts = append(parts, "cidr="+r.CIDR.String())
	}
	if r.Proto != "" {
		parts = append(parts, "proto="+r.Proto)
	}
	if r.PortFirst != 0 {
		parts = append(parts, "port="+portRange(r.PortFirst, r.PortLast))
	}
	return strings.Join(parts, ",")
}

// Validate checks a rule built in code as ParseRule checks a parsed one.
func (r Rule) Validate() error {
	switch {
	case r.Direction != Ingress && r.Direction != Egress:
		return errdefs.Invalid("firewall rule %s: direction: want ingress or egress", r)
	case r.Action != Allow && r.Action != Deny:
		return errdefs.Invalid("firewall rule %s: action: want allow or deny", r)
	case r.Proto != "" && r.Proto != "tcp" && r.Proto != "udp" && r.Proto != "icmp":
		return errdefs.Invalid("firewall rule %s: proto: want tcp, udp or icmp", r)
	case r.PortFirst == 0 && r.PortLast != 0:
		return errdefs.Invalid("firewall rule %s: port: range without a first port", r)
	case r.PortLast != 0 && r.PortLast < r.PortFirst:
		return errdefs.Invalid("firewall rule %s: port: range ends before it starts", r)
	case r.PortFirst != 0 && r.Proto != "tcp" && r.Proto != "udp":
		return errdefs.Invalid("firewall rule %s: port: needs proto tcp or udp", r)
	}
	return nil
}

func parseAction(v string) (Action, error) {
	switch strings.ToLower(v) {
	case "allow":
		return Allow, nil
	case "deny":
		return Deny, nil
	}
	return 0, fmt.Errorf("%q: want allow or deny", v)
}

// parsePeer reads a prefix, or a single address as a full-length prefix.
func parsePeer(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix (e.g. 10.0.0.0/8 or fd00::/8)", v)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%q: write IPv4 prefixes in IPv4 form", v)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parsePortRange(v string) (uint16, uint16, error) {
	firstS, lastS, isRange := strings.Cut(v, "-")
	first, err := parsePort(firstS)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return first, 0, nil
	}
	last, err := parsePort(lastS)
	if err != nil {
		return 0, 0, err
	}
	if last < first {
		return 0, 0, fmt.Errorf("range %q ends before it starts", v)
	}
	if last == first {
		last = 0
	}
	return first, last, nil
}

func parsePort(v string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", v)
	}
	return uint16(n), nil
}

// Chain names inside a container's namespace.
const (
	chainInput = "input"
	// chainOutput is shared with the host table.
)

// PlanContainer computes the ruleset of a container's table: input and
// output chains with established/related, loopback and neighbour
// discovery accepted first, then the rules in order, then the policy.
func PlanContainer(rules []Rule, defaults Policy) (*Ruleset, error) {
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return nil, err
		}
	}
	if defaults.Ingress > Deny || defaults.Egress > Deny {
		return nil, errdefs.Invalid("firewall default policy: want allow or deny")
	}
	in := Chain{Name: chainInput, Type: TypeFilter, Hook: HookInput, Priority: PriorityFilter, Drop: defaults.Ingress == Deny,
		Rules: containerPrologue(true)}
	out := Chain{Name: chainOutput, Type: TypeFilter, Hook: HookOutput, Priority: PriorityFilter, Drop: defaults.Egress == Deny,
		Rules: containerPrologue(false)}
	for _, r := range rules {
		if r.Direction == Ingress {
			in.Rules = append(in.Rules, expandRule(r)...)
		} else {
			out.Rules = append(out.Rules, expandRule(r)...)
		}
	}
	return &Ruleset{Chains: []Chain{in, out}}, nil
}

func containerPrologue(ingress bool) []ChainRule {
	lo := ChainRule{IIF: "lo", Verdict: Verdict{Kind: Accept}}
	if !ingress {
		lo = ChainRule{OIF: "lo", Verdict: Verdict{Kind: Accept}}
	}
	return []ChainRule{
		{CtState: CtEstablished | CtRelated, Verdict: Verdict{Kind: Accept}},
		lo,
		// Router and neighbour solicitation/advertisement (133-136).
		{L4Proto: ProtoICMPv6, ICMPv6TypeFirst: 133, ICMPv6TypeLast: 136, Verdict: Verdict{Kind: Accept}},
	}
}

// expandRule turns a container rule into chain rules: one, or two for
// icmp with any peer (ICMP for IPv4 and ICMPv6 for IPv6).
func expandRule(r Rule) []ChainRule {
	cr := ChainRule{Verdict: Verdict{Kind: Accept}}
	if r.Action == Deny {
		cr.Verdict.Kind = Drop
	}
	if r.CIDR.IsValid() {
		if r.Direction == Ingress {
			cr.Saddr = r.CIDR
		} else {
			cr.Daddr = r.CIDR
		}
	}
	switch r.Proto {
	case "tcp", "udp":
		cr.L4Proto = protoNumber(r.Proto)
		cr.DPortFirst, cr.DPortLast = r.PortFirst, r.PortLast
	case "icmp":
		switch {
		case !r.CIDR.IsValid():
			v4, v6 := cr, cr
			v4.L4Proto, v6.L4Proto = ProtoICMP, ProtoICMPv6
			v4.Family, v6.Family = FamilyIPv4, FamilyIPv6
			return []ChainRule{v4, v6}
		case r.CIDR.Addr().Is4():
			cr.L4Proto = ProtoICMP
		default:
			cr.L4Proto = ProtoICMPv6
		}
	}
	return []ChainRule{cr}
}
