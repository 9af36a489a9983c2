// Package build turns a Dockerfile and its context into an image: the
// stages as a graph (what the target does not need is skipped, the rest
// build in parallel), each step's result cached under a key of what it
// read, RUN steps executed in containers over snapshots, and each step's
// changes made a layer.
//
// The store, snapshotter and runtime come through Worker, which the
// engine implements; the build decides what each instruction means.
package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/build/cache"
	"github.com/berth-containers/berth/build/dockerfile"
	"github.com/berth-containers/berth/build/progress"
	"github.com/berth-containers/berth/build/source"
)

// Layer is one layer of an image: its blob and its uncompressed digest.
type Layer struct {
	Blob   ocispec.Descriptor
	DiffID digest.Digest
}

// Base is an image a stage starts from or a COPY --from reads.
type Base struct {
	// Ref is the image's name as resolved.
	Ref string
	// Digest is the manifest's digest: what the cache keys on.
	Digest digest.Digest
	// Config is the image's config.
	Config dockerspec.DockerOCIImage
	// Layers are its layers, bottom first.
	Layers []Layer
}

// Rootfs is a writable root filesystem over layers, mounted for a step.
type Rootfs interface {
	// Path is where the root filesystem is mounted.
	Path() string
	// Changes is the directory holding what the step changed (the
	// overlay's upper directory), with whiteouts for what it removed.
	Changes() string
	// Release unmounts and removes it.
	Release(ctx context.Context) error
}

// Process is what a RUN step executes.
type Process struct {
	Args []string
	Env  []string
	Cwd  string
	User string
	// Network is "none" or "default" (the host's network, as buildkit's
	// default worker gives).
	Network string
	// Mounts are RUN --mount's, ready for the runtime.
	Mounts []specs.Mount
}

// Worker is what a build needs of berth's image store, snapshotter and
// runtime.
type Worker interface {
	// Image resolves an image reference, pulling it when it is missing or
	// when pull is set.
	Image(ctx context.Context, ref string, pull bool) (Base, error)
	// Rootfs mounts a writable root filesystem over layers (bottom first).
	Rootfs(ctx context.Context, layers []Layer) (Rootfs, error)
	// Run runs p in a container on the root filesystem mounted at rootfs,
	// its output to out, and returns an error for a non-zero exit.
	Run(ctx context.Context, rootfs string, p Process, out io.Writer) error
	// Commit stores the changes in dir (whiteouts included) as a layer,
	// blob and unpacked; ok is false when dir holds no change.
	Commit(ctx context.Context, dir string) (l Layer, ok bool, err error)
	// HasLayer reports whether a layer a cache entry names is still
	// stored, blob and unpacked.
	HasLayer(ctx context.Context, l Layer) bool
	// WriteImage stores an image of config over layers, named as given,
	// and returns its config's digest (the image id).
	WriteImage(ctx context.Context, config []byte, layers []Layer, names []string) (digest.Digest, error)
	// ResolveUser turns a USER or --chown value into numbers, reading the
	// passwd and group files of the root filesystem at rootfs.
	ResolveUser(rootfs, user string) (uid, gid int, err error)
}

// Options describe one build.
type Options struct {
	// Dockerfile is the Dockerfile's content.
	Dockerfile []byte
	// Context is what COPY and ADD read; nil for none (a Dockerfile on
	// stdin).
	Context *source.Context
	// Tags name the image.
	Tags []string
	// Args are --build-arg values.
	Args map[string]string
	// Target is the stage to build; "" for the last.
	Target string
	// NoCache runs every step.
	NoCache bool
	// Pull fetches base images even when present.
	Pull bool
	// Labels are added to the image's.
	Labels map[string]string
	// Display shows the progress; nil shows nothing.
	Display progress.Display
	// Warn reports what the build ignored (unused build args).
	Warn func(msg string)
	// Secrets are RUN --mount=type=secret's files, by id.
	Secrets map[string]string
	// TempDir holds files the build makes (heredocs, downloads).
	TempDir string
}

// Result is the image a build made.
type Result struct {
	// ID is the image's config digest.
	ID digest.Digest
	// Config is the image's config.
	Config dockerspec.DockerOCIImage
	// Layers are its layers.
	Layers []Layer
}

// Builder builds images with a worker and a cache.
type Builder struct {
	Worker Worker
	// Cache holds step results between builds; nil caches nothing.
	Cache *cache.Store
	// MountCacheDir keeps RUN --mount=type=cache directories.
	MountCacheDir string
}

// Build builds the target of o's Dockerfile.
func (b *Builder) Build(ctx context.Context, o Options) (Result, error) {
	f, err := dockerfile.Parse(o.Dockerfile)
	if err != nil {
		return Result{}, err
	}
	plan, err := f.Plan(o.Target, o.Args)
	if err != nil {
		return Result{}, err
	}
	if o.Warn != nil && len(plan.UnusedArgs) > 0 {
		o.Warn(fmt.Sprintf("build args were not consumed: %v", plan.UnusedArgs))
	}
	if o.Display == nil {
		// quiet is a mode New always knows.
		o.Display, _ = progress.New(io.Discard, "quiet")
	}
	run := &buildRun{b: b, o: o, f: f, plan: plan, results: map[*dockerfile.Stage]*stageResult{}}
	st, err := run.all(ctx)
	if err != nil {
		return Result{}, err
	}
	return run.finish(ctx, st)
}

// buildRun is one build in progress.
type buildRun struct {
	b    *Builder
	o    Options
	f    *dockerfile.File
	plan *dockerfile.Plan

	mu      sync.Mutex
	results map[*dockerfile.Stage]*stageResult
	stepID  int
}

// stageResult is a stage's outcome, ready once done is closed.
type stageResult struct {
	done  chan struct{}
	state *state
	err   error
}

// all builds the needed stages, each as soon as the stages it reads are
// built, and returns the target's final state.
func (r *buildRun) all(ctx context.Context) (*state, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, st := range r.plan.Needed {
		r.results[st] = &stageResult{done: make(chan struct{})}
	}
	var wg sync.WaitGroup
	for _, st := range r.plan.Needed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := r.results[st]
			res.state, res.err = r.stage(ctx, st)
			if res.err != nil {
				cancel()
			}
			close(res.done)
		}()
	}
	wg.Wait()
	// The first stage to fail is the one to report, not one of those its
	// failure cancelled.
	var errs []error
	for _, st := range r.plan.Needed {
		if err := r.results[st].err; err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
		errs = append(errs, r.results[st].err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r.results[r.plan.Target].state, nil
}

// wait returns a needed stage's final state once it is built.
func (r *buildRun) wait(ctx context.Context, st *dockerfile.Stage) (*state, error) {
	res, ok := r.results[st]
	if !ok {
		return nil, fmt.Errorf("stage %s is not part of this build", st.Label())
	}
	select {
	case <-res.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if res.err != nil {
		return nil, fmt.Errorf("stage %s failed: %w", st.Label(), res.err)
	}
	return res.state, nil
}

// nextStep numbers steps across stages in the order they start.
func (r *buildRun) nextStep() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stepID++
	return r.stepID
}

// finish writes the target's image.
func (r *buildRun) finish(ctx context.Context, st *state) (Result, error) {
	conf := st.image
	for k, v := range r.o.Labels {
		if conf.Config.Labels == nil {
			conf.Config.Labels = map[string]string{}
		}
		conf.Config.Labels[k] = v
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return Result{}, fmt.Errorf("encode image config: %w", err)
	}
	id, err := r.b.Worker.WriteImage(ctx, data, st.layers, r.o.Tags)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: id, Config: conf, Layers: st.layers}, nil
}
