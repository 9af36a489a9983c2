package monitor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Environment variables read by the constructor (and, for the clients and
// the listener, set again for the program executed after it).
const (
	envMonitor  = "_BERTH_MONITOR"
	envPid      = "_BERTH_MON_PID"
	envStdout   = "_BERTH_MON_STDOUT"
	envStderr   = "_BERTH_MON_STDERR"
	envTTY      = "_BERTH_MON_TTY"
	envStdin    = "_BERTH_MON_STDIN"
	envLog      = "_BERTH_MON_LOG"
	envLogMax   = "_BERTH_MON_LOG_MAX"
	envLogFiles = "_BERTH_MON_LOG_FILES"
	envListen   = "_BERTH_MON_LISTEN"
	envClients  = "_BERTH_MON_CLIENTS"
	envClaim    = "_BERTH_MON_CLAIM"
	envExit     = "_BERTH_MON_EXIT"
	envNext     = "_BERTH_MON_NEXT"
	envTickMs   = "_BERTH_MON_TICK_MS"
	envTick     = "_BERTH_MON_TICK"
	// envPrefix starts every variable above.
	envPrefix = "_BERTH_MON"
	// argSep separates the fields of an argv in one variable.
	argSep = "\x1f"
)

// Config is what the monitor's C phase needs for one run of the container.
type Config struct {
	// Pid is the container init's pid, a child of the calling process.
	Pid int
	// Stdout and Stderr are the read ends of the container's output
	// pipes; TTY, instead of them, is the pty master. Stdin is the write
	// end of the container's stdin pipe (nil without -i; with a tty stdin
	// goes to the master).
	Stdout, Stderr, TTY, Stdin *os.File
	// LogPath is the json-file log ("" for no log). LogMaxSize is the size
	// a file may reach before rotation (0: unlimited); LogMaxFiles the
	// number of files kept, the current one included (0 means 1).
	LogPath     string
	LogMaxSize  int64
	LogMaxFiles int
	// Listener is a listening unix socket for attach clients (see
	// ListenUnix), nil for none. Clients are attach clients already
	// connected, which see the output from its first byte.
	Listener *os.File
	Clients  []*os.File
	// Claim, one of Clients, may record the container's exit itself: after
	// the exit frame the C phase waits (a few seconds at most) for its
	// answer, Conn.ExitRecorded or Conn.ExitYours, and when the exit is
	// recorded ends without running Next.
	Claim *os.File
	// ExitPath is where the exit file is written (see ReadExit).
	ExitPath string
	// Next is the argv executed (as /proc/self/exe) after the container
	// has exited; Next[0] is only its name.
	Next []string
	// Tick, when TickInterval is set, is an argv executed (as
	// /proc/self/exe) every TickInterval, never two at once, stdio on
	// /dev/null.
	TickInterval time.Duration
	Tick         []string
	// Argv is the C phase's command line, as ps shows it and as liveness
	// checks read it from /proc; nil gives "berth-monitor PID".
	Argv []string
}

// Exec hands the process over to the monitor's C phase: it re-executes
// /proc/self/exe with the configuration in its environment. The fds of cfg
// are inherited by it and closed before Next runs, except the listener and
// the clients, which Handoff returns there. Exec returns only on error.
func Exec(cfg Config) error {
	if !haveConstructor {
		return errdefs.Precondition("exec monitor: berth was built without cgo, which the monitor needs")
	}
	vars, fds, err := plan(cfg)
	if err != nil {
		return err
	}
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("exec monitor: keep fd %d open: %w", fd, err)
		}
	}
	env := append(withoutMonitorVars(os.Environ()), vars...)
	argv := cfg.Argv
	if len(argv) == 0 {
		argv = []string{"berth-monitor", strconv.Itoa(cfg.Pid)}
	}
	err = syscall.Exec("/proc/self/exe", argv, env)
	return fmt.Errorf("exec monitor: %w", err)
}

// plan validates cfg and computes the variables for the C phase and the
// fds it must inherit.
func plan(cfg Config) (vars []string, fds []int, err error) {
	if cfg.Pid <= 0 {
		return nil, nil, errdefs.Invalid("monitor: bad container pid %d", cfg.Pid)
	}
	if cfg.TTY != nil && (cfg.Stdout != nil || cfg.Stderr != nil || cfg.Stdin != nil) {
		return nil, nil, errdefs.Invalid("monitor: a tty excludes stdin, stdout and stderr pipes")
	}
	if cfg.ExitPath == "" {
		return nil, nil, errdefs.Invalid("monitor: no exit file path")
	}
	if err := checkArgv("next", cfg.Next); err != nil {
		return nil, nil, err
	}
	if cfg.LogMaxSize < 0 || cfg.LogMaxFiles < 0 || cfg.LogMaxFiles > 1000 {
		return nil, nil, errdefs.Invalid("monitor: bad log limits: size %d, files %d", cfg.LogMaxSize, cfg.LogMaxFiles)
	}
	for _, s := range []string{cfg.LogPath, cfg.ExitPath} {
		if strings.ContainsRune(s, 0) {
			return nil, nil, errdefs.Invalid("monitor: path %q contains NUL", s)
		}
	}
	set := func(name, value string) { vars = append(vars, name+"="+value) }
	set(envMonitor, "1")
	set(envPid, strconv.Itoa(cfg.Pid))
	for _, f := range []struct {
		name string
		file *os.File
	}{{envStdout, cfg.Stdout}, {envStderr, cfg.Stderr}, {envTTY, cfg.TTY}, {envStdin, cfg.Stdin}, {envListen, cfg.Listener}} {
		if f.file == nil {
			continue
		}
		fd, err := fdOf(f.file)
		if err != nil {
			return nil, nil, err
		}
		set(f.name, strconv.Itoa(fd))
		fds = append(fds, fd)
	}
	if len(cfg.Clients) > 0 {
		list := make([]string, 0, len(cfg.Clients))
		for _, c := range cfg.Clients {
			fd, err := fdOf(c)
			if err != nil {
				return nil, nil, err
			}
			list = append(list, strconv.Itoa(fd))
			fds = append(fds, fd)
		}
		set(envClients, strings.Join(list, ","))
	}
	if cfg.Claim != nil {
		if !slices.Contains(cfg.Clients, cfg.Claim) {
			return nil, nil, errdefs.Invalid("monitor: the claiming client is not one of the clients")
		}
		fd, err := fdOf(cfg.Claim)
		if err != nil {
			return nil, nil, err
		}
		set(envClaim, strconv.Itoa(fd))
	}
	if cfg.LogPath != "" {
		files := max(cfg.LogMaxFiles, 1)
		set(envLog, cfg.LogPath)
		set(envLogMax, strconv.FormatInt(cfg.LogMaxSize, 10))
		set(envLogFiles, strconv.Itoa(files))
	}
	set(envExit, cfg.ExitPath)
	set(envNext, strings.Join(cfg.Next, argSep))
	if cfg.TickInterval != 0 || len(cfg.Tick) > 0 {
		if cfg.TickInterval < time.Millisecond {
			return nil, nil, errdefs.Invalid("monitor: tick interval %v under 1ms", cfg.TickInterval)
		}
		if err := checkArgv("tick", cfg.Tick); err != nil {
			return nil, nil, err
		}
		set(envTickMs, strconv.FormatInt(cfg.TickInterval.Milliseconds(), 10))
		set(envTick, strings.Join(cfg.Tick, argSep))
	}
	return vars, fds, nil
}

func checkArgv(what string, argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return errdefs.Invalid("monitor: empty %s command", what)
	}
	for _, a := range argv {
		if strings.ContainsAny(a, argSep+"\x00") {
			return errdefs.Invalid("monitor: %s argument %q contains a separator or NUL", what, a)
		}
	}
	return nil
}

// fdOf is f's descriptor, refusing a closed file.
func fdOf(f *os.File) (int, error) {
	if f == nil {
		return 0, errdefs.Invalid("monitor: nil file")
	}
	fd := f.Fd()
	if fd == ^uintptr(0) {
		return 0, errdefs.Invalid("monitor: file %s is closed", f.Name())
	}
	return int(fd), nil
}

// withoutMonitorVars drops stale monitor variables from env.
func withoutMonitorVars(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, envPrefix) {
			out = append(out, kv)
		}
	}
	return out
}

// Handoff takes, in the program executed after the C phase, the attach
// clients still connected and the listener. It unsets their variables and
// makes the fds close-on-exec again; the caller owns the files. Both are
// empty when there are none (or when called at any other time).
func Handoff() (clients []*os.File, listener *os.File) {
	if v, ok := os.LookupEnv(envClients); ok {
		_ = os.Unsetenv(envClients)
		for _, s := range strings.Split(v, ",") {
			if f := adopt(s, "attach-client"); f != nil {
				clients = append(clients, f)
			}
		}
	}
	if v, ok := os.LookupEnv(envListen); ok {
		_ = os.Unsetenv(envListen)
		listener = adopt(v, "attach-listener")
	}
	return clients, listener
}

// adopt wraps an inherited fd given in decimal, nil if it is not one.
func adopt(s, name string) *os.File {
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return nil
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return nil
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name)
}

// Exit is the content of an exit file.
type Exit struct {
	// Status is the raw wait status; -1 when the monitor did not wait for
	// the container (its inputs were bad, see Error): then the container
	// may still run, a child of the process reading the file.
	Status int
	// Code is the shell-style exit code: the exit status, or 128+signal.
	Code int
	// Finished is when the monitor saw the container exit.
	Finished time.Time
	// Error is what went wrong in the monitor, if anything.
	Error string
}

// ReadExit reads the exit file the monitor wrote at path.
func ReadExit(path string) (Exit, error) {
	f, err := os.Open(path)
	if err != nil {
		return Exit{}, fmt.Errorf("read exit file: %w", err)
	}
	defer f.Close()
	e, err := parseExit(bufio.NewScanner(f))
	if err != nil {
		return Exit{}, fmt.Errorf("read exit file %s: %w", path, err)
	}
	return e, nil
}

func parseExit(sc *bufio.Scanner) (Exit, error) {
	var e Exit
	seen := map[string]bool{}
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		seen[k] = true
		var err error
		switch k {
		case "status":
			e.Status, err = strconv.Atoi(v)
		case "code":
			e.Code, err = strconv.Atoi(v)
		case "finished":
			var ns int64
			ns, err = strconv.ParseInt(v, 10, 64)
			e.Finished = time.Unix(0, ns)
		case "error":
			e.Error = v
		}
		if err != nil {
			return Exit{}, fmt.Errorf("bad %s: %w", k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Exit{}, err
	}
	if !seen["status"] || !seen["code"] {
		return Exit{}, errors.New("incomplete: no status or code")
	}
	return e, nil
}
