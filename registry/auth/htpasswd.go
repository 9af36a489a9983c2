package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Users checks credentials.
type Users interface {
	// Check says whether the password is the user's.
	Check(user, password string) bool
}

// Htpasswd is a set of users read from an htpasswd file, with bcrypt
// hashes (`htpasswd -B`); other hash kinds are refused when the file is
// read, as they are too weak to keep.
type Htpasswd struct {
	hashes map[string][]byte
}

// LoadHtpasswd reads an htpasswd file.
func LoadHtpasswd(path string) (*Htpasswd, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read htpasswd file: %w", err)
	}
	return ParseHtpasswd(data)
}

// ParseHtpasswd reads htpasswd content: "user:hash" lines, # comments.
func ParseHtpasswd(data []byte) (*Htpasswd, error) {
	h := &Htpasswd{hashes: map[string][]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd line %d: want user:hash", n)
		}
		if !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("htpasswd line %d: user %s: only bcrypt hashes are accepted (htpasswd -B)", n, user)
		}
		h.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read htpasswd: %w", err)
	}
	return h, nil
}

// Check says whether the password is the user's.
func (h *Htpasswd) Check(user, password string) bool {
	hash, ok := h.hashes[user]
	if !ok {
		// Compare anyway, so an unknown user takes as long as a wrong
		// password.
		hash = dummyHash
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && ok
}

// dummyHash is a bcrypt hash of nothing anyone types.
var dummyHash = []byte("$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z1pPfVvC1a0j6bLq7hH8x8.e")
