package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newSystemCmd() *cobra.Command {
	sys := &cobra.Command{Use: "system", Short: "Manage berth"}
	sys.AddCommand(newDFCmd(), newSystemResetCmd())
	return sys
}

// newSystemResetCmd is Podman's `system reset`: the store back to empty,
// host networking (bridges, firewall table, resolver) included.
func newSystemResetCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "reset [OPTIONS]",
		Short: "Remove every container, image, volume and network of the store, and its host networking",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			if !force && !confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), "WARNING! This will remove every container, image, volume and network of the store "+
				e.Root()+", with their bridges and firewall rules.\nAre you sure you want to continue? [y/N] ") {
				return nil
			}
			return e.Reset(cmd.Context())
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

// dfRow is one line of `berth system df`.
type dfRow struct {
	Type        string
	TotalCount  int
	Active      int
	Size        string
	Reclaimable string
}

func newDFCmd() *cobra.Command {
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth's disk usage",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			du, err := e.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			pct := func(part, whole int64) string {
				if whole == 0 {
					return humanSize(part) + " (0%)"
				}
				return fmt.Sprintf("%s (%d%%)", humanSize(part), part*100/whole)
			}
			rows := []dfRow{
				{Type: "Images", TotalCount: du.Images, Active: du.ImagesActive, Size: humanSize(du.ImagesSize),
					Reclaimable: pct(du.ImagesReclaimable, du.ImagesSize)},
				{Type: "Containers", TotalCount: du.Containers, Active: du.ContainersActive, Size: humanSize(du.ContainersSize),
					Reclaimable: pct(du.ContainersReclaimable, du.ContainersSize)},
				{Type: "Local Volumes", TotalCount: du.Volumes, Active: du.VolumesActive, Size: humanSize(du.VolumesSize),
					Reclaimable: pct(du.VolumesReclaimable, du.VolumesSize)},
				{Type: "Build Cache", Size: "0B", Reclaimable: "0B (0%)"},
			}
			def := "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
			if err := printRows(cmd.OutOrStdout(), format, def, anyRows(rows)); err != nil {
				return err
			}
			if verbose {
				fmt.Fprintf(cmd.OutOrStdout(), "\nBlobs: %s in %d files\nUnpacked layers: %s in %d layers\n",
					humanSize(du.BlobBytes), du.Blobs, humanSize(du.LayerBytes), du.Layers)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "format output with a Go template")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show where the space goes")
	return cmd
}
