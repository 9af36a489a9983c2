package registry_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
)

// pushedDigest finds the manifest digest in the last line of a docker-
// style push report ("TAG: digest: sha256:... [size: N]").
func pushedDigest(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`).FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no digest in push output:\n%s", out)
	}
	return m[len(m)-1][1]
}

// repoDigest is the digest of an inspect RepoDigests entry (NAME@DIGEST).
func repoDigest(s string) string {
	_, d, _ := strings.Cut(s, "@")
	return d
}

// TestBerthPushPull pushes an imported busybox image with berth and pulls
// it into a second store: the same image (config and manifest digests),
// and it runs.
func TestBerthPushPull(t *testing.T) {
	src, dst := newStore(t), newStore(t)
	testutil.RequiresBusybox(t)
	reg := startServer(t, t.TempDir())
	ref := reg.host + "/e2e/busybox:1"
	src.importBusybox(ref)
	digest := pushedDigest(t, src.must(reg.host, "push", ref))

	// The registry serves the manifest under the tag with that digest.
	code, _ := reg.request("HEAD", "/v2/e2e/busybox/manifests/1", map[string]string{
		"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
	if code != 200 {
		t.Fatalf("HEAD manifest after push: status %d", code)
	}

	dst.must(reg.host, "pull", ref)
	if got, want := dst.inspect(ref, "{{.Id}}"), src.inspect(ref, "{{.Id}}"); got != want {
		t.Errorf("pulled image id %s, pushed %s", got, want)
	}
	if got := repoDigest(dst.inspect(ref, "{{index .RepoDigests 0}}")); got != digest {
		t.Errorf("pulled manifest digest %s, pushed %s", got, digest)
	}
	// Pulling by digest gives the same image.
	dst.must(reg.host, "pull", reg.host+"/e2e/busybox@"+digest)

	out := dst.must(reg.host, "run", "--rm", "--network", "none", ref, "/bin/sh", "-c", "echo pulled-and-ran")
	if strings.TrimSpace(out) != "pulled-and-ran" {
		t.Errorf("run of the pulled image printed %q", out)
	}
}

// TestSkopeoCopy copies an OCI layout to the registry and back to a dir:
// layout with skopeo: the same manifest and blobs both ways.
func TestSkopeoCopy(t *testing.T) {
	requireTool(t, "skopeo", "skopeo")
	reg := startServer(t, t.TempDir())
	img := writeLayout(t, 1<<20, 300<<10, 10)
	ref := reg.host + "/x:1"
	if got := skopeoPush(t, img, ref, ""); got != img.manifest {
		t.Errorf("skopeo pushed digest %s, layout's manifest is %s", got, img.manifest)
	}
	skopeoPull(t, ref, "", img)
	// And by digest.
	skopeoPull(t, reg.host+"/x@"+img.manifest, "", img)
	// A second push of the same content changes nothing.
	if got := skopeoPush(t, img, reg.host+"/x:2", ""); got != img.manifest {
		t.Errorf("second push digest %s, want %s", got, img.manifest)
	}
}

// dockerReady skips the test, saying why, when no dockerd answers.
func dockerReady(t *testing.T) {
	t.Helper()
	testutil.RequiresRoot(t)
	requireTool(t, "docker", "docker.io")
	if _, errOut, code := testutil.RunCommand(t, nil, nil, "docker", "info"); code != 0 {
		testutil.Missing(t, "dockerd is not running (scripts/dockerd.sh starts one): %s", strings.TrimSpace(errOut))
	}
}

// TestDocker pushes with docker and pulls with docker and berth, and
// pulls berth's push with docker: the same image ids and digests all
// round. docker reaches registries on 127.0.0.0/8 over plain HTTP.
func TestDocker(t *testing.T) {
	dockerReady(t)
	testutil.RequiresBusybox(t)
	st := newStore(t)
	reg := startServer(t, t.TempDir())
	tag := randomTag(t)
	dref := reg.host + "/e2e/from-docker:" + tag
	bref := reg.host + "/e2e/from-berth:" + tag
	t.Cleanup(func() {
		_, _, _ = testutil.RunCommand(t, nil, nil, "docker", "rmi", "-f", dref, bref)
	})

	run(t, nil, "docker", "version")
	if _, errOut, code := testutil.RunCommand(t, nil, busyboxTar(t), "docker", "import", "-", dref); code != 0 {
		t.Fatalf("docker import: %s", errOut)
	}
	id := strings.TrimSpace(run(t, nil, "docker", "image", "inspect", "-f", "{{.Id}}", dref))
	digest := pushedDigest(t, run(t, nil, "docker", "push", dref))
	run(t, nil, "docker", "rmi", dref)
	run(t, nil, "docker", "pull", dref)
	if got := strings.TrimSpace(run(t, nil, "docker", "image", "inspect", "-f", "{{.Id}}", dref)); got != id {
		t.Errorf("docker pulled id %s, pushed %s", got, id)
	}
	if got := repoDigest(strings.TrimSpace(run(t, nil, "docker", "image", "inspect", "-f", "{{index .RepoDigests 0}}", dref))); got != digest {
		t.Errorf("docker pulled digest %s, pushed %s", got, digest)
	}
	// berth pulls docker's push (a Docker schema 2 manifest).
	st.must(reg.host, "pull", dref)
	if got := st.inspect(dref, "{{.Id}}"); got != id {
		t.Errorf("berth pulled id %s of docker's push, docker's is %s", got, id)
	}
	if got := repoDigest(st.inspect(dref, "{{index .RepoDigests 0}}")); got != digest {
		t.Errorf("berth pulled digest %s of docker's push, docker pushed %s", got, digest)
	}

	// docker pulls berth's push (an OCI manifest).
	st.importBusybox(bref)
	bdigest := pushedDigest(t, st.must(reg.host, "push", bref))
	run(t, nil, "docker", "pull", bref)
	if got, want := strings.TrimSpace(run(t, nil, "docker", "image", "inspect", "-f", "{{.Id}}", bref)), st.inspect(bref, "{{.Id}}"); got != want {
		t.Errorf("docker pulled id %s of berth's push, berth's is %s", got, want)
	}
	if got := repoDigest(strings.TrimSpace(run(t, nil, "docker", "image", "inspect", "-f", "{{index .RepoDigests 0}}", bref))); got != bdigest {
		t.Errorf("docker pulled digest %s of berth's push, berth pushed %s", got, bdigest)
	}
}

func randomTag(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestBasicAuth serves behind an htpasswd file with anonymous pulls:
// pushes need the password, pulls do not. Clients send basic credentials
// only to a registry whose GET /v2/ challenged them for it: docker and
// skopeo (containers/image) decide at that first request whether a
// registry needs them, and `docker login` checks a password there. The
// pushes after a login therefore show whether the registry asks.
func TestBasicAuth(t *testing.T) {
	requireTool(t, "skopeo", "skopeo")
	reg := startServer(t, t.TempDir(), "--htpasswd", writeHtpasswd(t), "--anonymous-pull")
	img := writeLayout(t, 64<<10)
	ref := reg.host + "/auth/img:1"
	if _, errOut, code := trySkopeoPush(t, img, ref, ""); code == 0 {
		t.Fatal("anonymous push succeeded")
	} else if !strings.Contains(strings.ToLower(errOut), "unauthorized") && !strings.Contains(errOut, "authentication required") {
		t.Errorf("anonymous push refused, but not for authentication: %s", errOut)
	}
	if _, errOut, code := trySkopeoPush(t, img, ref, testUser+":wrong"); code == 0 {
		t.Fatal("push with a wrong password succeeded")
	} else if !strings.Contains(strings.ToLower(errOut), "unauthorized") && !strings.Contains(errOut, "authentication required") {
		t.Errorf("push with a wrong password refused, but not for authentication: %s", errOut)
	}
	// Nothing of the refused pushes is there.
	if code, _ := reg.request("GET", "/v2/auth/img/manifests/1", nil); code != 404 {
		t.Errorf("manifest after refused pushes: status %d, want 404", code)
	}
	t.Run("skopeo --dest-creds", func(t *testing.T) {
		if got := skopeoPush(t, img, ref, testUser+":"+testPassword); got != img.manifest {
			t.Errorf("pushed digest %s, want %s", got, img.manifest)
		}
		skopeoPull(t, ref, "", img)
	})

	t.Run("berth login", func(t *testing.T) {
		testutil.RequiresBusybox(t)
		st, anon := newStore(t), newStore(t)
		bref := reg.host + "/auth/busybox:1"
		st.importBusybox(bref)
		if _, errOut, code := st.run(nil, reg.host, "push", bref); code == 0 {
			t.Fatal("berth push without login succeeded")
		} else if !strings.Contains(strings.ToLower(errOut), "unauthorized") && !strings.Contains(strings.ToLower(errOut), "authentication") {
			t.Errorf("berth push without login refused, but not for authentication: %s", errOut)
		}
		if _, errOut, code := st.run([]byte("wrong\n"), reg.host, "login", "-u", testUser, "--password-stdin", reg.host); code == 0 {
			t.Error("berth login with a wrong password succeeded")
		} else if errOut == "" {
			t.Error("berth login with a wrong password failed silently")
		}
		if _, errOut, code := st.run([]byte(testPassword+"\n"), reg.host, "login", "-u", testUser, "--password-stdin", reg.host); code != 0 {
			t.Fatalf("berth login: exit %d: %s", code, errOut)
		}
		digest := pushedDigest(t, st.must(reg.host, "push", bref))
		anon.must(reg.host, "pull", bref)
		if got := repoDigest(anon.inspect(bref, "{{index .RepoDigests 0}}")); got != digest {
			t.Errorf("anonymous pull got digest %s, pushed %s", got, digest)
		}
	})

	t.Run("docker login", func(t *testing.T) {
		dockerReady(t)
		testutil.RequiresBusybox(t)
		_, _, digest := dockerLoginPush(t, reg, "/auth/from-docker")
		if code, _ := reg.request("HEAD", "/v2/auth/from-docker/manifests/"+digest, nil); code != 200 {
			t.Errorf("anonymous HEAD of docker's pushed manifest: status %d", code)
		}
		// docker itself pulls anonymously only from a registry that
		// issues tokens (TestTokenAuthAnonymousPull): given a basic
		// challenge and no credentials, it gives up.
	})
}

// TestTokenAuth serves with the built-in token issuer: skopeo gets a
// token with the password and pushes; a wrong password gets none;
// without anonymous pulls, pulls need credentials too.
func TestTokenAuth(t *testing.T) {
	requireTool(t, "skopeo", "skopeo")
	reg := startServer(t, t.TempDir(), "--htpasswd", writeHtpasswd(t), "--token-auth")
	img := writeLayout(t, 64<<10, 1000)
	ref := reg.host + "/tok/img:1"
	creds := testUser + ":" + testPassword

	if _, errOut, code := trySkopeoPush(t, img, ref, testUser+":wrong"); code == 0 {
		t.Fatal("push with a wrong password succeeded")
	} else if !strings.Contains(strings.ToLower(errOut), "unauthorized") {
		t.Errorf("push with a wrong password refused, but not for authentication: %s", errOut)
	}
	if _, errOut, code := trySkopeoPush(t, img, ref, ""); code == 0 {
		t.Fatal("anonymous push succeeded")
	} else if !strings.Contains(strings.ToLower(errOut), "unauthorized") && !strings.Contains(errOut, "authentication required") {
		t.Errorf("anonymous push refused, but not for authentication: %s", errOut)
	}
	if got := skopeoPush(t, img, ref, creds); got != img.manifest {
		t.Errorf("pushed digest %s, want %s", got, img.manifest)
	}
	// The push went through the token flow: the issuer answered, and
	// the registry's challenge names it.
	if !strings.Contains(reg.logs.String(), `"route":"token","status":200`) {
		t.Errorf("no token was issued during the push; logs:\n%s", reg.logs.String())
	}
	code, _ := reg.request("GET", "/v2/tok/img/manifests/1", nil)
	if code != 401 {
		t.Errorf("anonymous GET of the manifest: status %d, want 401", code)
	}
	skopeoPull(t, ref, creds, img)
	dir := t.TempDir()
	if _, _, code := testutil.RunCommand(t, nil, nil, "skopeo", "copy", "--retry-times", "0", "--src-tls-verify=false",
		"docker://"+ref, "dir:"+dir); code == 0 {
		t.Error("anonymous pull succeeded without --anonymous-pull")
	}
}

// TestReplicas runs two registries on one root: what is pushed to one is
// pulled from the other, both ways.
func TestReplicas(t *testing.T) {
	requireTool(t, "skopeo", "skopeo")
	root := t.TempDir()
	a, b := startServer(t, root), startServer(t, root)
	img1, img2 := writeLayout(t, 200<<10, 3000), writeLayout(t, 100<<10)
	skopeoPush(t, img1, a.host+"/rep/one:1", "")
	skopeoPull(t, b.host+"/rep/one:1", "", img1)
	skopeoPush(t, img2, b.host+"/rep/two:1", "")
	skopeoPull(t, a.host+"/rep/two:1", "", img2)
	for _, s := range []*server{a, b} {
		code, body := s.request("GET", "/v2/_catalog", nil)
		if code != 200 || !strings.Contains(string(body), `"rep/one"`) || !strings.Contains(string(body), `"rep/two"`) {
			t.Errorf("catalog of %s: status %d, %s", s.host, code, body)
		}
	}
}

// TestGCWhileServing deletes one of two images sharing a layer and
// collects garbage while the registry serves: the deleted image's own
// blobs go, the shared layer and the other image stay and still pull,
// and pushes go on afterwards.
func TestGCWhileServing(t *testing.T) {
	requireTool(t, "skopeo", "skopeo")
	root := t.TempDir()
	reg := startServer(t, root)
	shared := randomLayer(t, "shared", 100<<10)
	a := writeLayoutOf(t, shared, randomLayer(t, "a", 50<<10))
	b := writeLayoutOf(t, shared, randomLayer(t, "b", 60<<10))
	skopeoPush(t, a, reg.host+"/gc/img:a", "")
	skopeoPush(t, b, reg.host+"/gc/img:b", "")
	for _, h := range append(a.blobs, b.blobs...) {
		if _, err := os.Stat(blobPath(root, h)); err != nil {
			t.Fatalf("blob %s not stored where expected: %v", h, err)
		}
	}

	code, body := reg.request("DELETE", "/v2/gc/img/manifests/"+a.manifest, nil)
	if code != 202 {
		t.Fatalf("DELETE manifest: status %d: %s", code, body)
	}
	if code, _ := reg.request("GET", "/v2/gc/img/manifests/"+a.manifest, nil); code != 404 {
		t.Errorf("GET of the deleted manifest: status %d, want 404", code)
	}
	// Everything is older than the grace period when gc runs.
	time.Sleep(20 * time.Millisecond)
	out := run(t, nil, testutil.BerthBinary(t), "registry", "gc", "--root", root, "--grace", "1ms")
	t.Logf("gc: %s", strings.TrimSpace(out))

	// a's manifest, config and own layer are gone; the shared layer (a's
	// and b's first) and b's own stay.
	for _, h := range []string{strings.TrimPrefix(a.manifest, "sha256:"), a.blobs[0], a.blobs[2]} {
		if _, err := os.Stat(blobPath(root, h)); !os.IsNotExist(err) {
			t.Errorf("blob %s of the deleted image still there after gc (%v)", h, err)
		}
	}
	for _, h := range b.blobs {
		if _, err := os.Stat(blobPath(root, h)); err != nil {
			t.Errorf("blob %s of the kept image gone after gc: %v", h, err)
		}
	}
	if !strings.Contains(out, "deleted 3 blobs") {
		t.Errorf("gc report does not say 3 blobs were deleted: %q", out)
	}
	skopeoPull(t, reg.host+"/gc/img:b", "", b)
	// The registry goes on: a push after gc, of new content and of the
	// deleted image again, works.
	c := writeLayout(t, 10<<10)
	skopeoPush(t, c, reg.host+"/gc/img:c", "")
	skopeoPull(t, reg.host+"/gc/img:c", "", c)
	skopeoPush(t, a, reg.host+"/gc/img:a", "")
	skopeoPull(t, reg.host+"/gc/img:a", "", a)
}

// TestTokenAuthAnonymousPull serves with the token issuer and anonymous
// pulls: docker logs in and pushes, and pulls again logged out (an
// anonymous token); skopeo pulls without credentials.
func TestTokenAuthAnonymousPull(t *testing.T) {
	dockerReady(t)
	testutil.RequiresBusybox(t)
	requireTool(t, "skopeo", "skopeo")
	reg := startServer(t, t.TempDir(), "--htpasswd", writeHtpasswd(t), "--token-auth", "--anonymous-pull")
	env, dref, digest := dockerLoginPush(t, reg, "/tok/from-docker")
	run(t, env, "docker", "logout", reg.host)
	run(t, env, "docker", "rmi", dref)
	run(t, env, "docker", "pull", dref)
	if got := repoDigest(strings.TrimSpace(run(t, env, "docker", "image", "inspect", "-f", "{{index .RepoDigests 0}}", dref))); got != digest {
		t.Errorf("anonymous docker pull got digest %s, pushed %s", got, digest)
	}
	img := writeLayout(t, 32<<10)
	skopeoPush(t, img, reg.host+"/tok/img:1", testUser+":"+testPassword)
	skopeoPull(t, reg.host+"/tok/img:1", "", img)
	if _, _, code := trySkopeoPush(t, writeLayout(t, 1000), reg.host+"/tok/img:2", ""); code == 0 {
		t.Error("anonymous push succeeded")
	}
}

// dockerLoginPush logs docker in to reg (after checking that a wrong
// password is refused) with a private docker config, imports busybox as
// reg's repo (a path starting with "/") under a fresh tag and pushes it.
// It returns docker's environment, the reference and the pushed digest.
func dockerLoginPush(t *testing.T, reg *server, repo string) ([]string, string, string) {
	t.Helper()
	env := append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	dref := reg.host + repo + ":" + randomTag(t)
	t.Cleanup(func() { _, _, _ = testutil.RunCommand(t, env, nil, "docker", "rmi", "-f", dref) })
	if _, _, code := testutil.RunCommand(t, env, []byte("wrong\n"), "docker", "login", "-u", testUser, "--password-stdin", reg.host); code == 0 {
		t.Error("docker login with a wrong password succeeded")
	}
	if _, errOut, code := testutil.RunCommand(t, env, []byte(testPassword+"\n"), "docker", "login", "-u", testUser, "--password-stdin", reg.host); code != 0 {
		t.Fatalf("docker login: exit %d: %s", code, errOut)
	}
	if _, errOut, code := testutil.RunCommand(t, env, busyboxTar(t), "docker", "import", "-", dref); code != 0 {
		t.Fatalf("docker import: %s", errOut)
	}
	return env, dref, pushedDigest(t, run(t, env, "docker", "push", dref))
}
