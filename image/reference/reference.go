// Package reference parses image references the way Docker writes them
// ("busybox", "user/app:1.0", "host:5000/a/b@sha256:...") into their
// canonical parts, and prints them back in canonical and familiar form.
package reference

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Docker Hub's names: references without a domain belong to DefaultDomain,
// and its one-component repositories live under OfficialRepoPrefix.
const (
	DefaultDomain       = "docker.io"
	LegacyDefaultDomain = "index.docker.io"
	OfficialRepoPrefix  = "library/"
	DefaultTag          = "latest"
)

// Limits of the grammar, as the distribution registry enforces them.
const (
	maxNameLength = 255
	maxTagLength  = 128
)

// Reference names an image in a registry: Domain/Path, then a tag, a digest
// or both. A reference parsed without either gets DefaultTag.
type Reference struct {
	// Domain is the registry's host, with a port when it has one
	// ("docker.io", "localhost:5000", "[::1]:5000").
	Domain string
	// Path is the repository inside the registry ("library/busybox").
	Path string
	// Tag is the tag, without its colon; empty when only a digest is given.
	Tag string
	// Digest pins the content; empty when not given.
	Digest digest.Digest
}

// Parse parses s as Docker does: a missing domain means docker.io, a
// one-component Docker Hub path gets "library/", and a reference with
// neither tag nor digest gets the tag "latest".
func Parse(s string) (Reference, error) {
	r, err := parse(s)
	if err != nil {
		return Reference{}, err
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = DefaultTag
	}
	return r, nil
}

// ParseRepository parses a repository name alone ("busybox",
// "host:5000/team/app"), refusing tags and digests.
func ParseRepository(s string) (Reference, error) {
	r, err := parse(s)
	if err != nil {
		return Reference{}, err
	}
	if r.Tag != "" || r.Digest != "" {
		return Reference{}, errdefs.Invalid("invalid repository name %q: tag or digest not allowed", s)
	}
	return r, nil
}

// parse splits s into its parts and validates each, without defaults for
// the tag.
func parse(s string) (Reference, error) {
	if s == "" {
		return Reference{}, errdefs.Invalid("invalid reference format: empty reference")
	}
	if strings.TrimSpace(s) != s {
		return Reference{}, errdefs.Invalid("invalid reference format %q: surrounding spaces", s)
	}
	name, dgst, hasDigest := strings.Cut(s, "@")
	var r Reference
	if hasDigest {
		d, err := parseDigest(dgst)
		if err != nil {
			return Reference{}, errdefs.Invalid("invalid reference %q: %w", s, err)
		}
		r.Digest = d
	}
	name, tag := splitTag(name)
	if tag != nil {
		if err := validateTag(*tag); err != nil {
			return Reference{}, errdefs.Invalid("invalid reference %q: %w", s, err)
		}
		r.Tag = *tag
	}
	if isHexID(name) {
		return Reference{}, errdefs.Invalid("invalid repository name %q: cannot specify 64-byte hexadecimal strings", name)
	}
	domain, path := splitDomain(name)
	if err := validateDomain(domain); err != nil {
		return Reference{}, errdefs.Invalid("invalid reference %q: %w", s, err)
	}
	if err := validatePath(path); err != nil {
		return Reference{}, errdefs.Invalid("invalid reference %q: %w", s, err)
	}
	domain, path = normalize(domain, path)
	if len(domain)+1+len(path) > maxNameLength {
		return Reference{}, errdefs.Invalid("invalid reference %q: repository name longer than %d characters", s, maxNameLength)
	}
	r.Domain, r.Path = domain, path
	return r, nil
}

// splitTag cuts a ":tag" suffix off name. A colon followed by a slash
// later on belongs to a port ("host:5000/app"), not to a tag. tag is nil
// when there is none, so that "app:" is an empty, invalid tag.
func splitTag(name string) (string, *string) {
	i := strings.LastIndex(name, ":")
	if i < 0 || strings.Contains(name[i+1:], "/") {
		return name, nil
	}
	// "[::1]" alone is a domain with no path; its colons are not tags.
	if strings.Contains(name[i+1:], "]") {
		return name, nil
	}
	tag := name[i+1:]
	return name[:i], &tag
}

// splitDomain decides, as Docker does, whether the first path component is
// a registry: it is when it has a dot or a colon, is "localhost", or has an
// upper-case letter (which a repository component never has).
func splitDomain(name string) (string, string) {
	first, rest, ok := strings.Cut(name, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost" && strings.ToLower(first) == first) {
		return DefaultDomain, name
	}
	return first, rest
}

// normalize maps Docker Hub's aliases to docker.io and adds "library/" to
// its one-component paths.
func normalize(domain, path string) (string, string) {
	if domain == LegacyDefaultDomain {
		domain = DefaultDomain
	}
	if domain == DefaultDomain && !strings.Contains(path, "/") {
		path = OfficialRepoPrefix + path
	}
	return domain, path
}

func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("digest %q: %w", s, err)
	}
	return d, nil
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexLower(s[i]) {
			return false
		}
	}
	return true
}

func isHexLower(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isLowerAlnum(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'z') }

func isAlnum(c byte) bool { return isLowerAlnum(c) || (c >= 'A' && c <= 'Z') }

func isWord(c byte) bool { return isAlnum(c) || c == '_' }
