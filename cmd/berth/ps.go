package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/internal/errdefs"
)

// psRow is one line of ps; its fields are what --format templates use,
// named as Docker's.
type psRow struct {
	ID           string `json:"ID"`
	Image        string
	Command      string
	CreatedAt    string
	RunningFor   string
	Status       string
	State        string
	Ports        string
	Names        string
	Size         string
	Labels       string
	Mounts       string
	Networks     string
	LocalVolumes string
	c            *state.Container
}

// Label returns one label's value, for templates.
func (r psRow) Label(name string) string { return r.c.Config.Labels[name] }

const psTableFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psColumns = map[string]string{"ID": "CONTAINER ID", "RunningFor": "CREATED", "Names": "NAMES", "Ports": "PORTS",
	"Command": "COMMAND", "Status": "STATUS", "Image": "IMAGE", "CreatedAt": "CREATED AT", "State": "STATE",
	"LocalVolumes": "LOCAL VOLUMES", "Mounts": "MOUNTS", "Networks": "NETWORKS", "Labels": "LABELS"}

func newPsCmd(use string) *cobra.Command {
	var all, quiet, size, latest, noTrunc bool
	var last int
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS]",
		Short: "List containers",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			cs, err := e.Containers(cmd.Context())
			if err != nil {
				return err
			}
			if latest {
				last = 1
			}
			fs, err := compilePsFilters(filters, cs)
			if err != nil {
				return err
			}
			if err := fs.resolveAncestors(cmd.Context(), e.Images); err != nil {
				return err
			}
			ports, err := e.PortsByContainer(cmd.Context())
			if err != nil {
				return err
			}
			var rows []any
			for _, c := range cs {
				if !all && last <= 0 && !fs.explicitStatus && !engineActive(c.State.Status) {
					continue
				}
				if !fs.match(c) {
					continue
				}
				row := newPsRow(cmd, e, c, noTrunc, size)
				row.Ports = psPorts(ports[c.ID], c.Config.ExposedPorts)
				rows = append(rows, row)
				if last > 0 && len(rows) == last {
					break
				}
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(cmd.OutOrStdout(), r.(psRow).ID)
				}
				return nil
			}
			table := psTableFormat
			if size {
				table += "\t{{.Size}}"
			}
			return printRowsNamed(cmd.OutOrStdout(), format, table, rows, psColumns)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	fl.BoolVarP(&size, "size", "s", false, "display total file sizes")
	fl.BoolVarP(&latest, "latest", "l", false, "show the latest created container (includes all states)")
	fl.IntVarP(&last, "last", "n", -1, "show n last created containers (includes all states)")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.StringVar(&format, "format", "", "format output using a Go template, 'table', 'table TEMPLATE' or 'json'")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}

func engineActive(s string) bool {
	return s == engine.StatusRunning || s == engine.StatusPaused || s == engine.StatusRestarting
}

// psCommand is ps's COMMAND: the command line with arguments that hold
// spaces in single quotes, as Docker shows it.
func psCommand(c *state.Container) string {
	var parts []string
	for _, a := range append(append([]string(nil), c.Config.Entrypoint...), c.Config.Cmd...) {
		if strings.ContainsAny(a, " \t") {
			a = "'" + a + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func newPsRow(cmd *cobra.Command, e *engine.Engine, c *state.Container, noTrunc, size bool) psRow {
	id, command := c.ID, psCommand(c)
	if !noTrunc {
		id = id[:12]
		if len([]rune(command)) > 20 {
			command = string([]rune(command)[:19]) + "…"
		}
	}
	r := psRow{
		ID: id, Image: c.Image, Command: strconv.Quote(command),
		CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), RunningFor: sinceString(c.Created),
		Status: statusText(c), State: c.State.Status, Names: c.Name, c: c,
		Labels: joinLabels(c.Config.Labels), Networks: networkName(c),
	}
	var vols, mounts []string
	for _, m := range c.Mounts {
		if m.Type == "volume" {
			vols = append(vols, m.Name)
			mounts = append(mounts, truncName(m.Name, noTrunc))
		} else {
			mounts = append(mounts, m.Source)
		}
	}
	r.LocalVolumes, r.Mounts = strconv.Itoa(len(vols)), strings.Join(mounts, ",")
	if size {
		rw, virt := e.ContainerSize(cmd.Context(), c)
		r.Size = fmt.Sprintf("%s (virtual %s)", humanSize(rw), humanSize(virt))
	}
	return r
}

func truncName(s string, noTrunc bool) string {
	if noTrunc || len(s) <= 15 {
		return s
	}
	return s[:15] + "…"
}

func networkName(c *state.Container) string {
	switch m := string(c.HostConfig.NetworkMode); m {
	case "", "default":
		return "bridge"
	default:
		return m
	}
}

// psPorts is ps's PORTS column as Docker writes it: each published port
// as "0.0.0.0:8080->80/tcp", then the exposed ones not published, as
// "443/tcp".
func psPorts(ports []state.PublishedPort, exposed network.PortSet) string {
	var out []string
	published := map[string]bool{}
	for _, p := range ports {
		host := "0.0.0.0"
		if p.HostIP.IsValid() {
			host = p.HostIP.String()
		}
		spec := strconv.Itoa(int(p.ContainerPort)) + "/" + p.Proto
		published[spec] = true
		out = append(out, net.JoinHostPort(host, strconv.Itoa(int(p.HostPort)))+"->"+spec)
	}
	var rest []string
	for p := range exposed {
		if !published[p.String()] {
			rest = append(rest, p.String())
		}
	}
	slices.Sort(rest)
	return strings.Join(append(out, rest...), ", ")
}

func joinLabels(l map[string]string) string {
	var out []string
	for k, v := range l {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// statusText is ps's STATUS column, as Docker words it.
func statusText(c *state.Container) string {
	s := c.State
	switch s.Status {
	case engine.StatusRunning, engine.StatusPaused:
		out := "Up " + humanDuration(time.Since(s.StartedAt))
		if s.Health != nil {
			h := string(s.Health.Status)
			if h == "starting" {
				h = "health: starting"
			}
			out += " (" + h + ")"
		}
		if s.Status == engine.StatusPaused {
			out += " (Paused)"
		}
		return out
	case engine.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s", s.ExitCode, sinceString(s.FinishedAt))
	case engine.StatusExited:
		return fmt.Sprintf("Exited (%d) %s", s.ExitCode, sinceString(s.FinishedAt))
	case engine.StatusRemoving:
		return "Removal In Progress"
	case engine.StatusDead:
		return "Dead"
	}
	return "Created"
}

// psFilters are ps's --filter conditions: each key must match, any of
// its values may.
type psFilters struct {
	keys           map[string][]string
	names          map[string]*regexp.Regexp
	explicitStatus bool
	before, since  time.Time
	// ancestors are the IDs of the images the ancestor filter names and
	// of the images built on them.
	ancestors map[string]bool
}

func compilePsFilters(filters []string, cs []*state.Container) (*psFilters, error) {
	m, err := parseFilters(filters)
	if err != nil {
		return nil, err
	}
	f := &psFilters{keys: m, names: map[string]*regexp.Regexp{}}
	for k, vs := range m {
		switch k {
		case "name":
			for _, v := range vs {
				re, err := regexp.Compile(strings.TrimPrefix(v, "/"))
				if err != nil {
					return nil, fmt.Errorf("invalid filter 'name=%s': %w", v, err)
				}
				f.names[v] = re
			}
		case "id", "label", "ancestor", "volume", "health", "network", "is-task":
		case "status":
			f.explicitStatus = true
			for _, v := range vs {
				if !slices.Contains([]string{"created", "restarting", "running", "removing", "paused", "exited", "dead"}, v) {
					return nil, fmt.Errorf("invalid filter 'status=%s'", v)
				}
			}
		case "exited":
			f.explicitStatus = true
			for _, v := range vs {
				if _, err := strconv.Atoi(v); err != nil {
					return nil, fmt.Errorf("invalid filter 'exited=%s'", v)
				}
			}
		case "before", "since":
			for _, v := range vs {
				c := findContainer(cs, v)
				if c == nil {
					return nil, fmt.Errorf("no such container: %s", v)
				}
				if k == "before" {
					f.before = c.Created
				} else {
					f.since = c.Created
				}
			}
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

// resolveAncestors turns each ancestor value into image IDs, as Docker
// does: the image the value names (by name or ID prefix) and every image
// whose layers extend that image's. A value naming no image matches
// nothing; comparing raw strings instead would let "bb" match any image
// ID starting with those hex digits.
func (f *psFilters) resolveAncestors(ctx context.Context, images *image.Store) error {
	vs := f.keys["ancestor"]
	if len(vs) == 0 {
		return nil
	}
	all, err := images.List(ctx)
	if err != nil {
		return err
	}
	f.ancestors = map[string]bool{}
	for _, v := range vs {
		base, err := images.Get(ctx, v)
		if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalidArgument) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ancestor filter %q: %w", v, err)
		}
		for _, img := range all {
			if img.ID() == base.ID() || isDescendant(img, base) {
				f.ancestors[img.ID().String()] = true
			}
		}
	}
	return nil
}

// isDescendant reports whether img was built on base: its layers start
// with all of base's and add more.
func isDescendant(img, base image.Image) bool {
	return len(base.DiffIDs) > 0 && len(img.DiffIDs) > len(base.DiffIDs) &&
		slices.Equal(img.DiffIDs[:len(base.DiffIDs)], base.DiffIDs)
}

func findContainer(cs []*state.Container, ref string) *state.Container {
	for _, c := range cs {
		if c.ID == ref || c.Name == strings.TrimPrefix(ref, "/") || strings.HasPrefix(c.ID, ref) {
			return c
		}
	}
	return nil
}

func (f *psFilters) match(c *state.Container) bool {
	if !f.before.IsZero() && !c.Created.Before(f.before) {
		return false
	}
	if !f.since.IsZero() && !c.Created.After(f.since) {
		return false
	}
	for k, vs := range f.keys {
		one := func(v string) bool { return f.matchOne(c, k, v) }
		// Labels must all match; other keys match any of their values.
		if k == "label" && !all(vs, one) || k != "label" && !slices.ContainsFunc(vs, one) {
			return false
		}
	}
	return true
}

func all(vs []string, fn func(string) bool) bool {
	for _, v := range vs {
		if !fn(v) {
			return false
		}
	}
	return true
}

// matchOne matches one filter value; names are regular expressions, as
// Docker's.
func (f *psFilters) matchOne(c *state.Container, key, v string) bool {
	switch key {
	case "name":
		return f.names[v].MatchString(c.Name)
	case "ancestor":
		return f.ancestors[c.ImageID]
	}
	return matchPs(c, key, v)
}

func matchPs(c *state.Container, key, v string) bool {
	switch key {
	case "id":
		return strings.HasPrefix(c.ID, v)
	case "label":
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := c.Config.Labels[k]
		return ok && (!hasValue || got == want)
	case "status":
		return c.State.Status == v
	case "exited":
		return c.State.Status == engine.StatusExited && strconv.Itoa(c.State.ExitCode) == v
	case "volume":
		return slices.ContainsFunc(c.Mounts, func(m state.MountPoint) bool { return m.Name == v || m.Destination == v })
	case "health":
		h := "none"
		if c.State.Health != nil {
			h = string(c.State.Health.Status)
		}
		return h == v
	case "network":
		return networkName(c) == v
	case "before", "since":
		return true
	}
	return false
}
