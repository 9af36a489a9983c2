package build

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/build/cache"
	"github.com/berth-containers/berth/build/dockerfile"
	"github.com/berth-containers/berth/build/files"
	"github.com/berth-containers/berth/build/source"
	"github.com/berth-containers/berth/internal/ctxio"
	"github.com/berth-containers/berth/internal/errdefs"
)

// maxDownload bounds what ADD fetches from a URL.
const maxDownload = 8 << 30

// copyCmd is what COPY and ADD share, after expansion.
type copyCmd struct {
	name     string // COPY or ADD
	srcs     *instructions.SourcesAndDest
	from     string
	chown    string
	chmod    string
	link     bool
	add      bool
	unpack   *bool
	checksum string
	excludes []string
}

func copyFrom(c *instructions.CopyCommand) copyCmd {
	return copyCmd{name: "COPY", srcs: &c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
		link: c.Link, excludes: c.ExcludePatterns}
}

func addFrom(c *instructions.AddCommand) copyCmd {
	return copyCmd{name: "ADD", srcs: &c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, link: c.Link,
		add: true, unpack: c.Unpack, checksum: c.Checksum, excludes: c.ExcludePatterns}
}

// copyStep copies files from the context, a stage, an image, a heredoc or
// a URL into the stage's root filesystem.
func (r *buildRun) copyStep(ctx context.Context, st *dockerfile.Stage, s *state, c copyCmd) (bool, error) {
	mode, err := parseChmod(c.chmod)
	if err != nil {
		return false, err
	}
	var in *copyInput
	if c.from != "" && len(c.srcs.SourceContents) == 0 {
		in, err = r.layerInput(ctx, st, c)
	} else {
		in, err = r.openInput(ctx, st, s, c)
	}
	defer in.release()
	if err != nil {
		return false, err
	}
	dest := containerPath(s.workdir(), c.srcs.DestPath)
	if in.count > 1 && !strings.HasSuffix(dest, "/") {
		return false, errdefs.Invalid("%s with more than one source needs a destination directory ending in /", c.name)
	}
	extract := c.add && (c.unpack == nil || *c.unpack)
	inputs := map[string]any{"op": c.name, "from": in.fromKey, "content": in.sum.String(), "dest": dest,
		"chown": c.chown, "chmod": c.chmod, "link": c.link, "extract": extract, "exclude": c.excludes}
	return r.fsRun(ctx, s, fsStep{inputs: inputs, link: c.link,
		history: c.name + " " + strings.Join(c.srcs.SourcePaths, " ") + " " + c.srcs.DestPath + " # buildkit",
		apply: func(ctx context.Context, root string) error {
			src, matches, err := in.open(ctx)
			if err != nil {
				return err
			}
			o := files.CopyOptions{KeepOwnership: c.from != "", Mode: mode, ExtractArchives: extract && in.local}
			if c.chown != "" {
				uid, gid, err := r.b.Worker.ResolveUser(root, c.chown)
				if err != nil {
					return fmt.Errorf("--chown=%s: %w", c.chown, err)
				}
				o.UID, o.GID = &uid, &gid
			}
			return files.Copy(ctx, src, matches, root, dest, o)
		}})
}

// copyInput is what a COPY reads, as far as its cache key needs it: the
// content digest of the matched files and how many matched. open gives
// the files themselves, mounting a stage's or an image's layers only when
// the step runs.
type copyInput struct {
	fromKey  string
	sum      digest.Digest
	count    int
	local    bool // the context's files (ADD unpacks only those)
	open     func(ctx context.Context) (*source.Context, []source.Match, error)
	releases []func()
}

func (in *copyInput) release() {
	if in == nil {
		return
	}
	for _, f := range in.releases {
		f()
	}
}

// openInput opens and hashes the context, a heredoc or a URL.
func (r *buildRun) openInput(ctx context.Context, st *dockerfile.Stage, s *state, c copyCmd) (*copyInput, error) {
	in := &copyInput{}
	src, fromKey, release, err := r.copySource(ctx, st, s, c)
	if release != nil {
		in.releases = append(in.releases, release)
	}
	if err != nil {
		return in, err
	}
	src.ctx, err = src.ctx.Excluding(c.excludes)
	if err != nil {
		return in, err
	}
	matches, err := src.Match(src.sources)
	if err != nil {
		return in, err
	}
	if in.sum, err = src.ctx.Digest(ctx, matches, source.DigestOptions{}); err != nil {
		return in, err
	}
	in.fromKey, in.count, in.local = fromKey, len(matches), src.local
	in.open = func(context.Context) (*source.Context, []source.Match, error) { return src.ctx, matches, nil }
	return in, nil
}

// layerInput is COPY --from a stage or an image. Layers never change, so
// the digest of what the sources match in them is remembered in the
// build cache by layer chain and sources: a cached build finds it there
// and never mounts them.
func (r *buildRun) layerInput(ctx context.Context, st *dockerfile.Stage, c copyCmd) (*copyInput, error) {
	in := &copyInput{}
	layers, fromKey, err := r.fromLayers(ctx, st, c.from)
	if err != nil {
		return in, err
	}
	in.fromKey = fromKey
	var src *source.Context
	var matches []source.Match
	in.open = func(ctx context.Context) (*source.Context, []source.Match, error) {
		if src != nil {
			return src, matches, nil
		}
		root, release, err := r.mountLayers(ctx, layers)
		if err != nil {
			return nil, nil, err
		}
		in.releases = append(in.releases, release)
		if root, err = root.Excluding(c.excludes); err != nil {
			return nil, nil, err
		}
		if matches, err = root.Match(c.srcs.SourcePaths); err != nil {
			return nil, nil, err
		}
		src = root
		return src, matches, nil
	}
	memo := sourceMemoKey(layers, c)
	if m, ok := r.sourceMemo(memo); ok {
		in.sum, in.count = m.Content, m.Count
		return in, nil
	}
	if _, _, err := in.open(ctx); err != nil {
		return in, err
	}
	if in.sum, err = src.Digest(ctx, matches, source.DigestOptions{Ownership: true}); err != nil {
		return in, err
	}
	in.count = len(matches)
	return in, r.putSourceMemo(memo, sourceMemo{Content: in.sum, Count: in.count})
}

// sourceMemo is what a COPY --from's sources matched in a layer chain.
type sourceMemo struct {
	Content digest.Digest `json:"content"`
	Count   int           `json:"count"`
}

// sourceMemoKey names the memo of c's sources in layers.
func sourceMemoKey(layers []Layer, c copyCmd) digest.Digest {
	h := sha256.New()
	field := func(v string) { fmt.Fprintf(h, "%d:%s", len(v), v) }
	field("copy-source-memo/1")
	for _, l := range layers {
		field(l.DiffID.String())
	}
	field("sources")
	for _, p := range c.srcs.SourcePaths {
		field(p)
	}
	field("exclude")
	for _, p := range c.excludes {
		field(p)
	}
	return digest.NewDigest(digest.SHA256, h)
}

// sourceMemo reads a memo; a bad or missing one is a miss.
func (r *buildRun) sourceMemo(key digest.Digest) (sourceMemo, bool) {
	e, ok, err := r.b.Cache.Get(key)
	if err != nil || !ok {
		return sourceMemo{}, false
	}
	var m sourceMemo
	if json.Unmarshal(e.Config, &m) != nil || m.Content.Validate() != nil {
		return sourceMemo{}, false
	}
	return m, true
}

func (r *buildRun) putSourceMemo(key digest.Digest, m sourceMemo) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode source memo: %w", err)
	}
	return r.b.Cache.Put(cache.Entry{Key: key, Config: data, Created: time.Now()})
}

// copySrc is where a COPY reads and the sources to match there.
type copySrc struct {
	ctx     *source.Context
	sources []string
	// local says the files are the context's (ADD unpacks only local
	// archives, not downloads).
	local bool
}

// Match resolves the sources.
func (c copySrc) Match(sources []string) ([]source.Match, error) { return c.ctx.Match(sources) }

// copySource opens what a COPY reads: heredocs, URLs, a stage, an image or
// the context.
func (r *buildRun) copySource(ctx context.Context, st *dockerfile.Stage, s *state, c copyCmd) (copySrc, string, func(), error) {
	if len(c.srcs.SourceContents) > 0 {
		return r.heredocSource(s, c)
	}
	if c.add {
		if urls := urlSources(c.srcs.SourcePaths); len(urls) > 0 {
			if len(urls) != len(c.srcs.SourcePaths) {
				return copySrc{}, "", nil, errdefs.Invalid("ADD cannot mix URLs and local sources")
			}
			return r.urlSource(ctx, urls, c.checksum)
		}
	}
	if c.checksum != "" {
		return copySrc{}, "", nil, errdefs.Invalid("ADD --checksum is only for http(s) sources")
	}
	ctxSrc, key, release, err := r.readFrom(ctx, st, c.from)
	if err != nil {
		return copySrc{}, "", release, err
	}
	return copySrc{ctx: ctxSrc, sources: c.srcs.SourcePaths, local: c.from == ""}, key, release, nil
}

// readFrom opens the context (from ""), an earlier stage or an image as
// a source of files, with a key naming its content.
func (r *buildRun) readFrom(ctx context.Context, st *dockerfile.Stage, from string) (*source.Context, string, func(), error) {
	if from == "" {
		if r.o.Context == nil {
			return nil, "", nil, errNoContext
		}
		return r.o.Context, "context", nil, nil
	}
	layers, key, err := r.fromLayers(ctx, st, from)
	if err != nil {
		return nil, "", nil, err
	}
	src, release, err := r.mountLayers(ctx, layers)
	return src, key, release, err
}

// fromLayers are the layers of an earlier stage (waited for) or an image,
// with a key naming them.
func (r *buildRun) fromLayers(ctx context.Context, st *dockerfile.Stage, from string) ([]Layer, string, error) {
	if dep := r.plan.Lookup(from, st.Index); dep != nil {
		ds, err := r.wait(ctx, dep)
		if err != nil {
			return nil, "", err
		}
		return ds.layers, "stage " + ds.key.String(), nil
	}
	img, err := r.b.Worker.Image(ctx, from, r.o.Pull)
	if err != nil {
		return nil, "", err
	}
	return img.Layers, "image " + img.Digest.String(), nil
}

// mountLayers mounts layers as a root filesystem to read files from.
func (r *buildRun) mountLayers(ctx context.Context, layers []Layer) (*source.Context, func(), error) {
	rootfs, err := r.b.Worker.Rootfs(ctx, layers)
	if err != nil {
		return nil, nil, err
	}
	release := func() { _ = rootfs.Release(context.WithoutCancel(ctx)) }
	return source.FromRoot(rootfs.Path()), release, nil
}

// heredocSource writes COPY <<EOF bodies as files to copy.
func (r *buildRun) heredocSource(s *state, c copyCmd) (copySrc, string, func(), error) {
	dir, err := os.MkdirTemp(r.o.TempDir, "heredoc-")
	if err != nil {
		return copySrc{}, "", nil, fmt.Errorf("heredoc: %w", err)
	}
	release := func() { os.RemoveAll(dir) }
	var names []string
	for _, sc := range c.srcs.SourceContents {
		data := sc.Data
		if sc.Expand {
			lex := shell.NewLex(r.f.Escape)
			if data, _, err = lex.ProcessWord(data, s.env()); err != nil {
				return copySrc{}, "", release, err
			}
		}
		name := filepath.Base(sc.Path)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return copySrc{}, "", release, fmt.Errorf("heredoc: %w", err)
		}
		names = append(names, name)
	}
	return copySrc{ctx: source.FromRoot(dir), sources: names}, "heredoc", release, nil
}

// urlSources are the sources that are URLs.
func urlSources(srcs []string) []string {
	var out []string
	for _, s := range srcs {
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
			out = append(out, s)
		} else if strings.HasPrefix(s, "git@") || strings.HasSuffix(s, ".git") {
			out = append(out, s)
		}
	}
	return out
}

// urlSource downloads ADD's URLs, checked against --checksum when given;
// their content digest is the key.
func (r *buildRun) urlSource(ctx context.Context, urls []string, checksum string) (copySrc, string, func(), error) {
	if len(urls) != 1 {
		return copySrc{}, "", nil, errdefs.Invalid("ADD takes one URL at a time")
	}
	u := urls[0]
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return copySrc{}, "", nil, errdefs.Invalid("ADD %s: git sources are not supported", u)
	}
	dir, err := os.MkdirTemp(r.o.TempDir, "download-")
	if err != nil {
		return copySrc{}, "", nil, fmt.Errorf("ADD %s: %w", u, err)
	}
	release := func() { os.RemoveAll(dir) }
	src, m, sum, err := files.Fetch(ctx, http.DefaultClient, u, dir, maxDownload)
	if err != nil {
		return copySrc{}, "", release, err
	}
	if err := verifyChecksum(ctx, m.Abs, sum, checksum); err != nil {
		return copySrc{}, "", release, fmt.Errorf("ADD %s: %w", u, err)
	}
	return copySrc{ctx: src, sources: []string{m.Rel}}, "url " + u + " " + sum.String(), release, nil
}

// verifyChecksum checks a download against ADD --checksum (a digest in
// any algorithm go-digest knows); sum is its sha256, already computed.
func verifyChecksum(ctx context.Context, file string, sum digest.Digest, checksum string) error {
	if checksum == "" {
		return nil
	}
	want, err := digest.Parse(checksum)
	if err != nil {
		return errdefs.Invalid("--checksum=%s: %v", checksum, err)
	}
	got := sum
	if want.Algorithm() != sum.Algorithm() {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if got, err = want.Algorithm().FromReader(ctxio.Reader(ctx, f)); err != nil {
			return fmt.Errorf("checksum: %w", err)
		}
	}
	if got != want {
		return errdefs.Invalid("digest mismatch: --checksum=%s, got %s", want, got)
	}
	return nil
}

// parseChmod reads --chmod's octal mode.
func parseChmod(s string) (*fs.FileMode, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return nil, errdefs.Invalid("--chmod=%s: not an octal mode", s)
	}
	m := fs.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return &m, nil
}
