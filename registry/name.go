package registry

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// maxNameLength bounds repository names: clients limit the registry's host
// and the name together to 255 characters, so no longer name is usable.
const maxNameLength = 255

// validName reports whether name matches the spec's repository grammar:
//
//	component ("/" component)*
//	component = [a-z0-9]+ (separator [a-z0-9]+)*
//	separator = "." | "_" | "__" | "-"+
func validName(name string) bool {
	if name == "" || len(name) > maxNameLength {
		return false
	}
	for _, c := range strings.Split(name, "/") {
		if !validComponent(c) {
			return false
		}
	}
	return true
}

func validComponent(c string) bool {
	i := 0
	for {
		start := i
		for i < len(c) && isLowerAlnum(c[i]) {
			i++
		}
		if i == start {
			return false // empty run: leading, trailing or doubled separator
		}
		if i == len(c) {
			return true
		}
		switch c[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}

// validTag reports whether tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func validTag(tag string) bool {
	if tag == "" || len(tag) > 128 {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if isLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '_' {
			continue
		}
		if i > 0 && (c == '.' || c == '-') {
			continue
		}
		return false
	}
	return true
}

func isLowerAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }

// parseDigest accepts the digests the registry stores: sha256 and sha512,
// well formed. Their encoded part is lower-case hex, safe in a path.
func parseDigest(s string) (digest.Digest, bool) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", false
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, true
	}
	return "", false
}

// validUploadID reports whether id has the shape of the session IDs the
// registry makes (32 lower-case hex characters), so that it is safe in a
// storage path.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
