//go:build linux && cgo

package monitor

// The C phases live in entry.c, monitor.c and init.c; this import makes
// cgo compile and link them.

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter
// #include "monitor.h"
import "C"

// haveConstructor says that the C phase is linked in.
const haveConstructor = true
