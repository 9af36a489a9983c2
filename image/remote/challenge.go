package remote

import (
	"strings"
)

// challenge is one authentication challenge of a WWW-Authenticate header
// (RFC 9110 section 11.6.1): a scheme, lower-cased, and its parameters,
// keys lower-cased and values unquoted.
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges reads every challenge of the WWW-Authenticate header
// values: one value may hold several ("Bearer realm=...,service=...,
// Basic realm=..."), and a response may send several values. What cannot
// be parsed ends that value; the challenges before it are kept.
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		out = append(out, parseChallengeList(v)...)
	}
	return out
}

func parseChallengeList(s string) []challenge {
	var out []challenge
	for {
		s = strings.TrimLeft(s, " \t,")
		scheme, rest := cutToken(s)
		if scheme == "" {
			return out
		}
		ch := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
		s = parseParams(rest, ch.params)
		out = append(out, ch)
	}
}

// parseParams reads "key=value" and `key="quoted value"` pairs separated
// by commas into params, and returns what follows them: the next
// challenge, or "" at the end or on a syntax error.
func parseParams(s string, params map[string]string) string {
	for {
		s = strings.TrimLeft(s, " \t")
		key, rest := cutToken(s)
		rest = strings.TrimLeft(rest, " \t")
		if key == "" || !strings.HasPrefix(rest, "=") {
			// Not a parameter: a token68 or the next challenge's scheme.
			return s
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		var value string
		var ok bool
		if strings.HasPrefix(rest, `"`) {
			value, rest, ok = cutQuoted(rest)
			if !ok {
				return ""
			}
		} else {
			value, rest = cutToken(rest)
		}
		params[strings.ToLower(key)] = value
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, ",") {
			return rest
		}
		s = rest[1:]
	}
}

// cutToken splits s after its leading RFC 9110 token.
func cutToken(s string) (token, rest string) {
	i := strings.IndexFunc(s, func(r rune) bool { return !isTokenChar(r) })
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func isTokenChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// cutQuoted reads a quoted string (backslash escapes the next byte) at
// the start of s.
func cutQuoted(s string) (value, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			i++
			if i == len(s) {
				return "", "", false
			}
		}
		b.WriteByte(s[i])
	}
	return "", "", false
}

// pickChallenge chooses the challenge to answer: Bearer before Basic,
// since a token is scoped and a password is not; false when there is
// neither.
func pickChallenge(chs []challenge) (challenge, bool) {
	var basic *challenge
	for i, ch := range chs {
		switch ch.scheme {
		case schemeBearer:
			return ch, true
		case schemeBasic:
			if basic == nil {
				basic = &chs[i]
			}
		}
	}
	if basic == nil {
		return challenge{}, false
	}
	return *basic, true
}
