package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine/state"
)

func newPortCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var private string
			if len(args) == 2 {
				// A bad port fails before the store is opened.
				p, err := parsePrivatePort(args[1])
				if err != nil {
					return usageError("%v", err)
				}
				private = p
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			ports, err := e.PublishedPorts(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			lines := portLines(ports, private)
			if private != "" && len(lines) == 0 {
				return fmt.Errorf("no public port '%s' published for %s", private, args[0])
			}
			for _, l := range lines {
				fmt.Fprintln(cmd.OutOrStdout(), l)
			}
			return nil
		},
	}
}

// parsePrivatePort reads PORT[/PROTO] and gives it as "80/tcp": the
// protocol defaults to tcp, as docker's does.
func parsePrivatePort(s string) (string, error) {
	port, proto, _ := strings.Cut(s, "/")
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("invalid port (%s)", port)
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return "", fmt.Errorf("invalid protocol (%s): want tcp, udp or sctp", proto)
	}
	return strconv.FormatUint(n, 10) + "/" + proto, nil
}

// portLines is port's output: "80/tcp -> 0.0.0.0:32768" per binding, or,
// for one private port ("80/tcp"), only the host side of its bindings.
// Lines are ordered by container port, protocol and host address.
func portLines(ports []state.PublishedPort, private string) []string {
	ports = slices.Clone(ports)
	slices.SortFunc(ports, func(a, b state.PublishedPort) int {
		return cmp.Or(
			cmp.Compare(a.ContainerPort, b.ContainerPort),
			cmp.Compare(a.Proto, b.Proto),
			shownHostIP(a).Compare(shownHostIP(b)),
			cmp.Compare(a.HostPort, b.HostPort),
		)
	})
	var lines []string
	for _, p := range ports {
		from := strconv.Itoa(int(p.ContainerPort)) + "/" + p.Proto
		to := netip.AddrPortFrom(shownHostIP(p), p.HostPort).String()
		switch private {
		case "":
			lines = append(lines, from+" -> "+to)
		case from:
			lines = append(lines, to)
		}
	}
	return lines
}

// shownHostIP is the host address a binding is shown with: "every
// address" is 0.0.0.0 for a port of an IPv4 container address and :: for
// an IPv6 one, as docker shows them.
func shownHostIP(p state.PublishedPort) netip.Addr {
	switch {
	case p.HostIP.IsValid():
		return p.HostIP
	case p.ContainerIP.Is6() && !p.ContainerIP.Is4In6():
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}
