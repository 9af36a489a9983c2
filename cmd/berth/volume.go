package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine"
	"github.com/berth-containers/berth/engine/state"
)

// volumeJSON is a volume as Docker's inspect shows it.
type volumeJSON struct {
	CreatedAt  string
	Driver     string
	Labels     map[string]string
	Mountpoint string
	Name       string
	Options    map[string]string
	Scope      string
}

func volumeView(v *state.Volume) volumeJSON {
	labels := v.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return volumeJSON{
		CreatedAt: v.Created.Local().Format(time.RFC3339), Driver: v.Driver, Labels: labels,
		Mountpoint: v.Mountpoint, Name: v.Name, Options: v.Options, Scope: "local",
	}
}

func newVolumeCmd() *cobra.Command {
	c := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	c.AddCommand(newVolumeCreateCmd(), newVolumeLsCmd(), newVolumeInspectCmd(), newVolumeRmCmd(), newVolumePruneCmd())
	return c
}

func newVolumeCreateCmd() *cobra.Command {
	var name, driver string
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return usageError("conflicting options: either specify --name or provide positional arg, not both")
				}
				name = args[0]
			}
			if driver != "local" {
				return usageError("volume driver %q is not supported: berth has the local driver", driver)
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			v, err := e.CreateVolume(cmd.Context(), engine.VolumeRequest{Name: name, Labels: keyValueMap(labels), Options: keyValueMap(opts)})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "volume name")
	cmd.Flags().StringVarP(&driver, "driver", "d", "local", "volume driver name")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "set metadata for a volume")
	cmd.Flags().StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options")
	return cmd
}

// keyValueMap reads KEY=VALUE (or KEY) strings into a map; nil if none.
func keyValueMap(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

type volumeRow struct {
	Driver, Name, Mountpoint, Scope, Labels, CreatedAt string
}

func newVolumeLsCmd() *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			fs, err := parseFilters(filters)
			if err != nil {
				return usageError("%v", err)
			}
			vs, err := e.Volumes(cmd.Context())
			if err != nil {
				return err
			}
			users, err := e.VolumeUsers(cmd.Context())
			if err != nil {
				return err
			}
			var rows []any
			for _, v := range vs {
				ok, err := matchVolume(v, fs, len(users[v.Name]) > 0)
				if err != nil {
					return usageError("%v", err)
				}
				if !ok {
					continue
				}
				if quiet {
					fmt.Fprintln(cmd.OutOrStdout(), v.Name)
					continue
				}
				rows = append(rows, volumeRow{Driver: v.Driver, Name: v.Name, Mountpoint: v.Mountpoint, Scope: "local",
					Labels: joinLabels(v.Labels), CreatedAt: v.Created.Local().Format(time.RFC3339)})
			}
			if quiet {
				return nil
			}
			return printRowsNamed(cmd.OutOrStdout(), format, "table {{.Driver}}\t{{.Name}}", rows,
				map[string]string{"Name": "VOLUME NAME", "Driver": "DRIVER", "Mountpoint": "MOUNTPOINT"})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	cmd.Flags().StringVar(&format, "format", "", "format output using a Go template")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (e.g. 'dangling=true')")
	return cmd
}

func matchVolume(v *state.Volume, fs map[string][]string, used bool) (bool, error) {
	for k, vals := range fs {
		ok := false
		for _, want := range vals {
			switch k {
			case "name":
				ok = ok || strings.Contains(v.Name, want)
			case "driver":
				ok = ok || v.Driver == want
			case "dangling":
				ok = ok || (want == "true" || want == "1") == !used
			case "label":
				lk, lv, hasValue := strings.Cut(want, "=")
				got, has := v.Labels[lk]
				ok = ok || (has && (!hasValue || got == lv))
			default:
				return false, fmt.Errorf("invalid filter '%s'", k)
			}
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func newVolumeInspectCmd() *cobra.Command {
	return newLookupInspectCmd("VOLUME", "Display detailed information on one or more volumes",
		func(cmd *cobra.Command, e *engine.Engine, ref string) (any, error) {
			v, err := e.Volume(cmd.Context(), ref)
			if err != nil {
				return nil, err
			}
			return volumeView(v), nil
		})
}

func newVolumeRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return eachContainer(cmd, args, func(name string) error { return e.RemoveVolume(cmd.Context(), name, force) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of one or more volumes")
	return cmd
}

func newVolumePruneCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes (anonymous ones unless --all)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			names, freed, err := e.PruneVolumes(cmd.Context(), all)
			out := cmd.OutOrStdout()
			if len(names) > 0 {
				fmt.Fprintln(out, "Deleted Volumes:")
				for _, n := range names {
					fmt.Fprintln(out, n)
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(freed))
			return err
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	cmd.Flags().BoolP("force", "f", false, "do not prompt for confirmation (berth never prompts)")
	return cmd
}
