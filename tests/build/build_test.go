package build_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildRunsAndConfigures builds an image with every config
// instruction and checks the container it runs.
func TestBuildRunsAndConfigures(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	write(t, dir, "hello.txt", "hello from the context\n")
	write(t, dir, "sub/a", "a\n")
	s.build(dir, `FROM busybox
ARG GREETING=hi
ENV APP_HOME=/app MODE=test
WORKDIR $APP_HOME
COPY hello.txt sub ./
RUN echo "$GREETING $MODE" > /built && chown app /built
LABEL org.example.name="berth test" version=1
EXPOSE 8080 53/udp
VOLUME /data
USER app
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s CMD true
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo default"]
`, "-t", "example/app:1", "--label", "extra=yes")
	out := s.Must("run", "--rm", "example/app:1", "cat /built hello.txt a; pwd; id -u; echo $MODE")
	assert.Equal(t, "hi test\nhello from the context\na\n/app\n1000\ntest\n", out)
	assert.Equal(t, "default\n", s.Must("run", "--rm", "example/app:1"))

	var imgs []struct {
		Config struct {
			Env          []string
			Labels       map[string]string
			ExposedPorts map[string]any
			Volumes      map[string]any
			User         string
			WorkingDir   string
			StopSignal   string
			Entrypoint   []string
			Cmd          []string
			Healthcheck  *struct{ Test []string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(s.Must("image", "inspect", "example/app:1")), &imgs))
	require.Len(t, imgs, 1)
	c := imgs[0].Config
	assert.Contains(t, c.Env, "APP_HOME=/app")
	assert.NotContains(t, strings.Join(c.Env, " "), "GREETING", "ARGs stay out of the image")
	assert.Equal(t, map[string]string{"org.example.name": "berth test", "version": "1", "extra": "yes"}, c.Labels)
	assert.Contains(t, c.ExposedPorts, "8080/tcp")
	assert.Contains(t, c.ExposedPorts, "53/udp")
	assert.Contains(t, c.Volumes, "/data")
	assert.Equal(t, "app", c.User)
	assert.Equal(t, "/app", c.WorkingDir)
	assert.Equal(t, "SIGTERM", c.StopSignal)
	assert.Equal(t, []string{"/bin/sh", "-c"}, c.Entrypoint)
	assert.Equal(t, []string{"echo default"}, c.Cmd)
	require.NotNil(t, c.Healthcheck)
	assert.Equal(t, []string{"CMD-SHELL", "true"}, c.Healthcheck.Test)

	hist := s.Must("history", "--no-trunc", "--format", "{{.CreatedBy}}", "example/app:1")
	assert.Contains(t, hist, "RUN |1 GREETING=hi /bin/sh -c echo")
	assert.Contains(t, hist, "COPY hello.txt sub ./")
	assert.Contains(t, hist, `CMD ["echo default"]`)
}

// TestBuildCache rebuilds with nothing changed, from a fresh copy of the
// context (new mtimes), and with one byte changed.
func TestBuildCache(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	write(t, dir, "somefile", "one\n")
	df := "FROM busybox\nRUN echo hi > /x\nCOPY somefile /\nCMD [\"sh\"]\n"
	first, _ := s.build(dir, df, "-q", "-t", "c:1")
	_, plain := s.build(dir, df, "-t", "c:1")
	assert.Equal(t, 2, strings.Count(plain, "CACHED"), plain)
	id := strings.TrimSpace(first)
	assert.Contains(t, s.Must("images", "--no-trunc", "-q", "c:1"), id, "a fully cached build makes the same image")

	fresh := filepath.Join(t.TempDir(), "copy")
	require.NoError(t, exec.Command("cp", "-r", dir, fresh).Run())
	_, plain = s.build(fresh, "", "-t", "c:2")
	assert.Equal(t, 2, strings.Count(plain, "CACHED"), "a fresh copy hits the cache:\n%s", plain)

	write(t, fresh, "somefile", "two\n")
	_, plain = s.build(fresh, "", "-t", "c:3")
	assert.Equal(t, 1, strings.Count(plain, "CACHED"), "only RUN is cached after a change:\n%s", plain)
	assert.Equal(t, "two\n", s.Must("run", "--rm", "c:3", "cat", "/somefile"))

	_, plain = s.build(fresh, "", "-t", "c:3", "--no-cache")
	assert.Equal(t, 0, strings.Count(plain, "CACHED"), plain)
}

// TestBuildMultiStage builds a target that needs one of two stages: the
// other (which would fail) is skipped.
func TestBuildMultiStage(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	s.build(dir, `FROM busybox AS base
RUN echo base > /base

FROM base AS builder
RUN echo built > /artifact

FROM busybox AS broken
RUN exit 7

FROM busybox AS final
COPY --from=builder /artifact /from-builder
COPY --from=0 /base /from-base
CMD ["cat", "/from-builder", "/from-base"]
`, "-t", "ms:1", "--target", "final")
	assert.Equal(t, "built\nbase\n", s.Must("run", "--rm", "ms:1"))

	errOut := s.buildFails(dir, "", "--target", "broken")
	assert.Contains(t, errOut, "Dockerfile:8")
	assert.Contains(t, errOut, "exit code: 7")
}

// TestBuildBadInput checks that bad input fails with the line and makes
// no image.
func TestBuildBadInput(t *testing.T) {
	s := newStore(t)
	before := s.imageCount()
	outside := t.TempDir()
	write(t, outside, "secret", "no\n")
	for _, tc := range []struct {
		name, dockerfile, want string
		args                   []string
	}{
		{"unknown instruction", "FROM busybox\nFORM busybox\n", "Dockerfile:2", nil},
		{"syntax", "FROM busybox\nENV\n", "Dockerfile:2", nil},
		{"no FROM", "RUN true\n", "FROM", nil},
		{"missing target", "FROM busybox\n", "nope", []string{"--target", "nope"}},
		{"missing file", "FROM busybox\nCOPY nothere /\n", "Dockerfile:2", nil},
		{"outside the context", "FROM busybox\nCOPY ../x /\n", "Dockerfile:2", nil},
		{"symlink outside", "FROM busybox\nCOPY link /\n", "Dockerfile:2", nil},
		{"missing image", "FROM no-such-image-here\n", "Dockerfile:1", nil},
		{"failing RUN", "FROM busybox\nRUN echo output-of-the-step; exit 3\n", "exit code: 3", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")))
			errOut := s.buildFails(dir, tc.dockerfile, append(tc.args, "-t", "bad:1")...)
			assert.Contains(t, errOut, tc.want)
		})
	}
	assert.Equal(t, before, s.imageCount(), "no image from a failed build")
}

// TestBuildHeredocsAndMounts covers RUN and COPY heredocs, cache mounts
// kept between builds, and --network=none.
func TestBuildHeredocsAndMounts(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	s.build(dir, `FROM busybox
RUN <<EOF
echo one > /one
echo two >> /one
EOF
RUN <<EOF
#!/bin/sh
echo script > /script
EOF
COPY <<EOF /etc/greeting
hello heredoc
EOF
RUN --mount=type=cache,target=/cache echo run >> /cache/log && cp /cache/log /cachelog
RUN --network=none ls /sys/class/net > /nets
`, "-t", "hd:1")
	assert.Equal(t, "one\ntwo\nscript\nhello heredoc\nrun\nlo\n",
		s.Must("run", "--rm", "hd:1", "cat", "/one", "/script", "/etc/greeting", "/cachelog", "/nets"))
	write(t, dir, "Dockerfile", "FROM busybox\nRUN --mount=type=cache,target=/cache echo again >> /cache/log && cp /cache/log /cachelog\n")
	s.build(dir, "", "-t", "hd:2")
	assert.Equal(t, "run\nagain\n", s.Must("run", "--rm", "hd:2", "cat", "/cachelog"))
}

// TestBuilderPrune removes the cache: the next build runs every step.
func TestBuilderPrune(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	df := "FROM busybox\nRUN echo hi > /x\n"
	s.build(dir, df, "-t", "p:1")
	s.Must("rmi", "p:1")
	_, plain := s.build(dir, df, "-t", "p:1")
	assert.Equal(t, 1, strings.Count(plain, "CACHED"), "removing the image keeps the cache:\n%s", plain)
	out := s.Must("builder", "prune", "-a", "-f")
	assert.Contains(t, out, "Total:")
	_, plain = s.build(dir, df, "-t", "p:1")
	assert.Equal(t, 0, strings.Count(plain, "CACHED"), plain)
}

// TestBuildInputs covers a Dockerfile on stdin, a context tar on stdin,
// .dockerignore with an exception, ADD of a local tar, --chown and
// --chmod, and --build-arg.
func TestBuildInputs(t *testing.T) {
	s := newStore(t)
	out, errOut, code := s.Run([]byte("FROM busybox\nRUN echo from-stdin > /s\n"), "build", "-q", "-t", "in:1", "-")
	require.Equal(t, 0, code, errOut)
	assert.True(t, strings.HasPrefix(out, "sha256:"), out)
	assert.Equal(t, "from-stdin\n", s.Must("run", "--rm", "in:1", "cat", "/s"))

	dir := t.TempDir()
	write(t, dir, "keep.log", "kept\n")
	write(t, dir, "drop.log", "dropped\n")
	write(t, dir, "data/inner", "packed\n")
	write(t, dir, ".dockerignore", "*.log\n!keep.log\nsub.tar\n")
	require.NoError(t, exec.Command("tar", "-C", filepath.Join(dir, "data"), "-czf", filepath.Join(dir, "data.tgz"), "inner").Run())
	write(t, dir, "Dockerfile", `FROM busybox
ARG WHO=nobody
COPY . /ctx/
ADD data.tgz /unpacked/
COPY --chown=app:app --chmod=0750 keep.log /owned
RUN echo "$WHO" > /who
ENV LIT=x\$y
COPY keep.log /lit-$LIT
`)
	tarData, err := exec.Command("tar", "-C", dir, "-cf", "-", ".").Output()
	require.NoError(t, err)
	_, errOut, code = s.Run(tarData, "build", "--progress", "plain", "--build-arg", "WHO=someone", "-t", "in:2", "-")
	require.Equal(t, 0, code, errOut)
	got := s.Must("run", "--rm", "in:2", "sh", "-c",
		"ls /ctx; test -f /ctx/.dockerignore; cat /unpacked/inner /who; stat -c '%u:%g %a' /owned")
	assert.Equal(t, "Dockerfile\ndata\ndata.tgz\nkeep.log\npacked\nsomeone\n1000:1000 750\n", got)
	// COPY expands its words once: the value of LIT keeps its "$".
	assert.Equal(t, "kept\n", s.Must("run", "--rm", "in:2", "cat", "/lit-x$y"))
}
