package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newSystemCmd() *cobra.Command {
	sys := &cobra.Command{Use: "system", Short: "Manage berth"}
	sys.AddCommand(newDFCmd())
	return sys
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
