package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/internal/testutil"
)

// These tests check the archives against the tools people use them with.

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testutil.Missing(t, "%s is not installed", name)
	}
	return p
}

// run runs a command with a time limit and returns its standard output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, requireTool(t, "skopeo"), append([]string{"--insecure-policy"}, args...)...)
}

func saveFile(t *testing.T, src BlobSource, images []Image, f Format) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "images.tar")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := Save(context.Background(), out, src, images, f); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadFile(t *testing.T, p string, sink BlobSink) []Loaded {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	loaded, err := Load(context.Background(), f, sink)
	if err != nil {
		t.Fatal(err)
	}
	return loaded
}

// readLayout reads the manifest an OCI layout directory names by ref.
func readLayout(t *testing.T, dir, ref string) (ocispec.Descriptor, ocispec.Manifest) {
	t.Helper()
	var idx ocispec.Index
	b, err := os.ReadFile(filepath.Join(dir, fileIndex))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, d := range idx.Manifests {
		if d.Annotations[annotationRefName] != ref {
			continue
		}
		mb, err := os.ReadFile(filepath.Join(dir, blobPathOf(d.Digest)))
		if err != nil {
			t.Fatal(err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(mb, &m); err != nil {
			t.Fatal(err)
		}
		return d, m
	}
	t.Fatalf("layout %s has no %q", dir, ref)
	return ocispec.Descriptor{}, ocispec.Manifest{}
}

func TestSkopeoReadsDockerArchive(t *testing.T) {
	src := newMemStore()
	a, b := twoImages(t, src)
	p := saveFile(t, src, []Image{
		{Names: []string{"foo/a:v1"}, Manifest: a.manifest},
		{Names: []string{"docker.io/foo/b:v2"}, Manifest: b.manifest},
	}, DockerArchive)

	for _, c := range []struct {
		ref string
		img testImage
	}{{"foo/a:v1", a}, {"docker.io/foo/b:v2", b}, {"@1", b}} {
		var m ocispec.Manifest
		if err := json.Unmarshal([]byte(skopeo(t, "inspect", "--raw", "docker-archive:"+p+":"+c.ref)), &m); err != nil {
			t.Fatal(err)
		}
		// skopeo describes a docker archive by its config and diff IDs.
		if m.Config.Digest != c.img.config.Digest {
			t.Errorf("%s: skopeo sees config %s, want %s", c.ref, m.Config.Digest, c.img.config.Digest)
		}
		for i, l := range m.Layers {
			if l.Digest != c.img.diffIDs[i] {
				t.Errorf("%s: skopeo sees layer %d as %s, want %s", c.ref, i, l.Digest, c.img.diffIDs[i])
			}
		}
	}

	// A full copy reads and checks every layer (gzip for a, zstd on top
	// for b).
	dir := filepath.Join(t.TempDir(), "layout")
	for ref, img := range map[string]testImage{"foo/a:v1": a, "docker.io/foo/b:v2": b} {
		skopeo(t, "copy", "docker-archive:"+p+":"+ref, "oci:"+dir+":"+ref)
		_, m := readLayout(t, dir, ref)
		if m.Config.Digest != img.config.Digest || len(m.Layers) != 2 {
			t.Errorf("copied %s: config %s, %d layers", ref, m.Config.Digest, len(m.Layers))
		}
	}
}

func TestSkopeoReadsOCIArchive(t *testing.T) {
	src := newMemStore()
	a, b := twoImages(t, src)
	p := saveFile(t, src, []Image{
		{Names: []string{"foo/a:v1"}, Manifest: a.manifest},
		{Names: []string{"foo/b:v2"}, Manifest: b.manifest},
	}, OCIArchive)
	for _, c := range []struct {
		ref string
		img testImage
	}{{"foo/a:v1", a}, {"foo/b:v2", b}} {
		out := skopeo(t, "inspect", "--raw", "oci-archive:"+p+":"+c.ref)
		var m ocispec.Manifest
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.Digest != c.img.config.Digest ||
			fmtDigests(m.Layers) != fmtDigests(c.img.layers) {
			t.Errorf("%s: skopeo reads manifest %s", c.ref, out)
		}
		if c.img.manifest.MediaType == ocispec.MediaTypeImageManifest && digest.FromString(out) != c.img.manifest.Digest {
			t.Errorf("%s: skopeo reads a different manifest", c.ref)
		}
	}
	dir := filepath.Join(t.TempDir(), "layout")
	skopeo(t, "copy", "oci-archive:"+p+":foo/a:v1", "oci:"+dir+":a")
	if d, _ := readLayout(t, dir, "a"); d.Digest != a.manifest.Digest {
		t.Errorf("skopeo copied manifest %s, want %s", d.Digest, a.manifest.Digest)
	}
	skopeo(t, "copy", "oci-archive:"+p+":foo/b:v2", "oci:"+dir+":b")
	if _, m := readLayout(t, dir, "b"); fmtDigests(m.Layers) != fmtDigests(b.layers) {
		t.Errorf("skopeo copied layers %s, want %s", fmtDigests(m.Layers), fmtDigests(b.layers))
	}
}

// writeLayout writes an OCI layout directory holding img as ref.
func writeLayout(t *testing.T, dir string, s *memStore, img testImage, ref string) {
	t.Helper()
	for _, d := range append([]ocispec.Descriptor{img.manifest, img.config}, img.layers...) {
		p := filepath.Join(dir, blobPathOf(d.Digest))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, s.get(t, d.Digest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	md := img.manifest
	md.Annotations = map[string]string{annotationRefName: ref}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}}
	if err := os.WriteFile(filepath.Join(dir, fileIndex), mustJSON(t, idx), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fileOCILayout), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSkopeoArchives(t *testing.T) {
	src := newMemStore()
	a, _ := twoImages(t, src)
	dir := filepath.Join(t.TempDir(), "layout")
	writeLayout(t, dir, src, a, "src")
	tmp := t.TempDir()

	t.Run("docker-archive", func(t *testing.T) {
		p := filepath.Join(tmp, "docker.tar")
		skopeo(t, "copy", "oci:"+dir+":src", "docker-archive:"+p+":foo/c:v3")
		sink := newMemStore()
		loaded := loadFile(t, p, sink)
		if len(loaded) != 1 || strings.Join(loaded[0].Names, ",") != "docker.io/foo/c:v3" {
			t.Fatalf("loaded %+v", loaded)
		}
		if loaded[0].Config != a.config.Digest {
			t.Errorf("config %s, want %s", loaded[0].Config, a.config.Digest)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(sink.get(t, loaded[0].Manifest.Digest), &m); err != nil {
			t.Fatal(err)
		}
		// skopeo writes uncompressed layers, so the layers are the diff IDs.
		for i, l := range m.Layers {
			if l.Digest != a.diffIDs[i] || l.MediaType != ocispec.MediaTypeImageLayer {
				t.Errorf("layer %d: %+v, want %s", i, l, a.diffIDs[i])
			}
		}
	})
	t.Run("oci-archive", func(t *testing.T) {
		p := filepath.Join(tmp, "oci.tar")
		skopeo(t, "copy", "oci:"+dir+":src", "oci-archive:"+p+":foo/c:v3")
		sink := newMemStore()
		loaded := loadFile(t, p, sink)
		if len(loaded) != 1 || strings.Join(loaded[0].Names, ",") != "foo/c:v3" {
			t.Fatalf("loaded %+v", loaded)
		}
		if loaded[0].Manifest.Digest != a.manifest.Digest || loaded[0].Config != a.config.Digest {
			t.Errorf("loaded %+v, want manifest %s", loaded[0], a.manifest.Digest)
		}
		for _, l := range a.layers {
			sink.get(t, l.Digest)
		}
	})
	t.Run("umoci layout", func(t *testing.T) {
		requireTool(t, "umoci")
		layout := filepath.Join(tmp, "umoci")
		run(t, "umoci", "init", "--layout", layout)
		run(t, "umoci", "new", "--image", layout+":img")
		p := filepath.Join(tmp, "umoci.tar")
		skopeo(t, "copy", "oci:"+layout+":img", "oci-archive:"+p+":img")
		loaded := loadFile(t, p, newMemStore())
		if len(loaded) != 1 || loaded[0].Names[0] != "img" {
			t.Fatalf("loaded %+v", loaded)
		}
	})
}

// TestPodmanLoads loads saved archives with podman into a private store.
func TestPodmanLoads(t *testing.T) {
	podman := requireTool(t, "podman")
	if os.Geteuid() != 0 {
		t.Skip("skipped: podman with a private store needs root here")
	}
	src := newMemStore()
	a, b := twoImages(t, src)
	images := []Image{
		{Names: []string{"localhost/pa:v1"}, Manifest: a.manifest},
		{Names: []string{"localhost/pb:v2"}, Manifest: b.manifest},
	}
	for _, f := range []Format{DockerArchive, OCIArchive} {
		t.Run(f.String(), func(t *testing.T) {
			imgs := images
			if f == OCIArchive {
				// podman load takes one image from an OCI archive.
				imgs = images[:1]
			}
			p := saveFile(t, src, imgs, f)
			// podman refuses a run root path longer than 50 characters.
			root, err := os.MkdirTemp("", "pm")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(root) })
			args := []string{
				"--root", filepath.Join(root, "root"), "--runroot", filepath.Join(root, "run"),
				"--storage-driver", "vfs", "--events-backend", "none", "--tmpdir", filepath.Join(root, "tmp"),
			}
			out := run(t, podman, append(args, "load", "-i", p)...)
			images := run(t, podman, append(args, "images", "--format", "{{.Repository}}:{{.Tag}}")...)
			for _, img := range imgs {
				n := img.Names[0]
				if !strings.Contains(images, n) {
					t.Errorf("podman has no %s after load:\n%s\n%s", n, out, images)
				}
			}
		})
	}
}

// TestDockerLoads checks docker load, when a docker daemon is running.
func TestDockerLoads(t *testing.T) {
	docker := requireTool(t, "docker")
	if err := exec.Command(docker, "info").Run(); err != nil {
		testutil.Missing(t, "no docker daemon is running")
	}
	src := newMemStore()
	a, _ := twoImages(t, src)
	// Only the gzip image: docker 20.10 (Debian 12) cannot read zstd
	// layers, whatever the archive.
	names := []string{"berth-archive-test/a:v1", "berth-archive-test/a:v2"}
	p := saveFile(t, src, []Image{{Names: names, Manifest: a.manifest}}, DockerArchive)
	t.Cleanup(func() {
		_ = exec.Command(docker, append([]string{"rmi", "-f"}, names...)...).Run()
	})
	out := run(t, docker, "load", "-i", p)
	for _, n := range names {
		if !strings.Contains(out, n) {
			t.Errorf("docker load did not load %s:\n%s", n, out)
		}
		id := strings.TrimSpace(run(t, docker, "image", "inspect", "--format", "{{.Id}}", n))
		if id == "" {
			t.Errorf("docker has no %s", n)
		}
	}
}
