package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/network/firewall"
	"github.com/berth-containers/berth/network/link"
)

// Reset brings the store back to empty, as `system reset` does: every
// container is killed and removed, every network's bridge and the
// store's firewall table are deleted, its resolver is stopped, and the
// store's directory (images, volumes, state) is emptied. The engine is
// closed afterwards.
func (e *Engine) Reset(ctx context.Context) error {
	cs, err := e.Containers(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		err := e.Remove(ctx, c.ID, RemoveOptions{Force: true, Volumes: true})
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("remove container %s: %w", c.Name, err)
		}
	}
	if err := e.ResetNetworks(ctx); err != nil {
		return err
	}
	if err := e.Close(); err != nil {
		return err
	}
	ents, err := os.ReadDir(e.root)
	if err != nil {
		return fmt.Errorf("reset %s: %w", e.root, err)
	}
	for _, ent := range ents {
		if err := os.RemoveAll(filepath.Join(e.root, ent.Name())); err != nil {
			return fmt.Errorf("reset %s: %w", e.root, err)
		}
	}
	return nil
}

// ResetNetworks removes every network of a store that runs no container,
// the predefined ones included: records, bridges, the firewall table and
// the resolver.
func (e *Engine) ResetNetworks(ctx context.Context) error {
	lock, err := e.lockNetworks(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Unlock() }()
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	nets, err := db.Networks(ctx)
	if err != nil {
		return err
	}
	err = db.Tx(ctx, func(tx *state.Tx) error {
		for _, n := range nets {
			if err := tx.DeleteNetwork(ctx, n.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	errs := []error{e.stopResolver()}
	for _, n := range nets {
		if n.Driver == "bridge" {
			errs = append(errs, link.DeleteBridge(ctx, n.Bridge))
		}
	}
	errs = append(errs, firewall.NewHost(firewall.Table(e.firewallTable())).Remove(ctx),
		os.RemoveAll(e.networkDir()))
	return errors.Join(errs...)
}

// stopResolver ends the store's resolver, if one runs, and waits (a
// bounded time) for it to go. It is found by its name and the store root
// in its environment.
func (e *Engine) stopResolver() error {
	want := []byte(envMonitorRoot + "=" + e.root + "\x00")
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("find resolver: %w", err)
	}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || !bytes.HasPrefix(cmdline, []byte(resolverArg0+"\x00")) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, want...)) {
			continue
		}
		if err := unix.Kill(pid, unix.SIGTERM); err != nil {
			continue // gone already
		}
		for range 100 {
			if unix.Kill(pid, 0) != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
