package main

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"text/tabwriter"
	"text/template"
	"time"
)

// printRows writes rows as docker's --format does: "" gives the command's
// default table, "table TEMPLATE" a table with a header derived from the
// template's fields, "json" one JSON object per line, anything else the
// template once per row.
func printRows(w io.Writer, format, defaultTable string, rows []any) error {
	return printRowsNamed(w, format, defaultTable, rows, nil)
}

// printRowsNamed is printRows with column titles that differ from the
// common ones (ps's ID is the CONTAINER ID).
func printRowsNamed(w io.Writer, format, defaultTable string, rows []any, names map[string]string) error {
	if format == "" {
		format = defaultTable
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("encode: %w", err)
			}
		}
		return nil
	}
	body, isTable := strings.CutPrefix(format, "table")
	if !isTable {
		return execEach(w, format, rows)
	}
	body = strings.TrimSpace(body)
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	if _, err := fmt.Fprintln(tw, header(body, names)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := execEach(tw, body, rows); err != nil {
		return err
	}
	return tw.Flush()
}

func execEach(w io.Writer, text string, rows []any) error {
	text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(text)
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return fmt.Errorf("invalid --format template: %w", err)
	}
	for _, r := range rows {
		if err := tmpl.Execute(w, r); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

// templateFuncs are the helpers docker's templates offer.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"join":  strings.Join,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
}

// fieldRef matches a column's {{.Field}} or {{.Label "name"}}; compiled
// on first use, since every berth process (container inits included)
// would pay for it at start-up.
var fieldRef = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\{\{\s*\.([A-Za-z]+)(?:\s+"([^"]*)")?\s*\}\}`)
})

// header turns "{{.Repository}}\t{{.CreatedSince}}" into
// "REPOSITORY\tCREATED", as docker names its columns; {{.Label "x"}}
// is headed x.
func header(body string, names map[string]string) string {
	re := fieldRef()
	h := re.ReplaceAllStringFunc(body, func(m string) string {
		sub := re.FindStringSubmatch(m)
		name := sub[1]
		if name == "Label" && sub[2] != "" {
			return sub[2]
		}
		if col, ok := names[name]; ok {
			return col
		}
		if col, ok := columnNames[name]; ok {
			return col
		}
		return strings.ToUpper(name)
	})
	return strings.NewReplacer(`\t`, "\t").Replace(h)
}

var columnNames = map[string]string{
	"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "Size": "SIZE",
	"SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS",
	"CreatedBy": "CREATED BY", "Comment": "COMMENT", "Type": "TYPE", "TotalCount": "TOTAL",
	"Active": "ACTIVE", "Reclaimable": "RECLAIMABLE",
}

// humanSize writes sizes as docker does: decimal units, 3 significant
// digits ("7.05MB").
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	s := fmt.Sprintf("%.3g", f)
	if strings.Contains(s, "e") {
		s = fmt.Sprintf("%.0f", f)
	}
	return s + units[i]
}

// humanDuration writes how long ago t was, as docker's "CREATED" column.
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Hours() + 0.5)
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", h/24/365)
}

func sinceString(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return humanDuration(time.Since(t)) + " ago"
}
