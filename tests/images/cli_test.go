package images_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil/registrytest"
)

// images, history and inspect show what import's --change wrote, and the
// listing filters and formats work as docker's.
func TestListingFiltersAndFormats(t *testing.T) {
	s := newStore(t)
	tar := busyboxTar(t, nil)
	_, errOut, code := s.run(tar, "import", "-c", "ENV A=1 B=2", "-c", "LABEL tier=web", "-c", `ENTRYPOINT ["/bin/busybox"]`,
		"-c", "WORKDIR /srv", "-c", "EXPOSE 8080", "-m", "first image", "-", "web:1")
	require.Zero(t, code, errOut)
	s.importImage("other:1", map[string][]byte{"x": []byte("x")})
	dangling := s.importImage("", map[string][]byte{"y": []byte("y")})

	var cfg struct {
		Config  ocispec.ImageConfig
		Comment string
	}
	require.NoError(t, json.Unmarshal([]byte(s.must("image", "inspect", "--format", "{{json .}}", "web:1")), &cfg))
	require.Equal(t, []string{"A=1", "B=2"}, cfg.Config.Env)
	require.Equal(t, map[string]string{"tier": "web"}, cfg.Config.Labels)
	require.Equal(t, []string{"/bin/busybox"}, cfg.Config.Entrypoint)
	require.Equal(t, "/srv", cfg.Config.WorkingDir)
	require.Contains(t, cfg.Config.ExposedPorts, "8080/tcp")
	require.Equal(t, "first image", cfg.Comment)

	hist := s.must("history", "--format", "{{.ID}} {{.Comment}}", "web:1")
	require.Regexp(t, `^[0-9a-f]{12} first image\n$`, hist)

	ids := func(args ...string) []string {
		return strings.Fields(s.must(append([]string{"images", "-q", "--no-trunc"}, args...)...))
	}
	require.Equal(t, []string{dangling}, ids("--filter", "dangling=true"))
	require.Len(t, ids("--filter", "dangling=false"), 2)
	require.Equal(t, []string{s.id("web:1")}, ids("--filter", "label=tier=web"))
	require.Equal(t, []string{s.id("web:1")}, ids("--filter", "reference=we*"))
	require.Equal(t, []string{s.id("other:1")}, ids("other"))
	require.Len(t, ids("--filter", "reference=web", "--filter", "reference=other"), 2, "values of one key are OR'ed")

	var row map[string]string
	line := strings.Split(strings.TrimSpace(s.must("images", "--format", "json", "web")), "\n")
	require.Len(t, line, 1)
	require.NoError(t, json.Unmarshal([]byte(line[0]), &row))
	require.Equal(t, "web", row["Repository"])
	require.Equal(t, "1", row["Tag"])
	table := s.must("images", "--format", "table {{.Repository}}\t{{.Tag}}")
	require.True(t, strings.HasPrefix(table, "REPOSITORY"), table)

	require.Contains(t, s.fails("images", "--filter", "colour=red"), "invalid filter")
	require.Contains(t, s.fails("images", "--filter", "dangling=maybe"), "dangling")
	require.Contains(t, s.fails("import", "-c", "RUN true", "-", "bad:1"), "RUN")
	require.Contains(t, s.fails("tag", "web:1", "Bad/Name"), "invalid reference")
	require.Contains(t, s.fails("rmi", "nothing:here"), "no such image")
	require.Len(t, ids(), 3, "failed commands change nothing")
}

// A push to a second repository of the same registry mounts the blobs
// instead of uploading them again.
func TestPushMountsAcrossRepositories(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	s.importImage("app:1", map[string][]byte{"blob": randomBytes(t, 1<<20)})
	s.must("push", "app:1", reg.Host+"/team/one:1")
	out := s.must("push", "app:1", reg.Host+"/team/two:1")
	require.Contains(t, out, "Mounted from team/one")
	require.NotContains(t, out, "Pushed")
}

// A tag naming an index pulls this machine's manifest from it; another
// platform is refused with the list of what the index has.
func TestPullThroughIndex(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	id := s.importImage("app:1", nil)
	s.must("push", "app:1", reg.Host+"/multi/app:single")
	var desc ocispec.Descriptor
	require.NoError(t, json.Unmarshal([]byte(s.must("image", "inspect", "--format", "{{json .Descriptor}}", "app:1")), &desc))

	other := desc
	other.Platform = &ocispec.Platform{OS: "linux", Architecture: "riscv64"}
	host := desc
	host.Platform = &ocispec.Platform{OS: "linux", Architecture: goarch(t, s)}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{other, host}}
	idx.SchemaVersion = 2
	body, err := json.Marshal(idx)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPut, reg.URL+"/v2/multi/app/manifests/multi", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	fresh := newStore(t)
	fresh.must("pull", reg.Host+"/multi/app:multi")
	require.Equal(t, id, fresh.id(reg.Host+"/multi/app:multi"))
	errOut := fresh.fails("pull", "--platform", "linux/s390x", reg.Host+"/multi/app:multi")
	require.Contains(t, errOut, "no image for platform linux/s390x")
	require.Contains(t, errOut, "linux/riscv64")
}

func goarch(t *testing.T, s *store) string {
	t.Helper()
	return strings.TrimSpace(s.must("image", "inspect", "--format", "{{.Architecture}}", "app:1"))
}

// A registry image with zstd layers (written by skopeo) pulls, unpacks
// and keeps its ID.
func TestPullZstdLayers(t *testing.T) {
	requireTool(t, "skopeo")
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	id := s.importImage("app:1", map[string][]byte{"data": randomBytes(t, 256<<10)})
	archive := filepath.Join(t.TempDir(), "app.tar")
	s.must("save", "-o", archive, "app:1")
	name := reg.Host + "/zstd/app:1"
	runTool(t, "skopeo", "copy", "--dest-tls-verify=false", "--dest-compress-format", "zstd",
		"docker-archive:"+archive, "docker://"+name)
	out := runTool(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+name)
	require.Contains(t, out, "zstd", "skopeo must have written zstd layers")

	fresh := newStore(t)
	fresh.must("pull", name)
	require.Equal(t, id, fresh.id(name))
	size := strings.TrimSpace(fresh.must("image", "inspect", "--format", "{{.Size}}", name))
	n, err := strconv.Atoi(size)
	require.NoError(t, err)
	require.Greater(t, n, 256<<10, "the layer must be unpacked")
}
