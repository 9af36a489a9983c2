package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/build"
	buildprogress "github.com/berth-containers/berth/build/progress"
	"github.com/berth-containers/berth/build/source"
	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/internal/errdefs"
)

// buildFlags are `berth build`'s options.
type buildFlags struct {
	tags, buildArgs, labels, secrets []string
	outputs                          []string
	file, target, progress, iidfile  string
	platform                         string
	noCache, pull, quiet             bool
}

func newBuildCmd() *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, &f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, "name and optionally a tag (format: \"name:tag\")")
	fl.StringVarP(&f.file, "file", "f", "", "name of the Dockerfile (default: \"PATH/Dockerfile\")")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "set build-time variables")
	fl.StringVar(&f.target, "target", "", "set the target build stage to build")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use cache when building the image")
	fl.BoolVar(&f.pull, "pull", false, "always attempt to pull a newer version of the image")
	fl.StringArrayVar(&f.labels, "label", nil, "set metadata for an image")
	fl.StringVar(&f.progress, "progress", "auto", "set type of progress output (auto, plain, tty, quiet)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "suppress the build output and print image ID on success")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to the file")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret to expose to the build (format: \"id=mysecret,src=/local/secret\")")
	fl.StringVar(&f.platform, "platform", "", "set target platform for build (this machine's only)")
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "output destination (format: \"type=local,dest=path\"; types image, docker, oci, tar, local)")
	return cmd
}

// runBuild reads the context and the Dockerfile, builds, and reports.
func runBuild(cmd *cobra.Command, f *buildFlags, path string) error {
	o := build.Options{Target: f.target, NoCache: f.noCache, Pull: f.pull}
	var err error
	if o.Args, err = buildArgs(f.buildArgs); err != nil {
		return usageError("%w", err)
	}
	if o.Labels, err = keyValues("--label", f.labels); err != nil {
		return usageError("%w", err)
	}
	if o.Secrets, err = buildSecrets(f.secrets); err != nil {
		return usageError("%w", err)
	}
	if f.platform != "" {
		if err := checkBuildPlatform(f.platform); err != nil {
			return usageError("%w", err)
		}
	}
	o.Tags = f.tags
	ctxSrc, dockerfile, err := readBuildInput(cmd.InOrStdin(), path, f.file)
	if err != nil {
		return err
	}
	if ctxSrc != nil {
		defer ctxSrc.Close()
	}
	o.Context, o.Dockerfile = ctxSrc, dockerfile
	mode := f.progress
	if f.quiet {
		mode = "quiet"
	}
	display, err := buildprogress.New(cmd.ErrOrStderr(), mode)
	if err != nil {
		return usageError("%w", err)
	}
	o.Display = display
	o.Warn = func(msg string) { display.Message("WARNING: %s", msg) }
	outs, err := openOutputs(f.outputs, cmd.OutOrStdout())
	defer outs.abort()
	if err != nil {
		return err
	}
	o.Tags = append(o.Tags, outs.names...)
	e, err := openEngine(cmd)
	if err != nil {
		return err
	}
	res, err := e.Build(cmd.Context(), o, outs.outs...)
	if err != nil {
		_ = display.Close()
		return err
	}
	if err := outs.commit(); err != nil {
		_ = display.Close()
		return err
	}
	outs.report(display, res.ID.String(), o.Tags)
	if err := display.Close(); err != nil {
		return err
	}
	if f.iidfile != "" {
		if err := os.WriteFile(f.iidfile, []byte(res.ID.String()), 0o644); err != nil {
			return fmt.Errorf("write --iidfile: %w", err)
		}
	}
	if f.quiet && !outs.stdout {
		fmt.Fprintln(cmd.OutOrStdout(), res.ID)
	}
	return nil
}

// readBuildInput opens the context (a directory, or a tar or a Dockerfile
// on stdin for "-") and reads the Dockerfile.
func readBuildInput(stdin io.Reader, path, file string) (*source.Context, []byte, error) {
	if path == "-" {
		return stdinBuildInput(stdin, file)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, errdefs.NotFound("build context %s: %v", path, err)
	}
	if !fi.IsDir() {
		return nil, nil, errdefs.Invalid("build context %s is not a directory", path)
	}
	if file == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, nil, fmt.Errorf("read Dockerfile from stdin: %w", err)
		}
		c, err := source.FromDir(path, "")
		return c, data, err
	}
	name := file
	if name == "" {
		name = filepath.Join(path, "Dockerfile")
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, nil, errdefs.NotFound("Dockerfile: %v", err)
	}
	c, err := source.FromDir(path, name+".dockerignore")
	return c, data, err
}

// stdinBuildInput reads "-": a tar of the context (its Dockerfile, or
// the one -f names, inside) or a bare Dockerfile.
func stdinBuildInput(stdin io.Reader, file string) (*source.Context, []byte, error) {
	br := bufio.NewReaderSize(stdin, 1<<16)
	head, _ := br.Peek(512) // a short stdin is a short Dockerfile
	if !looksLikeArchive(head) {
		data, err := io.ReadAll(br)
		if err != nil {
			return nil, nil, fmt.Errorf("read Dockerfile from stdin: %w", err)
		}
		return nil, data, nil
	}
	name := file
	if name == "" {
		name = "Dockerfile"
	}
	c, err := source.FromTar(br, os.TempDir(), name+".dockerignore")
	if err != nil {
		return nil, nil, err
	}
	data, err := c.ReadFile(name)
	if err != nil {
		c.Close()
		return nil, nil, errdefs.NotFound("Dockerfile %s in the context from stdin: %v", name, err)
	}
	return c, data, nil
}

// looksLikeArchive tells a compressed stream or a tar from text.
func looksLikeArchive(b []byte) bool {
	for _, magic := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z', 0}, {0x28, 0xb5, 0x2f, 0xfd}} {
		if bytes.HasPrefix(b, magic) {
			return true
		}
	}
	return len(b) >= 262 && bytes.Equal(b[257:262], []byte("ustar"))
}

// buildArgs reads --build-arg K=V; a bare K takes the variable from the
// environment, and is left out when unset, as Docker does.
func buildArgs(args []string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid --build-arg %q", a)
		}
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		out[k] = v
	}
	return out, nil
}

// keyValues reads K=V flags (a bare K is K="").
func keyValues(flag string, kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid %s %q", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

// buildSecrets reads --secret id=NAME,src=FILE (source= too; only file
// secrets).
func buildSecrets(specs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range specs {
		var id, src string
		for _, field := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "id":
				id = v
			case "src", "source":
				src = v
			case "type":
				if v != "file" {
					return nil, fmt.Errorf("--secret %s: only file secrets are supported", s)
				}
			default:
				return nil, fmt.Errorf("--secret %s: unknown field %q", s, k)
			}
		}
		if id == "" || src == "" {
			return nil, fmt.Errorf("--secret %s: needs id= and src=", s)
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return nil, fmt.Errorf("--secret %s: %w", s, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("--secret %s: %w", s, err)
		}
		out[id] = abs
	}
	return out, nil
}

// checkBuildPlatform accepts this machine's platform only.
func checkBuildPlatform(p string) error {
	want := image.FormatPlatform(image.HostPlatform())
	if p != want && !strings.HasPrefix(p, want+"/") {
		return fmt.Errorf("--platform %s: berth builds for this machine's platform (%s) only", p, want)
	}
	return nil
}
