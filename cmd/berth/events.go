package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine"
	"github.com/berth-containers/berth/engine/state"
)

func newEventsCmd() *cobra.Command {
	var since, until, format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from berth",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var q engine.EventQuery
			var err error
			if q.Since, err = parseTimeArg(since, now); err != nil {
				return fmt.Errorf("invalid value for \"since\": %w", err)
			}
			if q.Until, err = parseTimeArg(until, now); err != nil {
				return fmt.Errorf("invalid value for \"until\": %w", err)
			}
			fs, err := parseFilters(filters)
			if err != nil {
				return err
			}
			for k := range fs {
				if !slices.Contains([]string{"container", "event", "image", "label", "type", "volume"}, k) {
					return fmt.Errorf("invalid filter '%s'", k)
				}
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			if q.Since.IsZero() {
				// Without --since, only what happens from now on.
				evs, err := e.Events(cmd.Context(), engine.EventQuery{})
				if err != nil {
					return err
				}
				if len(evs) > 0 {
					q.AfterSeq = evs[len(evs)-1].Seq
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, unix.SIGTERM)
			defer stop()
			print := func(ev state.Event) error {
				if !matchEvent(ev, fs) {
					return nil
				}
				return printEvent(cmd, ev, format)
			}
			if !q.Until.IsZero() && q.Until.Before(now) {
				evs, err := e.Events(ctx, q)
				if err != nil {
					return err
				}
				for _, ev := range evs {
					if err := print(ev); err != nil {
						return err
					}
				}
				return nil
			}
			return e.FollowEvents(ctx, q, print)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "show all events created since timestamp")
	fl.StringVar(&until, "until", "", "stream events until this timestamp")
	fl.StringVar(&format, "format", "", "format the output using the given Go template, or json")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}

func matchEvent(ev state.Event, fs map[string][]string) bool {
	for k, vs := range fs {
		ok := slices.ContainsFunc(vs, func(v string) bool {
			switch k {
			case "type":
				return ev.Type == v
			case "event":
				return ev.Action == v || strings.HasPrefix(ev.Action, v+":")
			case "container":
				return ev.Type == "container" && (strings.HasPrefix(ev.ActorID, v) || ev.Attributes["name"] == v)
			case "image":
				return ev.Attributes["image"] == v
			case "volume":
				return ev.Type == "volume" && ev.ActorID == v
			case "label":
				lk, lv, has := strings.Cut(v, "=")
				got, ok := ev.Attributes[lk]
				return ok && (!has || got == lv)
			}
			return false
		})
		if !ok {
			return false
		}
	}
	return true
}

// eventJSON is an event as Docker's API and --format json show it.
type eventJSON struct {
	Type   string `json:"Type"`
	Action string `json:"Action"`
	Actor  struct {
		ID         string            `json:"ID"`
		Attributes map[string]string `json:"Attributes"`
	} `json:"Actor"`
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

func printEvent(cmd *cobra.Command, ev state.Event, format string) error {
	w := cmd.OutOrStdout()
	j := eventJSON{Type: ev.Type, Action: ev.Action, Scope: "local", Time: ev.Time.Unix(), TimeNano: ev.Time.UnixNano()}
	j.Actor.ID, j.Actor.Attributes = ev.ActorID, ev.Attributes
	switch format {
	case "":
		var attrs []string
		for k, v := range ev.Attributes {
			attrs = append(attrs, k+"="+v)
		}
		sort.Strings(attrs)
		_, err := fmt.Fprintf(w, "%s %s %s %s (%s)\n", ev.Time.Local().Format(rfc3339NanoFixed),
			ev.Type, ev.Action, ev.ActorID, strings.Join(attrs, ", "))
		return err
	case "json", "{{json .}}":
		return json.NewEncoder(w).Encode(j)
	}
	return execEach(w, format, []any{j})
}
