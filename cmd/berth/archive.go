package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-containers/berth/image/archive"
	"github.com/berth-containers/berth/image/reference"
)

func newSaveCmd() *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Write one or more images to a tar archive (stdout by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := archive.ParseFormat(format)
			if err != nil {
				return err
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			if output == "" {
				if term.IsTerminal(int(os.Stdout.Fd())) {
					return fmt.Errorf("cowardly refusing to write an archive to a terminal: use -o or redirect stdout")
				}
				return e.Save(cmd.Context(), cmd.OutOrStdout(), args, f)
			}
			return saveToFile(cmd, output, func(w io.Writer) error { return e.Save(cmd.Context(), w, args, f) })
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	cmd.Flags().StringVar(&format, "format", "docker-archive", "archive format: docker-archive or oci-archive")
	return cmd
}

// saveToFile writes through a temporary file renamed into place, so a
// failed save never leaves a truncated archive under the asked name.
func saveToFile(cmd *cobra.Command, path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func newLoadCmd() *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load images from a tar archive (stdin by default)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			in, closeIn, err := openInput(cmd, inputOrStdin(input))
			if err != nil {
				return err
			}
			defer closeIn()
			imgs, err := e.Load(cmd.Context(), in)
			if err != nil {
				return err
			}
			for _, img := range imgs {
				if len(img.Names) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image ID: %s\n", img.Config)
				}
				for _, n := range img.Names {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s\n", reference.FamiliarString(n))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from this file instead of stdin")
	cmd.Flags().BoolP("quiet", "q", false, "suppress progress output (berth's load prints none)")
	return cmd
}

func inputOrStdin(path string) string {
	if path == "" {
		return "-"
	}
	return path
}
