package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
)

// The networks every store has; docker calls them predefined and its
// filters call them builtin.
var predefinedNetworks = []string{network.NetworkBridge, network.NetworkHost, network.NetworkNone}

func newNetworkCmd() *cobra.Command {
	c := &cobra.Command{Use: "network", Short: "Manage networks"}
	c.AddCommand(newNetworkCreateCmd(), newNetworkLsCmd(), newNetworkInspectCmd(), newNetworkRmCmd(),
		newNetworkPruneCmd(), newNetworkConnectCmd(), newNetworkDisconnectCmd())
	return c
}

// networkCreateFlags holds the flags of network create.
type networkCreateFlags struct {
	driver                      string
	subnets, gateways, ipRanges []string
	internal, ipv6              bool
	opts, labels                []string
}

func newNetworkCreateCmd() *cobra.Command {
	var f networkCreateFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ipv6 *bool
			if cmd.Flags().Changed("ipv6") {
				ipv6 = &f.ipv6
			}
			req, err := f.request(args[0], ipv6)
			if err != nil {
				return usageError("%v", err)
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			n, err := e.CreateNetwork(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.driver, "driver", "d", "bridge", "driver to manage the network (bridge only)")
	fl.StringArrayVar(&f.subnets, "subnet", nil, "subnet in CIDR format that represents a network segment (one IPv4 and one IPv6 at most)")
	fl.StringArrayVar(&f.gateways, "gateway", nil, "IPv4 or IPv6 gateway for the subnet that holds it")
	fl.StringArrayVar(&f.ipRanges, "ip-range", nil, "allocate container IPs from a sub-range of the subnet that holds it")
	fl.BoolVar(&f.internal, "internal", false, "restrict external access to the network")
	fl.BoolVar(&f.ipv6, "ipv6", false, "enable IPv6 networking")
	fl.StringArrayVarP(&f.opts, "opt", "o", nil, "set driver specific options (e.g. mtu=1400, com.docker.network.bridge.name=br0)")
	fl.StringArrayVar(&f.labels, "label", nil, "set metadata on a network")
	return cmd
}

// request builds the engine's request from the flags; ipv6 is nil when
// --ipv6 was not given, so the engine picks its default.
func (f *networkCreateFlags) request(name string, ipv6 *bool) (network.CreateRequest, error) {
	if f.driver != network.NetworkBridge {
		return network.CreateRequest{}, fmt.Errorf("network driver %s is not supported: berth has bridge networks", f.driver)
	}
	ipam, err := ipamConfig(f.subnets, f.ipRanges, f.gateways)
	if err != nil {
		return network.CreateRequest{}, err
	}
	opts, err := networkOptions(f.opts)
	if err != nil {
		return network.CreateRequest{}, err
	}
	for _, l := range f.labels {
		if _, err := checkLabel(l); err != nil {
			return network.CreateRequest{}, fmt.Errorf("--label: %w", err)
		}
	}
	req := network.CreateRequest{
		Name: name, Driver: f.driver, EnableIPv6: ipv6, Internal: f.internal,
		Options: opts, Labels: keyValueMap(f.labels),
	}
	if ipam != nil {
		req.IPAM = &network.IPAM{Config: ipam}
	}
	return req, nil
}

// ipamConfig pairs --subnet, --ip-range and --gateway as docker does: each
// range and gateway goes to the subnet that contains it, one of each per
// subnet. berth's networks have one IPv4 and one IPv6 subnet at most.
// The result follows the order of the subnets; nil when none is given.
func ipamConfig(subnets, ipRanges, gateways []string) ([]network.IPAMConfig, error) {
	if len(subnets) < len(ipRanges) || len(subnets) < len(gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	var out []network.IPAMConfig
	for _, s := range subnets {
		p, err := parseNetPrefix("--subnet", s)
		if err != nil {
			return nil, err
		}
		for _, c := range out {
			if c.Subnet.Addr().Is4() == p.Addr().Is4() {
				return nil, fmt.Errorf("--subnet: berth networks have one IPv4 and one IPv6 subnet at most: got %s and %s", c.Subnet, p)
			}
		}
		out = append(out, network.IPAMConfig{Subnet: p})
	}
	for _, s := range ipRanges {
		r, err := parseNetPrefix("--ip-range", s)
		if err != nil {
			return nil, err
		}
		c := subnetOf(out, r.Addr())
		switch {
		case c == nil || c.Subnet.Bits() > r.Bits():
			return nil, fmt.Errorf("no matching subnet for range %s", r)
		case c.IPRange.IsValid():
			return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, c.IPRange, c.Subnet)
		}
		c.IPRange = r
	}
	for _, s := range gateways {
		g, err := netip.ParseAddr(s)
		if err != nil || g.Zone() != "" {
			return nil, fmt.Errorf("invalid --gateway %q: not an IP address", s)
		}
		c := subnetOf(out, g)
		switch {
		case c == nil:
			return nil, fmt.Errorf("no matching subnet for gateway %s", g)
		case c.Gateway.IsValid():
			return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, c.Gateway, c.Subnet)
		}
		c.Gateway = g
	}
	return out, nil
}

// subnetOf finds the configuration whose subnet holds a.
func subnetOf(cs []network.IPAMConfig, a netip.Addr) *network.IPAMConfig {
	for i := range cs {
		if cs[i].Subnet.Contains(a) {
			return &cs[i]
		}
	}
	return nil
}

// parseNetPrefix reads a prefix for flag name, which must have its host
// bits clear: 10.1.2.3/16 is more likely a typo than a wish.
func parseNetPrefix(flag, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid %s %q: want a prefix in CIDR form such as 172.20.0.0/16", flag, s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("invalid %s %s: host bits are set: did you mean %s?", flag, p, m)
	}
	return p, nil
}

// The -o keys that set a bridge network's MTU: berth's short one and
// docker's.
const (
	optMTU       = "mtu"
	optDockerMTU = "com.docker.network.driver.mtu"
)

// networkOptions reads the -o key=value options. Their meaning is the
// engine's; the MTU is checked here because a typo there is common and
// the engine would only see a string.
func networkOptions(opts []string) (map[string]string, error) {
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid option %q for -o: want key=value", o)
		}
		if k == optMTU || k == optDockerMTU {
			if n, err := strconv.Atoi(v); err != nil || n < 68 || n > 65535 {
				return nil, fmt.Errorf("invalid option %q for -o: the MTU must be a number from 68 to 65535", o)
			}
		}
	}
	return keyValueMap(opts), nil
}

// networkRow is one line of network ls, its fields docker's --format
// names; all strings, as docker's JSON output has them.
type networkRow struct {
	ID, Name, Driver, Scope, IPv6, Internal, Labels, CreatedAt string

	labels map[string]string
}

// Label is {{.Label "name"}}.
func (r networkRow) Label(name string) string { return r.labels[name] }

func networkView(n *state.Network, noTrunc bool) networkRow {
	id := n.ID
	if !noTrunc && len(id) > 12 {
		id = id[:12]
	}
	return networkRow{
		ID: id, Name: n.Name, Driver: networkDriver(n), Scope: "local",
		IPv6: strconv.FormatBool(n.EnableIPv6), Internal: strconv.FormatBool(n.Internal),
		Labels: joinLabels(n.Labels), CreatedAt: n.Created.String(), labels: n.Labels,
	}
}

// networkDriver is the driver docker shows: host and none have drivers
// of their own names ("null" for none).
func networkDriver(n *state.Network) string {
	if n.Driver != "" {
		return n.Driver
	}
	switch n.Name {
	case network.NetworkHost:
		return "host"
	case network.NetworkNone:
		return "null"
	}
	return network.NetworkBridge
}

func newNetworkLsCmd() *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs, err := parseFilters(filters)
			if err == nil {
				err = checkNetworkFilters(fs)
			}
			if err != nil {
				return usageError("%v", err)
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			ns, err := e.Networks(cmd.Context())
			if err != nil {
				return err
			}
			slices.SortFunc(ns, func(a, b *state.Network) int { return strings.Compare(a.Name, b.Name) })
			var rows []any
			for _, n := range ns {
				used := false
				if _, ok := fs["dangling"]; ok {
					// Only this filter needs the endpoints.
					in, err := e.InspectNetwork(cmd.Context(), n.ID)
					if err != nil {
						return err
					}
					used = len(in.Containers) > 0
				}
				if !matchNetwork(n, fs, used) {
					continue
				}
				row := networkView(n, noTrunc)
				if quiet {
					fmt.Fprintln(cmd.OutOrStdout(), row.ID)
					continue
				}
				rows = append(rows, row)
			}
			if quiet {
				return nil
			}
			return printRowsNamed(cmd.OutOrStdout(), format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", rows,
				map[string]string{"ID": "NETWORK ID"})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	cmd.Flags().StringVar(&format, "format", "", "format output using a Go template")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (e.g. 'driver=bridge')")
	return cmd
}

// checkNetworkFilters refuses the keys and values network ls does not
// know, in docker's words.
func checkNetworkFilters(fs map[string][]string) error {
	for k, vals := range fs {
		for _, v := range vals {
			switch k {
			case "name", "id", "driver", "label":
			case "type":
				if v != "custom" && v != "builtin" {
					return fmt.Errorf("invalid filter: 'type'='%s'", v)
				}
			case "dangling":
				if _, err := parseDangling(v); err != nil {
					return err
				}
			default:
				return fmt.Errorf("invalid filter '%s'", k)
			}
		}
	}
	return nil
}

func parseDangling(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("invalid filter 'dangling=%s'", v)
}

// matchNetwork applies the ls filters, checked by checkNetworkFilters: a
// network must pass every key, and any of the values given for one key.
// name and id match a part, driver exactly, label a key or key=value;
// type is builtin for the predefined networks and custom for the others;
// dangling=true keeps the custom networks no container is connected to
// (used says whether one is).
func matchNetwork(n *state.Network, fs map[string][]string, used bool) bool {
	builtin := slices.Contains(predefinedNetworks, n.Name)
	for k, vals := range fs {
		ok := false
		for _, want := range vals {
			switch k {
			case "name":
				ok = ok || strings.Contains(n.Name, want)
			case "id":
				ok = ok || strings.Contains(n.ID, want)
			case "driver":
				ok = ok || networkDriver(n) == want
			case "type":
				ok = ok || (want == "builtin") == builtin
			case "dangling":
				d, _ := parseDangling(want)
				ok = ok || d == (!builtin && !used)
			case "label":
				lk, lv, hasValue := strings.Cut(want, "=")
				got, has := n.Labels[lk]
				ok = ok || (has && (!hasValue || got == lv))
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func newNetworkInspectCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			// As docker: the networks found are printed, then each one
			// that was not is an error.
			var views []any
			var errs []error
			for _, a := range args {
				v, err := e.InspectNetwork(cmd.Context(), a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				views = append(views, v)
			}
			if err := writeInspect(cmd.OutOrStdout(), format, views); err != nil {
				return err
			}
			return reportAll(errs)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

// reportAll logs each error and ends with status 1 if there was any.
func reportAll(errs []error) error {
	for _, err := range errs {
		logError(err)
	}
	if len(errs) > 0 {
		return exitCode(1)
	}
	return nil
}

func newNetworkRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				err := e.RemoveNetwork(cmd.Context(), ref)
				switch {
				case force && errors.Is(err, errdefs.ErrNotFound):
					// -f: a network that is not there is gone already.
				case err != nil:
					errs = append(errs, err)
				default:
					fmt.Fprintln(cmd.OutOrStdout(), ref)
				}
			}
			return reportAll(errs)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not error if the network does not exist")
	return cmd
}

const networkPruneWarning = "WARNING! This will remove all custom networks not used by at least one container.\n" +
	"Are you sure you want to continue? [y/N] "

func newNetworkPruneCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if !force && !confirm(cmd.InOrStdin(), out, networkPruneWarning) {
				return nil
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			names, err := e.PruneNetworks(cmd.Context())
			if len(names) > 0 {
				fmt.Fprintln(out, "Deleted Networks:")
				for _, n := range names {
					fmt.Fprintln(out, n)
				}
				fmt.Fprintln(out)
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

// confirm writes the question and reads one line of answer: y or yes,
// in any case, is a yes; anything else, end of input included, a no.
func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprint(out, question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		// No answer at all: end the prompt's line.
		fmt.Fprintln(out)
		return false
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// connectFlags holds the flags of network connect.
type connectFlags struct {
	ip, ip6, mac string
	aliases      []string
}

func newNetworkConnectCmd() *cobra.Command {
	var f connectFlags
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			es, err := f.endpoint()
			if err != nil {
				return usageError("%v", err)
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return e.ConnectNetwork(cmd.Context(), args[0], args[1], es)
		},
	}
	cmd.Flags().StringVar(&f.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	cmd.Flags().StringVar(&f.ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	cmd.Flags().StringVar(&f.mac, "mac-address", "", "MAC address of the container on this network (e.g., 92:d0:c6:0a:29:33)")
	cmd.Flags().StringArrayVar(&f.aliases, "alias", nil, "add network-scoped alias for the container")
	return cmd
}

// endpoint builds the endpoint settings from the flags.
func (f *connectFlags) endpoint() (*network.EndpointSettings, error) {
	for _, a := range f.aliases {
		if strings.TrimSpace(a) == "" {
			return nil, errors.New("--alias: an alias must not be empty")
		}
	}
	return endpointSettings(f.ip, f.ip6, f.mac, f.aliases)
}

func newNetworkDisconnectCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return e.DisconnectNetwork(cmd.Context(), args[0], args[1], force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return cmd
}
