package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/build/cache"
)

func newBuilderCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "builder", Short: "Manage the build cache", Args: exactArgs(0)}
	cmd.AddCommand(newBuilderPruneCmd(), newBuilderDuCmd())
	return cmd
}

func newBuilderPruneCmd() *cobra.Command {
	var all, force bool
	var filters []string
	var keep string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove build cache",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := cache.PruneOptions{All: all}
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				if k != "until" {
					return usageError("--filter %s: only until=DURATION is supported", f)
				}
				d, err := time.ParseDuration(v)
				if err != nil {
					return usageError("--filter %s: %v", f, err)
				}
				o.Until = d
			}
			if keep != "" {
				n, err := units.RAMInBytes(keep)
				if err != nil {
					return usageError("--keep-storage %s: %v", keep, err)
				}
				o.KeepBytes = n
			}
			if !o.All && o.Until == 0 && o.KeepBytes == 0 {
				// Docker's default: what no build used for two days.
				o.Until = 48 * time.Hour
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			rep, err := e.PruneBuildCache(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, en := range rep.Removed {
				fmt.Fprintln(out, "Deleted build cache object:", en.Key.Encoded()[:12])
			}
			fmt.Fprintf(out, "Total:\t%s\n", units.HumanSize(float64(rep.Reclaimed)))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "remove all build cache, not just what was unused for 48h")
	fl.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	fl.StringArrayVar(&filters, "filter", nil, "provide filter values (until=DURATION)")
	fl.StringVar(&keep, "keep-storage", "", "amount of disk space to keep for cache")
	return cmd
}

func newBuilderDuCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "du",
		Short: "Show the build cache's disk usage",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			c, err := e.BuildCache()
			if err != nil {
				return err
			}
			entries, err := c.Entries(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tSIZE\tLAST USED")
			var total int64
			for _, en := range entries {
				total += en.Size
				fmt.Fprintf(tw, "%s\t%s\t%s ago\n", en.Key.Encoded()[:12], units.HumanSize(float64(en.Size)),
					units.HumanDuration(time.Since(en.LastUsed)))
			}
			fmt.Fprintf(tw, "Total:\t%s\t\n", units.HumanSize(float64(total)))
			return tw.Flush()
		},
	}
}
