// Package monitor is the per-container monitor's steady state and the Go
// glue around it.
//
// Every container started by `berth run` is owned by a monitor: the berth
// binary re-executed, outliving the CLI, holding the container's stdio,
// writing its logs and waiting for it. A Go runtime costs about ten times
// the memory a monitor may use, so while the container runs the process is
// C, taking over from a constructor before the Go runtime starts (as
// runtime/nsenter does). Importing the package installs it:
//
//	import _ "github.com/berth-containers/berth/engine/monitor"
//
// A monitor's life: Go code creates and starts the container (a child of
// the process), then calls Exec, which re-executes /proc/self/exe with
// _BERTH_MON_* variables. The constructor runs the loop: container output
// to the log file (Docker's json-file format, rotated) and to every attach
// client; client input to the container's stdin; resizes to the pty; ticks
// (a periodic command, for healthchecks). When the container's init has
// exited and its output is drained (bounded: 1 s of quiet, 3 s in all), it
// writes the exit file atomically (ReadExit reads it), sends every client
// the exit frame, and executes Config.Next with the attach clients and the
// listener still open (Handoff takes them). Go code records the exit and
// may start the container again and call Exec again, any number of times.
//
// If an input is bad the loop does not run: the exit file gets status=-1,
// code=125 and error=..., and Next is executed at once; the container,
// untouched, is still a child of the process. An error while the loop runs
// (the log cannot be written, say) is reported in error= next to a real
// status.
//
// # Attach protocol
//
// Unix stream sockets carry frames with an 8-byte header as in Docker's
// stdcopy: byte 0 the kind, bytes 1-3 zero, bytes 4-7 the payload length,
// big-endian. Monitor to client: 1 stdout data, 2 stderr data (with a tty
// all output is 1), 3 exit with the shell-style code in ASCII decimal, sent
// after the output. Client to monitor: 0 stdin data, 1 close stdin (ignored
// with a tty), 2 resize (rows and cols, big-endian 16-bit each), 3 detach.
// A client that falls 256 KiB behind is disconnected; stdin the container
// does not read is kept up to 256 KiB, then clients are not read until it
// drains. With a tty, stdin data always goes to the pty master.
//
// # Log records
//
// One JSON object a line: {"log":"...","stream":"stdout","time":"..."},
// time in UTC with nine fraction digits. Output is split after each
// newline (kept in "log"); 16 KiB without a newline, or the end of the
// stream, make a record without one. Quote, backslash and control
// characters are escaped; valid UTF-8 is kept as is; each byte of invalid
// UTF-8 becomes U+FFFD, as in Docker's json-file (a multi-byte character
// cut by the 16 KiB limit is thus replaced on both sides of the cut).
// Before a record would make the file pass the size limit, the files
// shift (with N files kept in all: log.(N-2) to log.(N-1), ..., log to
// log.1) and a new log starts; with one file the log is emptied in place. A single record larger than the limit is
// written whole into an empty file.
//
// # berth-init
//
// Executed under the name berth-init (argv[0]'s base name), the binary is a
// minimal init for `--init`: `berth-init [--] command [args...]` runs the
// command as its child with default signal dispositions, forwards every
// signal it receives to it (SIGCHLD and fault signals excepted), reaps every
// zombie (as pid 1 or, elsewhere, as a child subreaper) and exits with the
// command's code, 128+signal if it was killed. A command not found exits
// 127, one that cannot be executed 126, a missing command 2, each with one
// line "berth-init: ..." on stderr.
package monitor
