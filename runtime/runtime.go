// Package runtime is berth's OCI runtime: it turns a bundle (a root
// filesystem and a config.json) into a process isolated by the kernel, and
// manages it through the OCI lifecycle (create, start, kill, delete) the
// way runc and crun do, so tools that drive those can drive berth.
//
// A container's first process is berth itself, re-executed as "init" inside
// the new namespaces: it builds the root filesystem, drops privileges and
// finally execs the user's program. init.go is that side; create.go the
// parent's. They talk over the socketpair described in sync.go.
package runtime

import (
	"fmt"
	"os"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/berth/runtime"

// Runtime manages the containers under one state root.
type Runtime struct {
	// Root is the state directory (--root).
	Root string
	// Systemd makes cgroups be managed through systemd (--systemd-cgroup).
	Systemd bool
	// Warn reports what the runtime did differently from what a
	// configuration asked (a limit this host cannot grant). Nil: stderr.
	Warn func(msg string)
}

func (r *Runtime) warn(msg string) {
	if r.Warn != nil {
		r.Warn(msg)
		return
	}
	fmt.Fprintln(os.Stderr, "berth: warning:", msg)
}

// New returns a runtime whose state lives under root, creating it if needed.
func New(root string, systemd bool) (*Runtime, error) {
	if root == "" {
		root = DefaultRoot
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("make state root %s: %w", root, err)
	}
	return &Runtime{Root: root, Systemd: systemd}, nil
}
