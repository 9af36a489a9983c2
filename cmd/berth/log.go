package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// logConfig is where errors go besides stderr: tools that drive a runc-like
// runtime (containerd's shim, conmon) pass --log and read the reason for a
// failure from that file, often as JSON lines.
var logConfig struct {
	path   string
	format string
	debug  bool
}

func logError(err error) {
	fmt.Fprintf(os.Stderr, "berth: %v\n", err)
	writeLog("error", err.Error())
}

func logWarn(msg string) {
	fmt.Fprintf(os.Stderr, "berth: warning: %s\n", msg)
	writeLog("warning", msg)
}

func logDebug(format string, args ...any) {
	if logConfig.debug {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintf(os.Stderr, "berth: debug: %s\n", msg)
		writeLog("debug", msg)
	}
}

func writeLog(level, msg string) {
	if logConfig.path == "" {
		return
	}
	f, err := os.OpenFile(logConfig.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth: open log %s: %v\n", logConfig.path, err)
		return
	}
	defer f.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var line []byte
	if logConfig.format == "json" {
		line, _ = json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
	} else {
		line = []byte(fmt.Sprintf("time=%q level=%s msg=%q", now, level, msg))
	}
	_, _ = f.Write(append(line, '\n'))
}
