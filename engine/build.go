package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/build"
	"github.com/berth-containers/berth/build/cache"
	"github.com/berth-containers/berth/engine/specgen"
	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/runtime"
	"github.com/berth-containers/berth/snapshot"
	"github.com/berth-containers/berth/snapshot/layer"
)

// Build builds an image from a Dockerfile: the builder decides what each
// instruction means, the engine's store, snapshotter and runtime do the
// work.
//
// The image goes to the outputs given, or to the image store when none
// is: an output of another type leaves no image in the store.
func (e *Engine) Build(ctx context.Context, o build.Options, outs ...BuildOutput) (build.Result, error) {
	record := len(outs) == 0
	for _, out := range outs {
		if err := out.check(); err != nil {
			return build.Result{}, err
		}
		record = record || out.Type == OutputImage
	}
	for i, t := range o.Tags {
		r, err := reference.Parse(t)
		if err != nil {
			return build.Result{}, err
		}
		if r.Digest != "" {
			return build.Result{}, fmt.Errorf("cannot tag a build with a digest: %s", t)
		}
		o.Tags[i] = r.String()
	}
	b, w, err := e.builder()
	if err != nil {
		return build.Result{}, err
	}
	w.record = record
	// Layers the build makes are referenced by no image until its end:
	// image garbage collection must wait.
	gc, err := e.Images.GCLock(ctx, false)
	if err != nil {
		return build.Result{}, err
	}
	defer func() { _ = gc.Unlock() }()
	tmp, err := os.MkdirTemp(e.buildDir(), "tmp-")
	if err != nil {
		return build.Result{}, fmt.Errorf("build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if o.TempDir == "" {
		o.TempDir = tmp
	}
	res, err := b.Build(ctx, o)
	if err != nil {
		return res, err
	}
	for _, out := range outs {
		if err := w.export(ctx, out, res, o.Tags); err != nil {
			return res, err
		}
	}
	return res, nil
}

// BuildCache opens the build cache, for prune and du.
func (e *Engine) BuildCache() (*cache.Store, error) {
	return cache.Open(filepath.Join(e.buildDir(), "cache"))
}

func (e *Engine) buildDir() string { return filepath.Join(e.root, "build") }

// mountCacheDir keeps RUN --mount=type=cache directories.
func (e *Engine) mountCacheDir() string { return filepath.Join(e.buildDir(), "mounts") }

// builder makes a builder over this engine, and the worker it uses.
func (e *Engine) builder() (*build.Builder, *buildWorker, error) {
	for _, d := range []string{"mounts", "mnt", "bundles"} {
		if err := os.MkdirAll(filepath.Join(e.buildDir(), d), 0o700); err != nil {
			return nil, nil, fmt.Errorf("build directory: %w", err)
		}
	}
	c, err := e.BuildCache()
	if err != nil {
		return nil, nil, err
	}
	w := &buildWorker{e: e, record: true}
	return &build.Builder{Worker: w, Cache: c,
		MountCacheDir: e.mountCacheDir()}, w, nil
}

// buildWorker is the engine as the builder sees it.
type buildWorker struct {
	e    *Engine
	once sync.Once
	rt   *runtime.Runtime
	err  error
	// record is whether WriteImage records the image in the store; when
	// not, it writes the image's blobs for the outputs only.
	record bool
	// written is the image WriteImage wrote last.
	written image.Image
}

// Image resolves a base image, pulling it when missing or asked to.
func (w *buildWorker) Image(ctx context.Context, ref string, pull bool) (build.Base, error) {
	policy := PullMissing
	if pull {
		policy = PullAlways
	}
	req := CreateRequest{Config: &container.Config{Image: ref}, Pull: policy}
	img, conf, err := w.e.imageFor(ctx, req)
	if err != nil {
		return build.Base{}, err
	}
	descs, err := w.e.manifestLayers(ctx, img)
	if err != nil {
		return build.Base{}, err
	}
	if len(descs) != len(img.DiffIDs) {
		return build.Base{}, fmt.Errorf("image %s: %d layers but %d diff ids", ref, len(descs), len(img.DiffIDs))
	}
	base := build.Base{Ref: ref, Digest: img.Target.Digest, Config: conf}
	for i, d := range descs {
		if err := w.e.unpackStored(ctx, d, img.DiffIDs[i]); err != nil {
			return build.Base{}, err
		}
		base.Layers = append(base.Layers, build.Layer{Blob: d, DiffID: img.DiffIDs[i]})
	}
	return base, nil
}

// buildRootfs is a snapshot mounted for one step.
type buildRootfs struct {
	e         *Engine
	key, path string
	upper     string
}

func (r *buildRootfs) Path() string    { return r.path }
func (r *buildRootfs) Changes() string { return r.upper }

// Release unmounts the snapshot and removes it with its changes.
func (r *buildRootfs) Release(ctx context.Context) error {
	if err := snapshot.Unmount(r.path); err != nil {
		return err
	}
	if err := os.Remove(r.path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove %s: %w", r.path, err)
	}
	return r.e.Snapshots.Remove(ctx, r.key)
}

// Rootfs mounts a new writable snapshot over layers.
func (w *buildWorker) Rootfs(ctx context.Context, layers []build.Layer) (build.Rootfs, error) {
	ids := make([]digest.Digest, len(layers))
	for i, l := range layers {
		ids[i] = l.DiffID
	}
	key := "build-" + randomHex()
	mounts, err := w.e.Snapshots.Prepare(ctx, key, ids, false)
	if err != nil {
		return nil, err
	}
	// A step's writable layer is read out into a layer blob of its own
	// (written durably there) and then dropped: syncing it buys nothing.
	mounts = snapshot.Volatile(mounts)
	r := &buildRootfs{e: w.e, key: key, path: filepath.Join(w.e.buildDir(), "mnt", key)}
	if r.upper, err = w.e.Snapshots.UpperDir(key); err == nil {
		if err = os.Mkdir(r.path, 0o755); err == nil {
			err = snapshot.MountAll(mounts, r.path)
		}
	}
	if err != nil {
		_ = os.Remove(r.path)
		_ = w.e.Snapshots.Remove(context.WithoutCancel(ctx), key)
		return nil, fmt.Errorf("mount build root filesystem: %w", err)
	}
	return r, nil
}

func randomHex() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// runtime is the runtime build steps run in, under the build directory
// so that containers' listings never show them.
func (w *buildWorker) runtime() (*runtime.Runtime, error) {
	w.once.Do(func() {
		w.rt, w.err = runtime.New(filepath.Join(w.e.buildDir(), "runtime"), false)
		if w.rt != nil {
			w.rt.Warn = func(string) {}
		}
	})
	return w.rt, w.err
}

// Run runs a RUN step's process in a container on rootfs.
func (w *buildWorker) Run(ctx context.Context, rootfs string, p build.Process, out io.Writer) error {
	rt, err := w.runtime()
	if err != nil {
		return err
	}
	id := "build-" + randomHex()
	bundle := filepath.Join(w.e.buildDir(), "bundles", id)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return fmt.Errorf("build bundle: %w", err)
	}
	defer os.RemoveAll(bundle)
	spec, err := w.spec(id, bundle, rootfs, p)
	if err != nil {
		return err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	stubs, err := mountStubs(rootfs, p.Mounts)
	if err != nil {
		return err
	}
	err = runStep(ctx, rt, id, bundle, out)
	if rerr := removeStubs(rootfs, stubs); err == nil {
		err = rerr
	}
	return err
}

// mountStubs lists the paths the runtime will create in rootfs as mount
// points for a RUN step's --mount targets (each missing target and its
// missing parents), deepest first. They are the runtime's, not the
// step's: removeStubs takes them out again, as buildkit does, so that no
// empty /run/secrets/id or cache directory is left in the image.
func mountStubs(rootfs string, mounts []specs.Mount) ([]string, error) {
	var stubs []string
	seen := map[string]bool{}
	for _, m := range mounts {
		parts := strings.Split(strings.Trim(filepath.Clean(m.Destination), "/"), "/")
		for i := range parts {
			rel := "/" + filepath.Join(parts[:i+1]...)
			full, err := securejoin.SecureJoin(rootfs, rel)
			if err != nil {
				return nil, fmt.Errorf("mount target %s: %w", m.Destination, err)
			}
			if _, err := os.Lstat(full); err == nil {
				continue
			}
			if !seen[rel] {
				seen[rel] = true
				stubs = append(stubs, rel)
			}
		}
	}
	sort.Slice(stubs, func(i, j int) bool { return len(stubs[i]) > len(stubs[j]) })
	return stubs, nil
}

// removeStubs removes the mount points mountStubs listed that are still
// empty: an empty file, or a directory the step left empty.
func removeStubs(rootfs string, stubs []string) error {
	for _, rel := range stubs {
		full, err := securejoin.SecureJoin(rootfs, rel)
		if err != nil {
			return fmt.Errorf("mount point %s: %w", rel, err)
		}
		fi, err := os.Lstat(full)
		if err != nil || !emptyStub(fi) {
			continue // gone, or something the step made there
		}
		if err := os.Remove(full); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("remove mount point %s: %w", rel, err)
		}
	}
	return nil
}

// spec is the OCI spec of a build step: Docker's defaults for a container
// of the step's user, working directory and environment.
func (w *buildWorker) spec(id, bundle, rootfs string, p build.Process) (any, error) {
	hc := &container.HostConfig{NetworkMode: "host"}
	files := specgen.Files{ResolvConf: "/etc/resolv.conf", Hosts: "/etc/hosts"}
	if p.Network == "none" {
		hc.NetworkMode = "none"
		hosts := filepath.Join(bundle, "hosts")
		if err := os.WriteFile(hosts, specgen.Hosts("buildkitsandbox", nil), 0o644); err != nil {
			return nil, fmt.Errorf("write hosts: %w", err)
		}
		files = specgen.Files{Hosts: hosts}
	}
	in := specgen.Input{ID: id, Config: &container.Config{Cmd: p.Args, Env: p.Env, WorkingDir: p.Cwd, User: p.User},
		HostConfig: hc, Rootfs: rootfs, Mounts: p.Mounts, Files: files, CgroupParent: "berth-build",
		CgroupV2: cgroupV2()}
	s, err := specgen.Generate(in)
	if err != nil {
		return nil, err
	}
	s.Process.Terminal = false
	s.Root.Readonly = false
	return s, nil
}

// Commit stores a step's changes as a layer, blob and unpacked.
func (w *buildWorker) Commit(ctx context.Context, dir string) (build.Layer, bool, error) {
	empty, err := emptyDir(dir)
	if err != nil || empty {
		return build.Layer{}, false, err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(layer.Diff(ctx, pw, dir, layer.DiffOptions{Exclude: func(name string) bool {
			return runtimeFiles[strings.TrimPrefix(name, "/")] && stubFile(filepath.Join(dir, name))
		}}))
	}()
	desc, diffID, err := w.e.storeLayer(ctx, pr)
	pr.CloseWithError(err)
	if err != nil {
		return build.Layer{}, false, err
	}
	if err := w.e.unpackStored(ctx, desc, diffID); err != nil {
		return build.Layer{}, false, err
	}
	return build.Layer{Blob: desc, DiffID: diffID}, true, nil
}

// emptyStub says whether a mount point can be what the runtime made: a
// directory (removing one with entries fails) or an empty file.
func emptyStub(fi os.FileInfo) bool {
	return fi.IsDir() || fi.Mode().IsRegular() && fi.Size() == 0
}

// stubFile says whether a runtime file in a step's changes is only the
// empty mount point the runtime made, not something the step wrote.
func stubFile(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == 0
}

// emptyDir says whether a step changed nothing.
func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("read changes: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return false, fmt.Errorf("read changes: %w", err)
	}
	for _, n := range names {
		if !runtimeFiles[n] && (n != "etc" || !onlyStubs(filepath.Join(dir, n))) {
			return false, nil
		}
	}
	return true, nil
}

// onlyStubs says whether a changed /etc holds nothing but the runtime's
// mount points.
func onlyStubs(etc string) bool {
	entries, err := os.ReadDir(etc)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !runtimeFiles["etc/"+e.Name()] || !stubFile(filepath.Join(etc, e.Name())) {
			return false
		}
	}
	return true
}

// HasLayer reports whether a cached layer's blob and unpacked copy remain.
func (w *buildWorker) HasLayer(_ context.Context, l build.Layer) bool {
	return w.e.Images.Content.Has(l.Blob.Digest) && w.e.Snapshots.HasLayer(l.DiffID)
}

// WriteImage stores the built image and names it.
func (w *buildWorker) WriteImage(ctx context.Context, config []byte, layers []build.Layer, names []string) (digest.Digest, error) {
	descs := make([]ocispec.Descriptor, len(layers))
	diffIDs := make([]digest.Digest, len(layers))
	for i, l := range layers {
		descs[i], diffIDs[i] = l.Blob, l.DiffID
	}
	img, err := w.e.writeImageConfig(ctx, json.RawMessage(config), diffIDs, descs)
	if err != nil {
		return "", err
	}
	img.Names = names
	w.written = img
	if !w.record {
		return img.Config, nil
	}
	if _, err := w.e.Images.Put(ctx, img); err != nil {
		return "", err
	}
	return img.Config, nil
}

// ResolveUser turns a user or user:group into numbers from the root
// filesystem's passwd and group files.
func (w *buildWorker) ResolveUser(rootfs, user string) (int, int, error) {
	u, _, err := specgen.ResolveUser(rootfs, user)
	if err != nil {
		return 0, 0, err
	}
	return int(u.UID), int(u.GID), nil
}

var _ build.Worker = (*buildWorker)(nil)

// runStep runs a step's container in the foreground, its stdout and
// stderr to out, and fails on a non-zero exit as Docker words it.
func runStep(ctx context.Context, rt *runtime.Runtime, id, bundle string, out io.Writer) error {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("output pipe: %w", err)
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, pr)
		pr.Close()
		copied <- err
	}()
	code, err := rt.Run(ctx, runtime.RunOptions{CreateOptions: runtime.CreateOptions{ID: id, Bundle: bundle,
		Stdin: devnull, Stdout: pw, Stderr: pw}})
	pw.Close()
	if cerr := <-copied; err == nil && cerr != nil {
		err = fmt.Errorf("read step output: %w", cerr)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("did not complete successfully: exit code: %d", code)
	}
	return nil
}

// keepBuildCache adds the layers the build cache names, blobs and diff
// IDs, to keep: image removal must not take them.
func (e *Engine) keepBuildCache(ctx context.Context, keep map[digest.Digest]bool) error {
	if _, err := os.Stat(filepath.Join(e.buildDir(), "cache")); os.IsNotExist(err) {
		return nil
	}
	c, err := e.BuildCache()
	if err != nil {
		return err
	}
	entries, err := c.Entries(ctx)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if en.Layer != nil {
			keep[en.Layer.Digest], keep[en.DiffID] = true, true
		}
	}
	return nil
}

// PruneBuildCache removes build cache entries as o asks, then the layers
// that only they kept.
func (e *Engine) PruneBuildCache(ctx context.Context, o cache.PruneOptions) (cache.PruneReport, error) {
	c, err := e.BuildCache()
	if err != nil {
		return cache.PruneReport{}, err
	}
	rep, err := c.Prune(ctx, o)
	if err != nil {
		return rep, err
	}
	// RUN --mount=type=cache directories go with -a, or by age.
	n, err := build.PruneMountCache(ctx, e.mountCacheDir(), o.All, o.Until)
	rep.Reclaimed += n
	if err != nil {
		return rep, err
	}
	_, keep, err := e.containerImages(ctx)
	if err != nil {
		return rep, err
	}
	if _, err := e.Images.Collect(ctx, layers{e.Snapshots}, keep); err != nil {
		return rep, err
	}
	return rep, nil
}
