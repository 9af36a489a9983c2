// Package firewall writes berth's packet filtering and NAT into nftables
// over netlink: the host firewall of all bridge networks (outbound NAT,
// isolation, published ports) and the firewall rules of one container
// inside its network namespace. Nothing here executes the nft program.
//
// # Host firewall
//
// [Plan] turns the whole desired [State] into a [Ruleset]: plain data that
// tests inspect and [Ruleset.Render] prints in nft syntax (for docs and
// --debug). [Host.Apply] writes it in one netlink transaction: the table is
// created if missing, deleted and created again with the new content, so
// the kernel swaps old rules for new ones atomically and no packet ever
// sees a half-written or empty firewall. Applying the same State twice
// yields the same rules; an empty State deletes berth's table.
//
// berth owns one table, "inet berth" (another name per store with the
// Table option, so stores under different roots never replace each
// other's rules; the FORWARD rules below then carry that name as their
// comment). Since Linux 5.2 an inet table may hold nat chains, so one
// table serves IPv4 and IPv6: one object to replace, list and delete. Its
// chains:
//
//	prerouting  nat hook prerouting: packets to a local address jump to ports
//	output      nat hook output: the same for connections made by the host
//	ports       DNAT of each published port to its container
//	postrouting nat hook postrouting: outbound masquerade, hairpin and
//	            loopback masquerade
//	forward     filter hook forward: internal networks stay on their bridge,
//	            different bridges cannot talk, published ports can be reached
//	digest      never jumped to: one rule whose comment is a digest of the
//	            ruleset the table was written from
//
// When the digest in the kernel matches the plan and berth's FORWARD rules
// (below) are in place, Apply writes nothing: most containers join a
// network without publishing ports, and the host firewall does not change.
// A change to the table by hand is not detected; Remove then Apply
// rewrites it.
//
// Published ports are kernel DNAT, not a proxy process. They answer on
// every local address (or only on Port.HostIP), from outside, from
// containers (hairpin: a container reaching a published port through a
// host address is masqueraded so the reply comes back through the host)
// and from the host itself, 127.0.0.1 included: for that Apply sets
// net.ipv4.conf.<bridge>.route_localnet=1 on each bridge with an IPv4
// published port, and connections from 127.0.0.0/8 leaving through the
// bridge are masqueraded to the bridge's address.
//
// IPv6 published ports work on the host's non-loopback IPv6 addresses
// from outside, from containers and from the host itself. They cannot
// work on [::1]: IPv6 has no route_localnet, the kernel refuses to route
// a packet with source ::1 off the loopback device. Plan rejects a port
// published on ::1, and the output chain leaves connections to ::1 alone
// (they are refused as usual). A port publishes in the family of its
// container address only: a v4 container is not reachable through the
// host's v6 addresses (no cross-family NAT in the kernel). Port ranges are
// expanded by the caller: one Port is one port.
//
// # What berth writes outside its table
//
// A base chain's accept does not override a drop of another base chain on
// the same hook. dockerd sets the policy of the iptables-nft FORWARD chain
// (table ip filter, and ip6 filter) to drop, and with br_netfilter loaded
// even traffic bridged between two containers passes that chain. When such
// a chain exists with policy drop, Apply inserts at its top two rules per
// berth bridge, `iifname BRIDGE accept` and `oifname BRIDGE ct state
// established,related accept`, each carrying the comment "berth", in the
// form iptables-nft writes them (an xtables conntrack match, so iptables
// -S and ufw still read the chain). New connections into a bridge from
// elsewhere, published ports reached from other machines, are left to the
// host's own rules there: published ports obey the host's firewall. They
// are found by that comment and replaced in the
// same transaction as berth's table, and removed with an empty State and
// by [Host.Remove]. Isolation stays enforced by berth's own forward chain,
// which still drops what it must. This is the only thing berth writes
// outside "inet berth", besides these sysctls, which it only ever turns on:
// net.ipv4.ip_forward=1 when a non-internal network has an IPv4 subnet,
// net.ipv6.conf.all.forwarding=1 when one has an IPv6 subnet (note: with
// IPv6 forwarding on, the host ignores router advertisements on interfaces
// whose accept_ra is 1), and route_localnet as said above.
//
// # Container firewall
//
// [ApplyContainer] writes table "inet berth" inside a container's network
// namespace with an input and an output chain: established and related
// traffic is accepted first, then loopback, then IPv6 neighbour discovery
// (not tracked by conntrack, and needed for IPv6 to work at all), then the
// user's rules in order (first match wins), then the direction's default
// policy. Re-applying replaces the table atomically.
//
// Rules are given on the command line as comma-separated key=value pairs
// (see [ParseRule]):
//
//	--firewall direction=egress,action=deny,cidr=10.1.0.0/16,proto=tcp,port=443
//	--firewall direction=ingress,action=deny,proto=tcp,port=22
//	--firewall direction=ingress,action=allow,cidr=192.168.1.0/24,proto=tcp,port=8000-8080
//	--firewall direction=egress,action=deny,cidr=2001:db8::/32
//	--firewall direction=egress,action=allow,proto=icmp
//
// Keys: direction (ingress or egress, required), action (allow or deny,
// required), cidr (a prefix or a single address; the peer: source for
// ingress, destination for egress; absent means any), proto (tcp, udp or
// icmp; icmp means ICMPv6 for IPv6 peers; absent means any), port (one
// port or first-last, the destination port: the container's own port for
// ingress, the remote port for egress; only with tcp or udp). Deny drops
// silently. The default policy per direction (see [ParseDefaults]):
//
//	--firewall-default egress=deny
//	--firewall-default ingress=deny,egress=allow
//
// Both directions allow by default.
package firewall
