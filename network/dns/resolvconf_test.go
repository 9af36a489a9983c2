package dns

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

const hostConf = `# generated
nameserver 127.0.0.53
nameserver fe80::1%eth0
nameserver 10.0.0.2 ; comment
domain old.example
search corp.example example.net
options edns0 trust-ad
options timeout:2
junk line
`

func TestParseResolvConf(t *testing.T) {
	rc := ParseResolvConf([]byte(hostConf))
	assert.Equal(t, ResolvConf{
		Nameservers: []string{"127.0.0.53", "fe80::1%eth0", "10.0.0.2"},
		Search:      []string{"corp.example", "example.net"},
		Options:     []string{"edns0", "trust-ad", "timeout:2"},
	}, rc)
	assert.Equal(t, []string{"127.0.0.53", "10.0.0.2"}, rc.Upstreams(), "loopback kept, zoned dropped")
	assert.Equal(t, []string{"8.8.8.8", "8.8.4.4"}, ResolvConf{}.Upstreams())
}

func TestContainerResolvConf(t *testing.T) {
	host := ParseResolvConf([]byte(hostConf))
	gw := netip.MustParseAddr("172.18.0.1")

	rc := ContainerResolvConf(host, ContainerDNS{}, gw)
	assert.Equal(t, "nameserver 172.18.0.1\nsearch corp.example example.net\noptions edns0 trust-ad timeout:2 ndots:0\n", string(rc.Bytes()))

	rc = ContainerResolvConf(host, ContainerDNS{Servers: []string{"9.9.9.9"}, Search: []string{"."}, Options: []string{"ndots:2"}}, gw)
	assert.Equal(t, "nameserver 172.18.0.1\noptions ndots:2\n", string(rc.Bytes()), "--dns goes to the records, not the file")

	rc = ContainerResolvConf(host, ContainerDNS{Search: []string{"a.example"}}, netip.Addr{})
	assert.Equal(t, ResolvConf{
		Nameservers: []string{"fe80::1%eth0", "10.0.0.2"},
		Search:      []string{"a.example"},
		Options:     []string{"edns0", "trust-ad", "timeout:2"},
	}, rc, "default bridge: host servers minus loopback")

	rc = ContainerResolvConf(ResolvConf{Nameservers: []string{"127.0.0.53"}}, ContainerDNS{}, netip.Addr{})
	assert.Equal(t, []string{"8.8.8.8", "8.8.4.4"}, rc.Nameservers)

	rc = ContainerResolvConf(host, ContainerDNS{Servers: []string{"1.1.1.1"}}, netip.Addr{})
	assert.Equal(t, []string{"1.1.1.1"}, rc.Nameservers)
}
