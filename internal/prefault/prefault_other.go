//go:build !linux || !cgo

package prefault
