package reference

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// validateTag checks the tag grammar [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func validateTag(tag string) error {
	if tag == "" {
		return errors.New("empty tag")
	}
	if len(tag) > maxTagLength {
		return fmt.Errorf("tag %q longer than %d characters", tag, maxTagLength)
	}
	if !isWord(tag[0]) {
		return fmt.Errorf("tag %q must start with a letter, digit or underscore", tag)
	}
	for i := 1; i < len(tag); i++ {
		if c := tag[i]; !isWord(c) && c != '.' && c != '-' {
			return fmt.Errorf("tag %q has invalid character %q", tag, c)
		}
	}
	return nil
}

// validateDomain checks a registry host: DNS-like components separated by
// dots, or a bracketed IPv6 address, then an optional numeric port.
func validateDomain(domain string) error {
	host, port := domain, ""
	if strings.HasPrefix(domain, "[") {
		end := strings.Index(domain, "]")
		if end < 0 {
			return fmt.Errorf("registry %q: unclosed bracket", domain)
		}
		host, port = domain[:end+1], domain[end+1:]
		if a, err := netip.ParseAddr(host[1 : len(host)-1]); err != nil || !a.Is6() {
			return fmt.Errorf("registry %q: invalid IPv6 address", domain)
		}
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return fmt.Errorf("registry %q: invalid port", domain)
			}
			port = port[1:]
			return validatePort(domain, port)
		}
		return nil
	}
	if h, p, ok := strings.Cut(domain, ":"); ok {
		host, port = h, p
		if err := validatePort(domain, port); err != nil {
			return err
		}
	}
	if host == "" {
		return fmt.Errorf("registry %q: empty host", domain)
	}
	for _, c := range strings.Split(host, ".") {
		if !validDomainComponent(c) {
			return fmt.Errorf("registry %q: invalid host component %q", domain, c)
		}
	}
	return nil
}

func validatePort(domain, port string) error {
	if port == "" || len(port) > 5 {
		return fmt.Errorf("registry %q: invalid port", domain)
	}
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return fmt.Errorf("registry %q: invalid port", domain)
		}
	}
	return nil
}

// validDomainComponent: letters, digits and inner hyphens.
func validDomainComponent(c string) bool {
	if c == "" || !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isAlnum(c[i]) && c[i] != '-' {
			return false
		}
	}
	return true
}

// validatePath checks the repository path: lower-case components of
// letters and digits joined by ".", "_", "__" or runs of "-", separated
// by slashes.
func validatePath(path string) error {
	if path == "" {
		return errors.New("empty repository name")
	}
	if strings.ToLower(path) != path {
		return fmt.Errorf("repository name %q must be lowercase", path)
	}
	for _, c := range strings.Split(path, "/") {
		if !validPathComponent(c) {
			return fmt.Errorf("invalid repository name %q: bad component %q", path, c)
		}
	}
	return nil
}

// validPathComponent matches [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func validPathComponent(c string) bool {
	if c == "" || !isLowerAlnum(c[0]) || !isLowerAlnum(c[len(c)-1]) {
		return false
	}
	for i := 1; i < len(c); {
		if isLowerAlnum(c[i]) {
			i++
			continue
		}
		sep := i
		for i < len(c) && !isLowerAlnum(c[i]) {
			i++
		}
		if !validSeparator(c[sep:i]) {
			return false
		}
	}
	return true
}

func validSeparator(s string) bool {
	if s == "." || s == "_" || s == "__" {
		return true
	}
	return strings.Trim(s, "-") == ""
}
