package main

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/engine/state"
)

func TestPortLines(t *testing.T) {
	v4 := netip.MustParseAddr("172.18.0.2")
	v6 := netip.MustParseAddr("fd00::2")
	ports := []state.PublishedPort{
		{Proto: "udp", ContainerIP: v4, ContainerPort: 53, HostPort: 5353},
		{Proto: "tcp", ContainerIP: v6, ContainerPort: 80, HostPort: 32768},
		{Proto: "tcp", ContainerIP: v4, ContainerPort: 80, HostPort: 32768},
		{Proto: "tcp", ContainerIP: v4, ContainerPort: 443, HostPort: 8443, HostIP: netip.MustParseAddr("127.0.0.1")},
		{Proto: "tcp", ContainerIP: v4, ContainerPort: 53, HostPort: 5353},
		{Proto: "tcp", ContainerIP: v6, ContainerPort: 443, HostPort: 8443, HostIP: netip.MustParseAddr("::1")},
	}
	assert.Equal(t, []string{
		"53/tcp -> 0.0.0.0:5353",
		"53/udp -> 0.0.0.0:5353",
		"80/tcp -> 0.0.0.0:32768",
		"80/tcp -> [::]:32768",
		"443/tcp -> 127.0.0.1:8443",
		"443/tcp -> [::1]:8443",
	}, portLines(ports, ""))
	assert.Equal(t, []string{"0.0.0.0:32768", "[::]:32768"}, portLines(ports, "80/tcp"))
	assert.Equal(t, []string{"0.0.0.0:5353"}, portLines(ports, "53/udp"))
	assert.Empty(t, portLines(ports, "8080/tcp"))
	assert.Empty(t, portLines(nil, ""))
	// The caller's slice keeps its order.
	assert.Equal(t, uint16(53), ports[0].ContainerPort)
	assert.Equal(t, "udp", ports[0].Proto)
}

func TestParsePrivatePort(t *testing.T) {
	for in, want := range map[string]string{"80": "80/tcp", "80/tcp": "80/tcp", "53/UDP": "53/udp", "0080": "80/tcp", "9/sctp": "9/sctp"} {
		got, err := parsePrivatePort(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, want := range map[string]string{
		"http":    "invalid port (http)",
		"0":       "invalid port (0)",
		"70000":   "invalid port (70000)",
		"80/icmp": "invalid protocol (icmp): want tcp, udp or sctp",
	} {
		_, err := parsePrivatePort(in)
		assert.EqualError(t, err, want, in)
	}
}
