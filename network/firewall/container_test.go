package firewall

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

func TestParseRule(t *testing.T) {
	for in, want := range map[string]Rule{
		"direction=egress,action=deny,cidr=10.1.0.0/16,proto=tcp,port=443": {
			Direction: Egress, Action: Deny, CIDR: pfx("10.1.0.0/16"), Proto: "tcp", PortFirst: 443},
		"direction=ingress,action=deny,proto=tcp,port=22": {
			Direction: Ingress, Action: Deny, Proto: "tcp", PortFirst: 22},
		"direction=ingress,action=allow,cidr=192.168.1.0/24,proto=udp,port=8000-8080": {
			Direction: Ingress, Action: Allow, CIDR: pfx("192.168.1.0/24"), Proto: "udp", PortFirst: 8000, PortLast: 8080},
		"direction=egress,action=deny,cidr=2001:db8::/32": {
			Direction: Egress, Action: Deny, CIDR: pfx("2001:db8::/32")},
		"direction=egress,action=deny,cidr=10.0.0.1": {
			Direction: Egress, Action: Deny, CIDR: pfx("10.0.0.1/32")},
		"direction=egress,action=deny,cidr=fd00::1": {
			Direction: Egress, Action: Deny, CIDR: pfx("fd00::1/128")},
		"direction=egress,action=allow,proto=icmp": {
			Direction: Egress, Action: Allow, Proto: "icmp"},
		// Case and spaces are forgiven; host bits are masked; a one-port range is a port.
		" Direction = EGRESS , action=Deny, cidr=10.1.2.3/16, proto=TCP, port=80-80 ": {
			Direction: Egress, Action: Deny, CIDR: pfx("10.1.0.0/16"), Proto: "tcp", PortFirst: 80},
		"action=deny,direction=ingress,proto=any": {Direction: Ingress, Action: Deny},
	} {
		t.Run(in, func(t *testing.T) {
			got, err := ParseRule(in)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			// String gives the flag syntax back.
			again, err := ParseRule(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again)
		})
	}
}

func TestParseRuleErrorsNameTheField(t *testing.T) {
	for in, field := range map[string]string{
		"":                              "rule",
		"direction=egress":              "action",
		"action=deny":                   "direction",
		"direction=up,action=deny":      "direction",
		"direction=egress,action=maybe": "action",
		"direction=egress,action=deny,cidr=10.0.0.0/33":         "cidr",
		"direction=egress,action=deny,cidr=nope":                "cidr",
		"direction=egress,action=deny,proto=sctp":               "proto",
		"direction=egress,action=deny,proto=tcp,port=0":         "port",
		"direction=egress,action=deny,proto=tcp,port=70000":     "port",
		"direction=egress,action=deny,proto=tcp,port=90-80":     "port",
		"direction=egress,action=deny,proto=tcp,port=http":      "port",
		"direction=egress,action=deny,port=80":                  "port",
		"direction=egress,action=deny,proto=icmp,port=80":       "port",
		"direction=egress,action=deny,colour=blue":              "colour",
		"direction=egress,action=deny,direction=ingress":        "direction",
		"direction=egress,action=deny,cidr":                     "cidr",
		"direction=egress,action=deny,cidr=::ffff:10.0.0.0/104": "cidr",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseRule(in)
			require.Error(t, err)
			assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument))
			assert.Contains(t, err.Error(), ": "+field+": ")
		})
	}
}

func TestParseDefaults(t *testing.T) {
	p, err := ParseDefaults()
	require.NoError(t, err)
	assert.Equal(t, Policy{Ingress: Allow, Egress: Allow}, p)

	p, err = ParseDefaults("egress=deny")
	require.NoError(t, err)
	assert.Equal(t, Policy{Egress: Deny}, p)

	p, err = ParseDefaults("ingress=deny,egress=deny", "egress=allow")
	require.NoError(t, err)
	assert.Equal(t, Policy{Ingress: Deny, Egress: Allow}, p)

	for in, field := range map[string]string{
		"egress":         "egress",
		"sideways=deny":  "sideways",
		"ingress=reject": "ingress",
	} {
		_, err := ParseDefaults(in)
		require.Error(t, err, in)
		assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument))
		assert.Contains(t, err.Error(), ": "+field+": ", in)
	}
}

func TestRuleValidate(t *testing.T) {
	assert.NoError(t, Rule{Direction: Ingress}.Validate())
	assert.Error(t, Rule{}.Validate(), "zero direction")
	assert.Error(t, Rule{Direction: Egress, Action: 7}.Validate())
	assert.Error(t, Rule{Direction: Egress, Proto: "gre"}.Validate())
	assert.Error(t, Rule{Direction: Egress, PortFirst: 80}.Validate())
	assert.Error(t, Rule{Direction: Egress, Proto: "tcp", PortFirst: 80, PortLast: 79}.Validate())
	assert.Error(t, Rule{Direction: Egress, Proto: "tcp", PortLast: 79}.Validate())
}

func TestPlanContainer(t *testing.T) {
	rs, err := PlanContainer([]Rule{
		{Direction: Egress, Action: Deny, CIDR: pfx("10.1.0.0/16"), Proto: "tcp", PortFirst: 443},
		{Direction: Ingress, Action: Deny, Proto: "tcp", PortFirst: 22},
		{Direction: Ingress, Action: Allow, CIDR: pfx("fd00::/8"), Proto: "udp", PortFirst: 5000, PortLast: 5010},
		{Direction: Egress, Action: Deny, Proto: "icmp"},
		{Direction: Egress, Action: Allow, CIDR: pfx("10.9.0.0/16"), Proto: "icmp"},
	}, Policy{Egress: Deny})
	require.NoError(t, err)
	require.Len(t, rs.Chains, 2)
	in, out := rs.Chains[0], rs.Chains[1]
	assert.Equal(t, HookInput, in.Hook)
	assert.False(t, in.Drop)
	assert.Equal(t, HookOutput, out.Hook)
	assert.True(t, out.Drop)
	assert.Equal(t, []string{
		`ct state established,related accept`,
		`iifname "lo" accept`,
		`icmpv6 type 133-136 accept`,
		`tcp dport 22 drop`,
		`ip6 saddr fd00::/8 udp dport 5000-5010 accept`,
	}, ruleStrings(in))
	assert.Equal(t, []string{
		`ct state established,related accept`,
		`oifname "lo" accept`,
		`icmpv6 type 133-136 accept`,
		`ip daddr 10.1.0.0/16 tcp dport 443 drop`,
		`meta nfproto ipv4 meta l4proto icmp drop`,
		`meta nfproto ipv6 meta l4proto ipv6-icmp drop`,
		`ip daddr 10.9.0.0/16 meta l4proto icmp accept`,
	}, ruleStrings(out))
	assert.Empty(t, rs.ForwardAccept)
	assert.Empty(t, rs.Sysctls)
}

func TestPlanContainerRejects(t *testing.T) {
	_, err := PlanContainer([]Rule{{Direction: Egress, Proto: "tcp", PortFirst: 2, PortLast: 1}}, Policy{})
	assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument))
	_, err = PlanContainer(nil, Policy{Ingress: 9})
	assert.True(t, errors.Is(err, errdefs.ErrInvalidArgument))
}
