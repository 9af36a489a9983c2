package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	buildprogress "github.com/berth-containers/berth/build/progress"
	"github.com/berth-containers/berth/engine"
)

// outputSpec is one --output: type=TYPE,dest=DEST (and name= for the
// image), or a bare DEST (a local directory; "-" a tar on stdout).
type outputSpec struct {
	typ, dest string
	names     []string
}

// parseOutput reads one --output value as docker buildx does.
func parseOutput(s string) (outputSpec, error) {
	if !strings.Contains(s, "=") {
		if s == "-" {
			return outputSpec{typ: engine.OutputTar, dest: "-"}, nil
		}
		return outputSpec{typ: engine.OutputLocal, dest: s}, nil
	}
	var o outputSpec
	for _, field := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "type":
			o.typ = v
		case "dest":
			o.dest = v
		case "name":
			o.names = append(o.names, v)
		default:
			return o, fmt.Errorf("--output %s: unknown field %q", s, k)
		}
	}
	switch o.typ {
	case "":
		return o, fmt.Errorf("--output %s: no type= (image, docker, oci, tar or local)", s)
	case "registry":
		return o, fmt.Errorf("--output %s: berth build writes no registry; build with -t, then berth push", s)
	case engine.OutputDocker:
		if o.dest == "" { // as docker: no dest loads the image
			o.typ = engine.OutputImage
		}
	case engine.OutputImage:
	case engine.OutputOCI, engine.OutputTar, engine.OutputLocal:
		if o.dest == "" {
			return o, fmt.Errorf("--output %s: type %s needs dest=", s, o.typ)
		}
	default:
		return o, fmt.Errorf("--output %s: unknown type %q (want image, docker, oci, tar or local)", s, o.typ)
	}
	if o.typ == engine.OutputLocal && o.dest == "-" {
		return o, fmt.Errorf("--output %s: a local output needs a directory; use type=tar,dest=- for stdout", s)
	}
	return o, nil
}

// buildOutputs are the engine's outputs for the --output values, writing
// to temporary files and directories that commit puts in place and abort
// removes: a failed build leaves nothing under the asked names.
type buildOutputs struct {
	outs  []engine.BuildOutput
	specs []outputSpec
	names []string // tags the outputs add
	// stdout is whether an output writes to stdout (the image id is
	// not printed there then).
	stdout bool
	moves  [][2]string
	temps  []string
	files  []*os.File
}

// openOutputs prepares the outputs for specs; stdout is "-".
func openOutputs(specs []string, stdout io.Writer) (*buildOutputs, error) {
	b := &buildOutputs{}
	for _, s := range specs {
		o, err := parseOutput(s)
		if err != nil {
			return b, usageError("%w", err)
		}
		b.specs = append(b.specs, o)
		b.names = append(b.names, o.names...)
		out := engine.BuildOutput{Type: o.typ}
		switch {
		case o.typ == engine.OutputImage:
		case o.typ == engine.OutputLocal:
			out.Dir, err = b.dir(o.dest)
		case o.dest == "-":
			if b.stdout {
				return b, usageError("--output: only one output can go to stdout")
			}
			b.stdout = true
			if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				return b, usageError("--output %s: cowardly refusing to write an archive to a terminal", s)
			}
			out.W = stdout
		default:
			out.W, err = b.file(o.dest)
		}
		if err != nil {
			return b, err
		}
		b.outs = append(b.outs, out)
	}
	return b, nil
}

// file opens a temporary file beside dest.
func (b *buildOutputs) file(dest string) (io.Writer, error) {
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*")
	if err != nil {
		return nil, fmt.Errorf("--output: %w", err)
	}
	b.files = append(b.files, f)
	b.temps = append(b.temps, f.Name())
	b.moves = append(b.moves, [2]string{f.Name(), dest})
	return f, nil
}

// dir is dest when it exists (the files go into it); otherwise a
// temporary directory beside it.
func (b *buildOutputs) dir(dest string) (string, error) {
	if fi, err := os.Stat(dest); err == nil {
		if !fi.IsDir() {
			return "", usageError("--output %s: not a directory", dest)
		}
		return dest, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*")
	if err != nil {
		return "", fmt.Errorf("--output: %w", err)
	}
	b.temps = append(b.temps, tmp)
	b.moves = append(b.moves, [2]string{tmp, dest})
	return tmp, nil
}

// report says where the image went.
func (b *buildOutputs) report(d buildprogress.Display, id string, tags []string) {
	stored := len(b.specs) == 0
	for _, o := range b.specs {
		if o.typ == engine.OutputImage {
			stored = true
			continue
		}
		d.Message("exporting to %s %s", o.typ, o.dest)
	}
	if !stored {
		return
	}
	d.Message("writing image %s", id)
	for _, t := range tags {
		d.Message("naming to %s", t)
	}
}

// commit puts the outputs in place.
func (b *buildOutputs) commit() error {
	var errs []error
	for _, f := range b.files {
		if err := f.Chmod(0o644); err != nil {
			errs = append(errs, err)
		}
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("--output: %w", errors.Join(errs...))
	}
	for _, m := range b.moves {
		if err := os.Rename(m[0], m[1]); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
	}
	b.temps = nil
	return nil
}

// abort removes what the outputs wrote.
func (b *buildOutputs) abort() {
	for _, f := range b.files {
		_ = f.Close()
	}
	for _, t := range b.temps {
		_ = os.RemoveAll(t)
	}
}
