package dns

import (
	"bufio"
	"bytes"
	"net/netip"
	"slices"
	"strings"
)

// dockerDefaultUpstreams are the resolvers Docker falls back to when the
// host names none.
var dockerDefaultUpstreams = []string{"8.8.8.8", "8.8.4.4"}

// ResolvConf is the part of a resolv.conf file berth reads and writes.
type ResolvConf struct {
	Nameservers []string
	Search      []string
	Options     []string
}

// ContainerDNS is what the user asked for a container with --dns,
// --dns-search and --dns-option.
type ContainerDNS struct {
	Servers []string
	Search  []string
	Options []string
}

// ParseResolvConf reads the nameserver, search (or domain) and options
// lines of a resolv.conf; everything else is ignored. A later search or
// domain line replaces an earlier one, as in glibc.
func ParseResolvConf(data []byte) ResolvConf {
	var rc ResolvConf
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			rc.Nameservers = append(rc.Nameservers, f[1])
		case "search", "domain":
			rc.Search = slices.Clone(f[1:])
		case "options":
			rc.Options = append(rc.Options, f[1:]...)
		}
	}
	return rc
}

// Bytes renders the file.
func (rc ResolvConf) Bytes() []byte {
	var b bytes.Buffer
	for _, ns := range rc.Nameservers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(rc.Search) > 0 {
		b.WriteString("search " + strings.Join(rc.Search, " ") + "\n")
	}
	if len(rc.Options) > 0 {
		b.WriteString("options " + strings.Join(rc.Options, " ") + "\n")
	}
	return b.Bytes()
}

// Upstreams returns the host's resolvers for Config.Upstreams: its
// nameservers, loopback ones included (the resolver runs in the host's
// network namespace, so systemd-resolved's 127.0.0.53 answers), or
// Docker's public defaults when it names none. A nameserver with an IPv6
// zone is dropped: the records hold plain addresses.
func (rc ResolvConf) Upstreams() []string {
	var out []string
	for _, ns := range rc.Nameservers {
		if a, err := netip.ParseAddr(ns); err == nil && a.Zone() == "" {
			out = append(out, a.Unmap().String())
		}
	}
	if len(out) == 0 {
		return slices.Clone(dockerDefaultUpstreams)
	}
	return out
}

// ContainerResolvConf renders a container's resolv.conf the way Docker
// does. With the embedded resolver (embedded valid: the gateway of the
// container's user-defined network) the only nameserver is the gateway;
// the user's --dns servers belong in the records (Endpoint.Upstreams),
// where the resolver forwards to them; ndots:0 is added unless an ndots
// option is set, so single-label names go to the resolver as they are.
// Without it (the default bridge) the nameservers are the user's or the
// host's minus loopback ones, which a container cannot reach, falling back
// to Docker's public defaults. --dns-search replaces the host's search
// list ("." alone means none); --dns-option replaces its options.
func ContainerResolvConf(host ResolvConf, user ContainerDNS, embedded netip.Addr) ResolvConf {
	var rc ResolvConf
	switch {
	case embedded.IsValid():
		rc.Nameservers = []string{embedded.String()}
	case len(user.Servers) > 0:
		rc.Nameservers = slices.Clone(user.Servers)
	default:
		for _, ns := range host.Nameservers {
			if a, err := netip.ParseAddr(ns); err == nil && !a.Unmap().IsLoopback() {
				rc.Nameservers = append(rc.Nameservers, ns)
			}
		}
		if len(rc.Nameservers) == 0 {
			rc.Nameservers = slices.Clone(dockerDefaultUpstreams)
		}
	}
	switch {
	case len(user.Search) == 1 && user.Search[0] == ".":
	case len(user.Search) > 0:
		rc.Search = slices.Clone(user.Search)
	default:
		rc.Search = slices.Clone(host.Search)
	}
	rc.Options = slices.Clone(host.Options)
	if len(user.Options) > 0 {
		rc.Options = slices.Clone(user.Options)
	}
	if embedded.IsValid() && !slices.ContainsFunc(rc.Options, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
		rc.Options = append(rc.Options, "ndots:0")
	}
	return rc
}
