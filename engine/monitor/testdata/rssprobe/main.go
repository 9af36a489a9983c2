// Command rssprobe is a static program shaped like berth's monitor: it
// starts `/bin/sh -c SCRIPT` with pipes and hands the process to the
// monitor's C phase, so that the phase's memory can be measured as the
// static berth binary would have it.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/berth-containers/berth/engine/monitor"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "next" {
		clients, listener := monitor.Handoff()
		for _, c := range clients {
			c.Close()
		}
		if listener != nil {
			listener.Close()
		}
		e, err := monitor.ReadExit(filepath.Join(os.Args[2], "exit"))
		if err != nil || e.Error != "" {
			fmt.Fprintln(os.Stderr, err, e.Error)
			os.Exit(1)
		}
		os.Exit(e.Code)
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: rssprobe DIR SCRIPT")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(dir, script string) error {
	or, ow, err := os.Pipe()
	if err != nil {
		return err
	}
	er, ew, err := os.Pipe()
	if err != nil {
		return err
	}
	ir, iw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ir, ow, ew
	if err := cmd.Start(); err != nil {
		return err
	}
	ir.Close()
	ow.Close()
	ew.Close()
	l, err := monitor.ListenUnix(filepath.Join(dir, "attach.sock"))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return monitor.Exec(monitor.Config{
		Pid: cmd.Process.Pid, Stdout: or, Stderr: er, Stdin: iw,
		LogPath: filepath.Join(dir, "log"), LogMaxSize: 10 << 20, LogMaxFiles: 2,
		Listener: l, ExitPath: filepath.Join(dir, "exit"), Next: []string{self, "next", dir},
	})
}
