//go:build !(linux && cgo)

package nsenter

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Without cgo there is no constructor, and the namespaces asked for cannot
// be joined any more once Go runs: fail as the constructor would rather
// than run in the wrong namespaces.
func init() {
	if v, ok := os.LookupEnv(envVar); ok && v != "" {
		w := os.Stderr
		if fd, err := parseFd(os.Getenv(ErrFdEnv)); err == nil {
			w = os.NewFile(uintptr(fd), "errfd")
		}
		fmt.Fprintf(w, "berth: join namespaces %s: built without cgo\n", v)
		os.Exit(1)
	}
}

// parseFd parses the value of _BERTH_NSENTER_ERRFD.
func parseFd(s string) (int, error) {
	fd, err := strconv.Atoi(s)
	if err == nil && fd < 0 {
		err = errors.New("negative fd")
	}
	return fd, err
}
