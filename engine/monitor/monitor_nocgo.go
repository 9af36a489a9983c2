//go:build !(linux && cgo)

package monitor

import (
	"os"
	"strings"
)

// haveConstructor says that the C phase is linked in: not without cgo.
const haveConstructor = false

// Without cgo there is no berth-init: fail as a shell would rather than
// run berth's CLI under that name.
func init() {
	name := os.Args[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if name == "berth-init" {
		os.Stderr.WriteString("berth-init: built without cgo\n")
		os.Exit(127)
	}
}
