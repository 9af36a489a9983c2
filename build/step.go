package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/build/cache"
	"github.com/berth-containers/berth/build/dockerfile"
	"github.com/berth-containers/berth/internal/errdefs"
)

// step runs one instruction on s and reports whether the cache served it.
func (r *buildRun) step(ctx context.Context, st *dockerfile.Stage, s *state, lex *shell.Lex, cmd instructions.Command, id int) (bool, error) {
	if done, err := r.configStep(lex, s, cmd); done {
		return false, err
	}
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		return r.runStep(ctx, st, s, lex, c, id)
	case *instructions.CopyCommand:
		if err := c.Expand(expander(lex, s)); err != nil {
			return false, err
		}
		return r.copyStep(ctx, st, s, copyFrom(c))
	case *instructions.AddCommand:
		if err := c.Expand(expander(lex, s)); err != nil {
			return false, err
		}
		return r.copyStep(ctx, st, s, addFrom(c))
	}
	return false, errdefs.Invalid("unsupported instruction %s", strings.ToUpper(cmd.Name()))
}

// fsStep is a step that changes files: its cache key inputs, its history
// line and the work to do on a mounted root filesystem on a miss.
type fsStep struct {
	inputs  any
	history string
	// link makes the layer from an empty directory instead of over the
	// stage's root filesystem (COPY --link).
	link  bool
	apply func(ctx context.Context, root string) error
}

// fsRun runs a step that changes files, or takes its layer from the
// cache, and records it in s.
func (r *buildRun) fsRun(ctx context.Context, s *state, f fsStep) (bool, error) {
	mkdirs := s.mkdirs
	s.mkdirs = nil
	s.advance(map[string]any{"step": f.inputs, "mkdirs": mkdirs})
	if e, ok := r.lookup(ctx, s.key); ok {
		s.created = e.Created
		if e.Layer != nil {
			s.addLayer(Layer{Blob: *e.Layer, DiffID: e.DiffID})
		}
		s.addHistory(f.history, e.Layer == nil)
		return true, nil
	}
	layer, ok, err := r.execute(ctx, s, mkdirs, f)
	if err != nil {
		return false, err
	}
	s.created = time.Now().UTC()
	entry := cache.Entry{Key: s.key, Created: s.created, LastUsed: s.created}
	if ok {
		s.addLayer(layer)
		blob := layer.Blob
		entry.Layer, entry.DiffID, entry.Size = &blob, layer.DiffID, blob.Size
	}
	s.addHistory(f.history, !ok)
	if r.b.Cache != nil {
		if err := r.b.Cache.Put(entry); err != nil {
			return false, err
		}
	}
	return false, nil
}

// lookup finds a usable cache entry: one whose layer is still stored.
func (r *buildRun) lookup(ctx context.Context, key digest.Digest) (cache.Entry, bool) {
	if r.o.NoCache || r.b.Cache == nil {
		return cache.Entry{}, false
	}
	e, ok, err := r.b.Cache.Get(key)
	if err != nil || !ok {
		return cache.Entry{}, false
	}
	if e.Layer != nil && !r.b.Worker.HasLayer(ctx, Layer{Blob: *e.Layer, DiffID: e.DiffID}) {
		// Its layer was collected: run the step again.
		_ = r.b.Cache.Remove(key)
		return cache.Entry{}, false
	}
	return e, true
}

// execute mounts the stage's root filesystem (or an empty directory for
// --link), makes the pending WORKDIRs, runs the step and commits what it
// changed.
func (r *buildRun) execute(ctx context.Context, s *state, mkdirs []string, f fsStep) (Layer, bool, error) {
	if f.link {
		dir, err := os.MkdirTemp(r.o.TempDir, "link-")
		if err != nil {
			return Layer{}, false, fmt.Errorf("make layer directory: %w", err)
		}
		defer os.RemoveAll(dir)
		if err := makeDirs(dir, mkdirs); err != nil {
			return Layer{}, false, err
		}
		if err := f.apply(ctx, dir); err != nil {
			return Layer{}, false, err
		}
		return r.b.Worker.Commit(ctx, dir)
	}
	rootfs, err := r.b.Worker.Rootfs(ctx, s.layers)
	if err != nil {
		return Layer{}, false, err
	}
	defer func() { _ = rootfs.Release(context.WithoutCancel(ctx)) }()
	if err := makeDirs(rootfs.Path(), mkdirs); err != nil {
		return Layer{}, false, err
	}
	if err := f.apply(ctx, rootfs.Path()); err != nil {
		return Layer{}, false, err
	}
	return r.b.Worker.Commit(ctx, rootfs.Changes())
}

// mkdirStep makes WORKDIRs that no later step made.
func (r *buildRun) mkdirStep(ctx context.Context, s *state) error {
	dirs := append([]string(nil), s.mkdirs...)
	_, err := r.fsRun(ctx, s, fsStep{inputs: "workdir", history: "WORKDIR " + dirs[len(dirs)-1],
		apply: func(context.Context, string) error { return nil }})
	return err
}

// makeDirs creates directories (container paths) inside root.
func makeDirs(root string, dirs []string) error {
	for _, d := range dirs {
		p, err := inRoot(root, d)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("WORKDIR %s: %w", d, err)
		}
	}
	return nil
}

// outputWriter sends a step's output to the display.
type outputWriter struct {
	r  *buildRun
	id int
}

func (w outputWriter) Write(p []byte) (int, error) {
	w.r.o.Display.Output(w.id, p)
	return len(p), nil
}

var _ io.Writer = outputWriter{}

// containerPath joins a path with the working directory, keeping a
// trailing slash (it means "a directory" to COPY).
func containerPath(workdir, p string) string {
	if path.IsAbs(p) {
		return p
	}
	out := path.Join(workdir, p)
	if strings.HasSuffix(p, "/") || p == "." {
		out += "/"
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// errNoContext is COPY or ADD from a build with no context.
var errNoContext = errors.New("this build has no context to copy from (the Dockerfile came on stdin)")
