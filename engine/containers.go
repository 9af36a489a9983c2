package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/runtime"
)

// The files of one container, under <root>/containers/<id>/.
const (
	specFile     = "config.json" // the OCI spec: the directory is the bundle
	rootfsDir    = "rootfs"      // where the snapshot is mounted
	exitFile     = "exit"        // written by the monitor when the program ends
	attachSock   = "attach.sock" // the monitor's attach socket
	monitorLog   = "monitor.log" // the monitor's own stderr
	hostnameFile = "hostname"    // bound at /etc/hostname
	hostsFile    = "hosts"       // bound at /etc/hosts
	resolvFile   = "resolv.conf" // bound at /etc/resolv.conf
	lockName     = "lock"        // serialises start, stop and removal
	logSuffix    = "-json.log"   // <id>-json.log, Docker's name
)

// stateDB is the container database's file under the root.
const stateDB = "state.db"

// containerState opens the container database on first use, so image
// commands never pay for it.
type containerState struct {
	once sync.Once
	db   *state.Store
	err  error
	rt   *runtime.Runtime
}

// db returns the container database, opening it and the runtime once.
func (e *Engine) db(ctx context.Context) (*state.Store, error) {
	e.cs.once.Do(func() {
		for _, d := range []string{e.containersDir(), e.volumesDir()} {
			if err := os.MkdirAll(d, 0o711); err != nil {
				e.cs.err = fmt.Errorf("make %s: %w", d, err)
				return
			}
		}
		rt, err := runtime.New(filepath.Join(e.root, "runtime"), false)
		if err != nil {
			e.cs.err = err
			return
		}
		rt.Warn = func(string) {}
		e.cs.rt = rt
		e.cs.db, e.cs.err = state.Open(ctx, filepath.Join(e.root, stateDB))
	})
	return e.cs.db, e.cs.err
}

// runtime returns the runtime that runs the engine's containers; db must
// have been opened.
func (e *Engine) runtime() *runtime.Runtime { return e.cs.rt }

// Close releases the container database if it was opened.
func (e *Engine) Close() error {
	if e.cs.db != nil {
		return e.cs.db.Close()
	}
	return nil
}

func (e *Engine) containersDir() string { return filepath.Join(e.root, "containers") }
func (e *Engine) volumesDir() string    { return filepath.Join(e.root, "volumes") }

// containerDir is the container's directory, its OCI bundle.
func (e *Engine) containerDir(id string) string { return filepath.Join(e.containersDir(), id) }

func (e *Engine) containerPath(id, name string) string {
	return filepath.Join(e.containerDir(id), name)
}

// logPath is where the monitor writes the container's log.
func (e *Engine) logPath(id string) string { return e.containerPath(id, id+logSuffix) }

// newID returns a random 64-hex container ID that does not start with
// digits only, so a short ID is never mistaken for a number.
func newID() (string, error) {
	for range 16 {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("random id: %w", err)
		}
		id := hex.EncodeToString(b[:])
		for _, c := range id[:12] {
			if c > '9' {
				return id, nil
			}
		}
	}
	return "", fmt.Errorf("could not draw a container id")
}

// Container returns the container a reference (ID, name or unique ID
// prefix) names.
func (e *Engine) Container(ctx context.Context, ref string) (*state.Container, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	c, err := db.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	return e.reconcile(ctx, c)
}

// Containers lists every container, newest first, after noticing any
// whose monitor died.
func (e *Engine) Containers(ctx context.Context) ([]*state.Container, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := db.Containers(ctx)
	if err != nil {
		return nil, err
	}
	for i, c := range cs {
		if cs[i], err = e.reconcile(ctx, c); err != nil {
			return nil, err
		}
	}
	return cs, nil
}
