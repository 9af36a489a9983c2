package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine"
	"github.com/berth-containers/berth/engine/logfile"
	"github.com/berth-containers/berth/internal/errdefs"
)

func newLogsCmd() *cobra.Command {
	var follow, timestamps, details bool
	var tail, since, until string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := engine.LogOptions{Tail: -1, Follow: follow}
			var err error
			if tail != "all" && tail != "" {
				if o.Tail, err = strconv.Atoi(tail); err != nil {
					return fmt.Errorf("invalid tail value %q: a number or \"all\"", tail)
				}
			}
			now := time.Now()
			if o.Since, err = parseTimeArg(since, now); err != nil {
				return fmt.Errorf("invalid value for \"since\": %w", err)
			}
			if o.Until, err = parseTimeArg(until, now); err != nil {
				return fmt.Errorf("invalid value for \"until\": %w", err)
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			return e.Logs(cmd.Context(), args[0], o, func(en logfile.Entry) error {
				w := stdout
				if en.Stream == "stderr" {
					w = stderr
				}
				if timestamps {
					if _, err := fmt.Fprint(w, en.Time.UTC().Format(rfc3339NanoFixed)+" "); err != nil {
						return err
					}
				}
				_, err := w.Write(en.Line)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "follow log output")
	fl.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	fl.BoolVar(&details, "details", false, "show extra details provided to logs (none with json-file)")
	fl.StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	fl.StringVar(&since, "since", "", "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
	fl.StringVar(&until, "until", "", "show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
	return cmd
}

// parseTimeArg reads Docker's --since/--until: RFC 3339 (with or without
// time zone and fraction), a date, Unix seconds[.nanos], or a duration
// before now.
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		loc := time.Local
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	secs, frac, _ := strings.Cut(s, ".")
	if sec, err := strconv.ParseInt(secs, 10, 64); err == nil {
		var nsec int64
		if frac != "" {
			frac = (frac + "000000000")[:9]
			if nsec, err = strconv.ParseInt(frac, 10, 64); err != nil {
				return time.Time{}, fmt.Errorf("%q is not a time", s)
			}
		}
		return time.Unix(sec, nsec), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time, a Unix timestamp or a duration", s)
}

func newExecCmd() *cobra.Command {
	var interactive, tty, detach, privileged bool
	var env, envFiles []string
	var user, workdir, detachKeys string
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			fileEnv, err := readEnvFiles(envFiles)
			if err != nil {
				return usageError("%v", err)
			}
			o := engine.ExecOptions{
				Cmd: args[1:], Env: append(fileEnv, expandEnv(env)...), User: user, WorkingDir: workdir,
				Tty: tty, Privileged: privileged, Detach: detach, Stdout: os.Stdout, Stderr: os.Stderr,
			}
			if interactive {
				o.Stdin = os.Stdin
			}
			_ = detachKeys
			code, err := e.Exec(cmd.Context(), args[0], o)
			var ee *engine.ExitError
			if errors.As(err, &ee) && ee.Code != 125 {
				return &statusError{code: ee.Code, err: err}
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	fl := cmd.Flags()
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&detach, "detach", "d", false, "detached mode: run command in the background")
	fl.BoolVar(&privileged, "privileged", false, "give extended privileges to the command")
	fl.StringArrayVarP(&env, "env", "e", nil, "set environment variables")
	fl.StringArrayVar(&envFiles, "env-file", nil, "read in a file of environment variables")
	fl.StringVarP(&user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}

// expandEnv gives KEY without a value the caller's value, or drops it.
func expandEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.Contains(kv, "=") {
			out = append(out, kv)
		} else if v, ok := os.LookupEnv(kv); ok {
			out = append(out, kv+"="+v)
		}
	}
	return out
}

// readEnvFiles reads Docker env files: KEY=VAL lines, comments, KEY alone
// taken from the caller's environment.
func readEnvFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("env file: %w", err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimLeft(strings.TrimRight(line, "\r"), " \t")
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			out = append(out, expandEnv([]string{line})...)
		}
	}
	return out, nil
}

func newAttachCmd() *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := e.Container(ctx, args[0])
			if err != nil {
				return err
			}
			conn, err := e.Attach(ctx, c.ID)
			if err != nil {
				return err
			}
			defer conn.Close()
			return joinSession(ctx, e, c, conn, c.Config.OpenStdin && !noStdin, detachKeys, sigProxy)
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach stdin")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "proxy all received signals to the process")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}

// newInspectCmd is the top-level inspect: containers first, then images,
// as Docker's.
func newInspectCmd() *cobra.Command {
	var format, typ string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on containers or images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectObjects(cmd, args, format, typ, size)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	cmd.Flags().StringVar(&typ, "type", "", "only inspect objects of this type: container, image, volume or network")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes if the type is container")
	return cmd
}

func newContainerInspectCmd() *cobra.Command {
	var format string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectObjects(cmd, args, format, "container", size)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes")
	return cmd
}

func inspectObjects(cmd *cobra.Command, args []string, format, typ string, size bool) error {
	e, err := openEngine(cmd)
	if err != nil {
		return err
	}
	var views []any
	var failed []error
	for _, a := range args {
		v, err := inspectOne(cmd, e, a, typ, size)
		if err != nil {
			failed = append(failed, err)
			continue
		}
		views = append(views, v)
	}
	if err := writeInspect(cmd.OutOrStdout(), format, views); err != nil {
		return err
	}
	if len(failed) > 0 {
		for _, err := range failed[:len(failed)-1] {
			logError(err)
		}
		return failed[len(failed)-1]
	}
	return nil
}

// writeInspect prints inspect's objects: a JSON array, or the template
// once per object.
func writeInspect(w io.Writer, format string, views []any) error {
	if format != "" {
		return execInspect(w, format, views)
	}
	if views == nil {
		views = []any{}
	}
	b, err := json.MarshalIndent(views, "", "    ")
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// execInspect runs an inspect template on the objects and, as Docker's
// CLI does, once more on their raw JSON when a field is not found, so
// that both Go field names ({{.ID}}) and JSON keys ({{.Id}}) work.
func execInspect(w io.Writer, format string, views []any) error {
	var buf bytes.Buffer
	err := execEach(&buf, format, views)
	if err != nil && strings.Contains(err.Error(), "can't evaluate field") {
		raw := make([]any, len(views))
		for i, v := range views {
			b, jerr := json.Marshal(v)
			if jerr == nil {
				jerr = json.Unmarshal(b, &raw[i])
			}
			if jerr != nil {
				return err
			}
		}
		buf.Reset()
		err = execEach(&buf, format, raw)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func inspectOne(cmd *cobra.Command, e *engine.Engine, ref, typ string, size bool) (any, error) {
	ctx := cmd.Context()
	if typ == "" || typ == "container" {
		v, err := e.Inspect(ctx, ref)
		if err == nil && size {
			c, cerr := e.Container(ctx, v.ID)
			if cerr == nil {
				rw, virt := e.ContainerSize(ctx, c)
				v.SizeRw, v.SizeRootFs = &rw, &virt
			}
		}
		if err == nil || typ == "container" || !errors.Is(err, errdefs.ErrNotFound) {
			return v, err
		}
	}
	if typ == "" || typ == "image" {
		v, err := inspectImage(cmd, e, ref)
		if err == nil || typ == "image" {
			return v, err
		}
	}
	if typ == "" || typ == "volume" {
		v, err := e.Volume(ctx, ref)
		if err == nil {
			return volumeView(v), nil
		}
		if typ == "volume" {
			return nil, err
		}
	}
	if typ == "" || typ == "network" {
		v, err := e.InspectNetwork(ctx, ref)
		if err == nil || typ == "network" {
			return v, err
		}
	}
	if typ != "" && typ != "container" && typ != "image" && typ != "volume" && typ != "network" {
		return nil, usageError("%q is not a valid value for --type", typ)
	}
	return nil, errdefs.NotFound("no such object: %s", ref)
}

// rfc3339NanoFixed is Docker's timestamp layout for logs -t: always nine
// digits of fraction, so the lines align.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"
