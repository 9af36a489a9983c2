package reference

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// Name is the full repository name, Domain/Path
// ("docker.io/library/busybox").
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String is the canonical form: the full name, then ":tag" and "@digest"
// when present ("docker.io/library/busybox:latest").
func (r Reference) String() string { return r.Name() + r.suffix() }

// FamiliarName is the repository name as docker prints it: without
// "docker.io/" and without Docker Hub's "library/" ("busybox",
// "user/app", "127.0.0.1:5000/x").
func (r Reference) FamiliarName() string {
	if r.Domain != DefaultDomain {
		return r.Name()
	}
	if rest, ok := strings.CutPrefix(r.Path, OfficialRepoPrefix); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return r.Path
}

// Familiar is the short form docker prints: FamiliarName with the tag and
// digest ("busybox:latest", "user/app:tag", "127.0.0.1:5000/x:tag").
func (r Reference) Familiar() string { return r.FamiliarName() + r.suffix() }

func (r Reference) suffix() string {
	s := ""
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// WithTag returns r with its tag replaced; an empty tag removes it. The tag
// is not validated: use ValidTag for input from users.
func (r Reference) WithTag(tag string) Reference {
	r.Tag = tag
	return r
}

// WithDigest returns r with its digest replaced; an empty digest removes
// it.
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.Digest = d
	return r
}

// Repository returns r's repository alone, with neither tag nor digest.
func (r Reference) Repository() Reference { return Reference{Domain: r.Domain, Path: r.Path} }

// ValidTag reports whether tag follows the tag grammar.
func ValidTag(tag string) bool { return validateTag(tag) == nil }

// FamiliarString writes a reference string in docker's short form
// ("docker.io/library/busybox:latest" becomes "busybox:latest"), and
// returns s unchanged when it is not a reference.
func FamiliarString(s string) string {
	r, err := Parse(s)
	if err != nil {
		return s
	}
	return r.Familiar()
}
