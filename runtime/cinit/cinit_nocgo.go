//go:build !(linux && cgo)

package cinit

// Available says the C init is linked in: without cgo it is not, and
// every container gets the Go init.
const Available = false
