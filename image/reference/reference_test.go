package reference

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/errdefs"
)

const (
	hexA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	dgst = "sha256:" + hexA
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		domain   string
		path     string
		tag      string
		digest   string
		str      string
		familiar string
	}{
		{"busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io", "library/busybox", "1.36", "", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"user/app", "docker.io", "user/app", "latest", "", "docker.io/user/app:latest", "user/app:latest"},
		{"user/app:tag", "docker.io", "user/app", "tag", "", "docker.io/user/app:tag", "user/app:tag"},
		{"library/a/b", "docker.io", "library/a/b", "latest", "", "docker.io/library/a/b:latest", "library/a/b:latest"},
		{"host:5000/a/b:tag", "host:5000", "a/b", "tag", "", "host:5000/a/b:tag", "host:5000/a/b:tag"},
		{"127.0.0.1:5000/x:tag", "127.0.0.1:5000", "x", "tag", "", "127.0.0.1:5000/x:tag", "127.0.0.1:5000/x:tag"},
		{"localhost/x", "localhost", "x", "latest", "", "localhost/x:latest", "localhost/x:latest"},
		{"localhost:5000/x", "localhost:5000", "x", "latest", "", "localhost:5000/x:latest", "localhost:5000/x:latest"},
		{"registry.example.com/team/app", "registry.example.com", "team/app", "latest", "", "registry.example.com/team/app:latest", "registry.example.com/team/app:latest"},
		{"Example.com/app", "Example.com", "app", "latest", "", "Example.com/app:latest", "Example.com/app:latest"},
		{"Foo/app", "Foo", "app", "latest", "", "Foo/app:latest", "Foo/app:latest"},
		{"[::1]:5000/app:v1", "[::1]:5000", "app", "v1", "", "[::1]:5000/app:v1", "[::1]:5000/app:v1"},
		{"[fe80::1]/app", "[fe80::1]", "app", "latest", "", "[fe80::1]/app:latest", "[fe80::1]/app:latest"},
		{"busybox@" + dgst, "docker.io", "library/busybox", "", dgst, "docker.io/library/busybox@" + dgst, "busybox@" + dgst},
		{"busybox:1.36@" + dgst, "docker.io", "library/busybox", "1.36", dgst, "docker.io/library/busybox:1.36@" + dgst, "busybox:1.36@" + dgst},
		{"host:5000/app@" + dgst, "host:5000", "app", "", dgst, "host:5000/app@" + dgst, "host:5000/app@" + dgst},
		{"a.b/c__d/e-f/g.h/i---j_k:T_1.x-y", "a.b", "c__d/e-f/g.h/i---j_k", "T_1.x-y", "", "a.b/c__d/e-f/g.h/i---j_k:T_1.x-y", "a.b/c__d/e-f/g.h/i---j_k:T_1.x-y"},
		{"app:_x", "docker.io", "library/app", "_x", "", "docker.io/library/app:_x", "app:_x"},
		{"localhost:5000", "docker.io", "library/localhost", "5000", "", "docker.io/library/localhost:5000", "localhost:5000"},
		{"a/" + strings.Repeat("b", 64), "docker.io", "a/" + strings.Repeat("b", 64), "latest", "", "docker.io/a/" + strings.Repeat("b", 64) + ":latest", "a/" + strings.Repeat("b", 64) + ":latest"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if r.Domain != tt.domain || r.Path != tt.path || r.Tag != tt.tag || string(r.Digest) != tt.digest {
				t.Fatalf("Parse(%q) = %+v, want domain %q path %q tag %q digest %q", tt.in, r, tt.domain, tt.path, tt.tag, tt.digest)
			}
			if got := r.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if got := r.Familiar(); got != tt.familiar {
				t.Errorf("Familiar() = %q, want %q", got, tt.familiar)
			}
			if got := r.Name(); got != tt.domain+"/"+tt.path {
				t.Errorf("Name() = %q", got)
			}
			// The canonical and familiar forms parse back to the same reference.
			for _, s := range []string{r.String(), r.Familiar()} {
				again, err := Parse(s)
				if err != nil || again != r {
					t.Errorf("Parse(%q) = %+v, %v; want %+v", s, again, err, r)
				}
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want string // a fragment of the error message
	}{
		{"", "empty reference"},
		{" busybox", "spaces"},
		{"Busybox", "must be lowercase"},
		{"docker.io/User/app", "must be lowercase"},
		{"busybox:", "empty tag"},
		{"busybox:-x", "must start with"},
		{"busybox:a/b", "invalid port"},
		{"busybox:" + strings.Repeat("a", 129), "longer than 128"},
		{"busybox:t@g", "digest"},
		{"busybox@sha256:abc", "digest"},
		{"busybox@sha256:" + strings.ToUpper(hexA), "digest"},
		{"busybox@md5:" + hexA, "digest"},
		{"busybox@", "digest"},
		{"-app", "bad component"},
		{"app-", "bad component"},
		{"a..b/c", "invalid host component"},
		{"a/b..c", "bad component"},
		{"a/b___c", "bad component"},
		{"a/b//c", "bad component"},
		{"a/", "bad component"},
		{"host:port/app", "invalid port"},
		{"host:123456/app", "invalid port"},
		{"[::1/app", "unclosed bracket"},
		{"[1.2.3.4]/app", "invalid IPv6"},
		{"-host.com/app", "invalid host component"},
		{"host.com/", "empty repository name"},
		{hexA, "64-byte hexadecimal"},
		{"a.com/" + strings.Repeat("b", 255), "longer than 255"},
		{"app:tag:tag", "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, r)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Parse(%q) error %v is not ErrInvalidArgument", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error %q does not mention %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseRepository(t *testing.T) {
	r, err := ParseRepository("user/app")
	if err != nil {
		t.Fatal(err)
	}
	if r != (Reference{Domain: "docker.io", Path: "user/app"}) {
		t.Fatalf("ParseRepository = %+v", r)
	}
	if r.String() != "docker.io/user/app" || r.Familiar() != "user/app" {
		t.Fatalf("String %q Familiar %q", r.String(), r.Familiar())
	}
	for _, s := range []string{"user/app:tag", "user/app@" + dgst, "user/App"} {
		if _, err := ParseRepository(s); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseRepository(%q) error = %v, want invalid argument", s, err)
		}
	}
}

func TestWithTagAndDigest(t *testing.T) {
	r, err := Parse("host:5000/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	d := digest.Digest(dgst)
	if got := r.WithDigest(d).String(); got != "host:5000/app:v1@"+dgst {
		t.Errorf("WithDigest = %q", got)
	}
	if got := r.WithDigest(d).WithTag("").String(); got != "host:5000/app@"+dgst {
		t.Errorf("WithTag(\"\") = %q", got)
	}
	if got := r.WithTag("v2").Familiar(); got != "host:5000/app:v2" {
		t.Errorf("WithTag = %q", got)
	}
	if r.Tag != "v1" || r.Digest != "" {
		t.Errorf("the receiver changed: %+v", r)
	}
	if got := r.Repository(); got.String() != "host:5000/app" || got.Tag != "" {
		t.Errorf("Repository() = %+v", got)
	}
	if got := r.FamiliarName(); got != "host:5000/app" {
		t.Errorf("FamiliarName() = %q", got)
	}
}

func TestValidTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"latest": true, "v1.2.3-rc_1": true, "_": true, "A": true,
		"": false, ".x": false, "-x": false, "a b": false, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
	} {
		if got := ValidTag(tag); got != want {
			t.Errorf("ValidTag(%q) = %v, want %v", tag, got, want)
		}
	}
}
