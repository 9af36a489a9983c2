// Command berth is a container system in one binary. This file picks the
// personality: a container's init (re-executed by the runtime), the
// runc-compatible runtime (when invoked as berth-runc or runc), or the
// full CLI.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine"
	// The monitor's steady state and the container --init, in C before
	// the Go runtime starts; see the package.
	_ "github.com/berth-containers/berth/engine/monitor"
	// Maps the binary's code in one call at start-up; see the package.
	_ "github.com/berth-containers/berth/internal/prefault"
	"github.com/berth-containers/berth/runtime"
	// Joins namespaces before the Go runtime starts, for exec and for
	// create with namespace paths; see the package.
	_ "github.com/berth-containers/berth/runtime/nsenter"
)

// version is set at link time by the Makefile.
var version = "dev"

func main() {
	if runtime.IsInit() {
		os.Exit(runtime.Init())
	}
	if engine.IsMonitor() {
		os.Exit(engine.RunMonitor())
	}
	if engine.IsResolver() {
		os.Exit(engine.RunResolver())
	}
	var root *cobra.Command
	switch name := filepath.Base(os.Args[0]); name {
	case "berth-runc", "runc":
		root = newRuntimeCmd(name)
	default:
		root = newRootCmd(os.Args[1:])
	}
	root.SetArgs(normalizeArgs(root, os.Args[1:]))
	os.Exit(execute(root))
}

// newRootCmd is berth's CLI, with the commands args may run (see
// addCommands).
func newRootCmd(args []string) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "berth runs containers: one binary, no daemon required",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	// A bad flag is berth's own error: Docker's status 125.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &statusError{code: 125, err: err} })
	addStoreFlags(root)
	addCommands(root, args)
	return root
}

// exitCode carries a container's exit status out of a command.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func execute(root *cobra.Command) int {
	err := root.Execute()
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	logError(err)
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 1
}
