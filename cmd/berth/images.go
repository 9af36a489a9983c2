package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine"
	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/image/reference"
)

// newImageCmd is "berth image ...", Docker's management command.
func newImageCmd() *cobra.Command {
	imageCmd := &cobra.Command{Use: "image", Short: "Manage images"}
	imageCmd.AddCommand(newImagesCmd("ls", "list"), newRmiCmd("rm", "remove"), newTagCmd("tag"), newImageInspectCmd(),
		newHistoryCmd("history"), newPullCmd(), newPushCmd(), newSaveCmd(), newLoadCmd(),
		newImportCmd("import"), newImagePruneCmd())
	return imageCmd
}

func newPullCmd() *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			ref, err := reference.Parse(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !quiet && ref.Tag != "" {
				fmt.Fprintf(out, "%s: Pulling from %s\n", ref.Tag, ref.Repository().Familiar())
			}
			p := newProgress(out, quiet)
			img, err := e.Pull(cmd.Context(), args[0], engine.PullOptions{Platform: platform, Progress: p.Event})
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(out, ref.String())
				return nil
			}
			fmt.Fprintf(out, "Digest: %s\nStatus: Downloaded newer image for %s\n%s\n",
				repoDigestFor(img, ref), ref.Familiar(), ref.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "pull the image for this platform (os/arch[/variant])")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image name")
	addTLSFlag(cmd)
	return cmd
}

func newPushCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG] [DESTINATION]",
		Short: "Upload an image to a registry",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			dst := args[0]
			if len(args) == 2 {
				dst = args[1]
			}
			ref, err := reference.Parse(dst)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !quiet {
				fmt.Fprintf(out, "The push refers to repository [%s]\n", ref.Repository().String())
			}
			p := newProgress(out, quiet)
			d, err := e.Push(cmd.Context(), args[0], dst, p.Event)
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(out, "%s: digest: %s\n", ref.Tag, d)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	addTLSFlag(cmd)
	return cmd
}

// imageRow is one line of `berth images`; its fields are what --format
// templates see, named as docker names them.
type imageRow struct {
	Repository   string
	Tag          string
	Digest       string
	ID           string
	CreatedSince string
	CreatedAt    string
	Size         string
	Containers   string
	created      time.Time
	labels       map[string]string
}

func newImagesCmd(use string, aliases ...string) *cobra.Command {
	var quiet, digests, noTrunc bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] [REPOSITORY[:TAG]]",
		Aliases: aliases,
		Short:   "List images",
		Args:    rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			rows, err := imageRows(cmd, e, noTrunc)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				filters = append(filters, "reference="+args[0])
			}
			if rows, err = filterImages(cmd, e, rows, filters); err != nil {
				return err
			}
			if quiet {
				return printIDs(cmd.OutOrStdout(), rows)
			}
			def := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			if digests {
				def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			return printRows(cmd.OutOrStdout(), format, def, anyRows(rows))
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	// docker's -a adds intermediate build images; berth keeps none, so
	// every image is listed either way.
	f.BoolP("all", "a", false, "show all images (berth keeps no intermediate images)")
	f.BoolVar(&digests, "digests", false, "show digests")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	f.StringVar(&format, "format", "", "format output: table, json, or a Go template")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output (dangling=, reference=, before=, since=, label=)")
	return cmd
}

func printIDs(w io.Writer, rows []imageRow) error {
	var seen []string
	for _, r := range rows {
		if !slices.Contains(seen, r.ID) {
			seen = append(seen, r.ID)
			if _, err := fmt.Fprintln(w, r.ID); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
	}
	return nil
}

func anyRows[T any](rows []T) []any {
	out := make([]any, len(rows))
	for i := range rows {
		out[i] = rows[i]
	}
	return out
}

// imageRows expands images into docker's rows: one per name, or one
// "<none>" row for a dangling image.
func imageRows(cmd *cobra.Command, e *engine.Engine, noTrunc bool) ([]imageRow, error) {
	imgs, err := e.Images.List(cmd.Context())
	if err != nil {
		return nil, err
	}
	sizes, err := e.LayerSizes(cmd.Context())
	if err != nil {
		return nil, err
	}
	var rows []imageRow
	for _, img := range imgs {
		cfg, err := e.Config(cmd.Context(), img)
		if err != nil {
			return nil, err
		}
		base := imageRow{ID: img.Config.String(), Size: humanSize(engine.ImageSize(img, sizes)), Digest: "<none>",
			Containers: "N/A", labels: cfg.Config.Labels, created: createdAt(img, cfg)}
		if !noTrunc {
			base.ID = image.ShortID(img.Config)
		}
		base.CreatedSince = sinceString(base.created)
		base.CreatedAt = base.created.Local().Format("2006-01-02 15:04:05 -0700 MST")
		rows = append(rows, rowsForNames(base, img)...)
	}
	return rows, nil
}

func rowsForNames(base imageRow, img image.Image) []imageRow {
	if len(img.Names) == 0 {
		r := base
		r.Repository, r.Tag = "<none>", "<none>"
		if len(img.RepoDigests) > 0 {
			r.Digest = digestOf(img.RepoDigests[0])
		}
		return []imageRow{r}
	}
	var rows []imageRow
	for _, n := range img.Names {
		ref, err := reference.Parse(n)
		if err != nil {
			continue
		}
		r := base
		r.Repository, r.Tag = ref.Repository().Familiar(), ref.Tag
		for _, rd := range img.RepoDigests {
			if strings.HasPrefix(rd, ref.Name()+"@") {
				r.Digest = digestOf(rd)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// repoDigestFor is the digest img is known by in ref's repository: the
// one a pull of ref just recorded, whatever else the image was pulled as.
func repoDigestFor(img image.Image, ref reference.Reference) string {
	for _, rd := range img.RepoDigests {
		if name, d, _ := strings.Cut(rd, "@"); name == ref.Name() {
			return d
		}
	}
	return ""
}

func digestOf(repoDigest string) string {
	_, d, _ := strings.Cut(repoDigest, "@")
	return d
}

func newRmiCmd(use string, aliases ...string) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] IMAGE [IMAGE...]",
		Aliases: aliases,
		Short:   "Remove one or more images",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			var failed error
			for _, a := range args {
				rm, err := e.RemoveImage(cmd.Context(), a, force)
				if err != nil {
					logError(err)
					failed = exitCode(1)
					continue
				}
				for _, r := range rm {
					if r.Untagged != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", r.Untagged)
					} else {
						fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", r.Deleted)
					}
				}
			}
			return failed
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the image even when several names point at it")
	return cmd
}

func newTagCmd(use string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Give an image another name",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return e.Tag(cmd.Context(), args[0], args[1])
		},
	}
}

// inspectView is `image inspect`'s JSON, shaped like docker's.
type inspectView struct {
	ID           string            `json:"Id"`
	RepoTags     []string          `json:"RepoTags"`
	RepoDigests  []string          `json:"RepoDigests"`
	Parent       string            `json:"Parent"`
	Comment      string            `json:"Comment"`
	Created      string            `json:"Created,omitempty"`
	Author       string            `json:"Author,omitempty"`
	Config       any               `json:"Config"`
	Architecture string            `json:"Architecture"`
	Variant      string            `json:"Variant,omitempty"`
	Os           string            `json:"Os"`
	Size         int64             `json:"Size"`
	RootFS       inspectRootFS     `json:"RootFS"`
	Metadata     map[string]string `json:"Metadata"`
	Descriptor   any               `json:"Descriptor"`
}

type inspectRootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

func newImageInspectCmd() *cobra.Command {
	return newLookupInspectCmd("IMAGE", "Show details of one or more images",
		func(cmd *cobra.Command, e *engine.Engine, ref string) (any, error) { return inspectImage(cmd, e, ref) })
}

// newLookupInspectCmd is an inspect command over one kind of object
// (image, volume): the first reference that fails ends it.
func newLookupInspectCmd(what, short string, lookup func(*cobra.Command, *engine.Engine, string) (any, error)) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] " + what + " [" + what + "...]",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			var views []any
			for _, a := range args {
				v, err := lookup(cmd, e, a)
				if err != nil {
					return err
				}
				views = append(views, v)
			}
			return writeInspect(cmd.OutOrStdout(), format, views)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

func inspectImage(cmd *cobra.Command, e *engine.Engine, name string) (inspectView, error) {
	img, err := e.Images.Get(cmd.Context(), name)
	if err != nil {
		return inspectView{}, err
	}
	cfg, err := e.DockerConfig(cmd.Context(), img)
	if err != nil {
		return inspectView{}, err
	}
	sizes, err := e.LayerSizes(cmd.Context())
	if err != nil {
		return inspectView{}, err
	}
	v := inspectView{ID: img.Config.String(), RepoTags: []string{}, RepoDigests: []string{},
		Config: cfg.Config, Architecture: cfg.Architecture, Variant: cfg.Variant, Os: cfg.OS,
		Author: cfg.Author, Size: engine.ImageSize(img, sizes), Descriptor: img.Target,
		RootFS: inspectRootFS{Type: "layers"}, Metadata: map[string]string{}}
	for _, n := range img.Names {
		v.RepoTags = append(v.RepoTags, reference.FamiliarString(n))
	}
	for _, rd := range img.RepoDigests {
		v.RepoDigests = append(v.RepoDigests, reference.FamiliarString(rd))
	}
	if cfg.Created != nil {
		v.Created = cfg.Created.Format(time.RFC3339Nano)
	}
	for _, d := range img.DiffIDs {
		v.RootFS.Layers = append(v.RootFS.Layers, d.String())
	}
	if n := len(cfg.History); n > 0 {
		v.Comment = cfg.History[n-1].Comment
	}
	return v, nil
}

// historyRow is one line of `berth history`.
type historyRow struct {
	ID           string
	CreatedSince string
	CreatedAt    string
	CreatedBy    string
	Size         string
	Comment      string
}

func newHistoryCmd(use string) *cobra.Command {
	var quiet, noTrunc, human bool
	var format string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			rows, err := historyRows(cmd, e, args[0], noTrunc, human)
			if err != nil {
				return err
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(cmd.OutOrStdout(), r.ID)
				}
				return nil
			}
			def := "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
			return printRows(cmd.OutOrStdout(), format, def, anyRows(rows))
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	f.BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	f.StringVar(&format, "format", "", "format output with a Go template")
	return cmd
}

// historyRows lists history newest first; each non-empty entry takes the
// next layer's size, and only the top row shows the image ID, as docker.
func historyRows(cmd *cobra.Command, e *engine.Engine, name string, noTrunc, human bool) ([]historyRow, error) {
	img, err := e.Images.Get(cmd.Context(), name)
	if err != nil {
		return nil, err
	}
	cfg, err := e.Config(cmd.Context(), img)
	if err != nil {
		return nil, err
	}
	sizes, err := e.LayerSizes(cmd.Context())
	if err != nil {
		return nil, err
	}
	var rows []historyRow
	layer := 0
	for _, h := range cfg.History {
		r := historyRow{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Size: "0B"}
		if !h.EmptyLayer && layer < len(img.DiffIDs) {
			size := sizes[img.DiffIDs[layer]]
			r.Size = humanSize(size)
			if !human {
				r.Size = fmt.Sprint(size)
			}
			layer++
		}
		if h.Created != nil {
			r.CreatedSince = sinceString(*h.Created)
			r.CreatedAt = h.Created.Format(time.RFC3339)
		}
		if !noTrunc && len(r.CreatedBy) > 45 {
			r.CreatedBy = r.CreatedBy[:44] + "…"
		}
		rows = append(rows, r)
	}
	slices.Reverse(rows)
	if len(rows) > 0 {
		rows[0].ID = image.ShortID(img.Config)
		if noTrunc {
			rows[0].ID = img.Config.String()
		}
	}
	return rows, nil
}

func newImportCmd(use string) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Create an image from a root filesystem tarball",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if platform != "" && platform != image.FormatPlatform(image.HostPlatform()) {
				return fmt.Errorf("--platform %s: berth imports images for this machine only (%s)",
					platform, image.FormatPlatform(image.HostPlatform()))
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			in, closeIn, err := openInput(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			opts := engine.ImportOptions{Changes: changes, Message: message, Source: args[0]}
			if len(args) == 2 {
				opts.Name = args[1]
			}
			img, err := e.Import(cmd.Context(), in, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.Config)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, ...)")
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message for the imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "platform of the image (this machine's only)")
	return cmd
}

// openInput opens a file argument, "-" meaning stdin.
func openInput(cmd *cobra.Command, path string) (io.Reader, func(), error) {
	if path == "-" {
		return cmd.InOrStdin(), func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, func() { f.Close() }, nil
}

func newImagePruneCmd() *cobra.Command {
	var all bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(filters) > 0 {
				return fmt.Errorf("image prune --filter is not supported yet")
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			rep, err := e.PruneImages(cmd.Context(), all)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(rep.Images) > 0 {
				fmt.Fprintln(out, "Deleted Images:")
			}
			for _, img := range rep.Images {
				for _, n := range img.Names {
					fmt.Fprintf(out, "untagged: %s\n", reference.FamiliarString(n))
				}
				fmt.Fprintf(out, "deleted: %s\n", img.Config)
			}
			fmt.Fprintf(out, "\nTotal reclaimed space: %s\n", humanSize(rep.SpaceReclaimed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all images no container uses, not just dangling ones")
	cmd.Flags().BoolP("force", "f", false, "do not prompt for confirmation (berth never prompts)")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "filter (not supported yet)")
	return cmd
}
