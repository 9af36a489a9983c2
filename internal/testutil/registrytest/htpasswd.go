package registrytest

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// writeHtpasswd writes users as an htpasswd file with bcrypt hashes, the
// only kind the distribution registry accepts.
func writeHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		// The lowest cost keeps tests fast; strength is no concern here.
		h, err := bcrypt.GenerateFromPassword([]byte(users[n]), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("hash password of %s: %w", n, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", n, h)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write htpasswd: %w", err)
	}
	return nil
}
