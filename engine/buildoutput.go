package engine

import (
	"archive/tar"
	"context"
	"fmt"
	"io"

	"github.com/berth-containers/berth/build"
	"github.com/berth-containers/berth/build/source/archive"
	imagearchive "github.com/berth-containers/berth/image/archive"
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Build output types, as `--output type=` names them.
const (
	// OutputImage records the image in the image store.
	OutputImage = "image"
	// OutputDocker writes a docker-archive (what `berth save` writes).
	OutputDocker = "docker"
	// OutputOCI writes an OCI image layout in a tar.
	OutputOCI = "oci"
	// OutputTar writes the image's files as a tar.
	OutputTar = "tar"
	// OutputLocal writes the image's files into a directory.
	OutputLocal = "local"
)

// BuildOutput is one place a build's image goes.
type BuildOutput struct {
	// Type is one of the Output constants.
	Type string
	// W receives the archive of docker, oci and tar outputs.
	W io.Writer
	// Dir receives the files of a local output; it is created when
	// missing, and what it holds already stays unless a file of the image
	// replaces it.
	Dir string
}

// check refuses an output that lacks its destination.
func (o BuildOutput) check() error {
	switch o.Type {
	case OutputImage:
		return nil
	case OutputDocker, OutputOCI, OutputTar:
		if o.W == nil {
			return errdefs.Invalid("build output %s: no destination", o.Type)
		}
		return nil
	case OutputLocal:
		if o.Dir == "" {
			return errdefs.Invalid("build output local: no destination directory")
		}
		return nil
	}
	return errdefs.Invalid("unknown build output type %q (want image, docker, oci, tar or local)", o.Type)
}

// export writes the built image to out. The image's blobs are in the
// content store (WriteImage wrote them) and the caller holds the GC lock.
func (w *buildWorker) export(ctx context.Context, out BuildOutput, res build.Result, tags []string) error {
	switch out.Type {
	case OutputDocker, OutputOCI:
		f := imagearchive.DockerArchive
		if out.Type == OutputOCI {
			f = imagearchive.OCIArchive
		}
		img := imagearchive.Image{Manifest: w.written.Target}
		for _, t := range tags {
			img.Names = append(img.Names, reference.FamiliarString(t))
		}
		if err := imagearchive.Save(ctx, out.W, w.e.Images.Content, []imagearchive.Image{img}, f); err != nil {
			return fmt.Errorf("build output %s: %w", out.Type, err)
		}
	case OutputTar:
		if err := w.writeFiles(ctx, res.Layers, out.W); err != nil {
			return fmt.Errorf("build output tar: %w", err)
		}
	case OutputLocal:
		if err := w.unpackFiles(ctx, res.Layers, out.Dir); err != nil {
			return fmt.Errorf("build output local %s: %w", out.Dir, err)
		}
	}
	return nil
}

// writeFiles writes the filesystem of layers (bottom first) as a tar.
func (w *buildWorker) writeFiles(ctx context.Context, layers []build.Layer, dst io.Writer) (err error) {
	root, err := w.Rootfs(ctx, layers)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := root.Release(context.WithoutCancel(ctx)); err == nil {
			err = rerr
		}
	}()
	tw := tar.NewWriter(dst)
	if err := writeTree(ctx, tw, root.Path(), ""); err != nil {
		return err
	}
	return tw.Close()
}

// unpackFiles writes the filesystem of layers into dir, as files owned
// by the user running berth.
func (w *buildWorker) unpackFiles(ctx context.Context, layers []build.Layer, dir string) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := w.writeFiles(ctx, layers, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	err := archive.Extract(ctx, pr, dir, archive.Options{})
	pr.CloseWithError(err)
	if werr := <-done; err == nil {
		err = werr
	}
	return err
}
