package ipam

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"

	"github.com/berth-containers/berth/internal/errdefs"
)

// MACFromIPv4 returns Docker's classic MAC address for an IPv4 address:
// 02:42 followed by the address's four bytes. It is locally administered
// and unicast, and two endpoints of one network never share it because
// they never share an address.
func MACFromIPv4(a netip.Addr) (net.HardwareAddr, error) {
	a = a.Unmap()
	if !a.Is4() {
		return nil, errdefs.Invalid("cannot derive a MAC address from %s: not an IPv4 address", a)
	}
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}, nil
}

// RandomMAC returns a random locally administered unicast MAC address.
func RandomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, fmt.Errorf("generate MAC address: %w", err)
	}
	mac[0] = (mac[0] &^ 0x01) | 0x02 // unicast, locally administered
	return mac, nil
}

// MACFor returns the MAC address of an endpoint whose IPv4 address is v4:
// MACFromIPv4(v4), or a random one when the endpoint has no IPv4 address
// (v4 zero).
func MACFor(v4 netip.Addr) (net.HardwareAddr, error) {
	if v4.IsValid() {
		return MACFromIPv4(v4)
	}
	return RandomMAC()
}

// ParseMAC parses a user's --mac-address: a 48-bit unicast address other
// than all zeros.
func ParseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, errdefs.Invalid("invalid MAC address %q: %w", s, err)
	}
	if len(mac) != 6 {
		return nil, errdefs.Invalid("invalid MAC address %q: not a 48-bit (6 byte) address", s)
	}
	if mac[0]&0x01 != 0 {
		return nil, errdefs.Invalid("invalid MAC address %q: a multicast address cannot be an interface's", s)
	}
	if string(mac) == "\x00\x00\x00\x00\x00\x00" {
		return nil, errdefs.Invalid("invalid MAC address %q: all zeros", s)
	}
	return mac, nil
}
