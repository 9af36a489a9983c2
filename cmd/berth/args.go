package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// normalizeArgs turns Go-flag style single-dash long options
// ("-bundle x", "-pid-file=y"), which tools written for runc send, into
// the double-dash form cobra parses. Only names that some command defines
// as a long flag are touched, so "-d" stays as it is; and only up to the
// first argument that is neither a subcommand nor a flag's value (the
// container id): what follows it is the container's command line, or
// arguments runc would not parse as flags either.
func normalizeArgs(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	var collect func(c *cobra.Command)
	collect = func(c *cobra.Command) {
		add := func(f *pflag.Flag) {
			if len(f.Name) > 1 {
				long[f.Name] = true
			}
		}
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			collect(sub)
		}
	}
	collect(root)
	out := make([]string, 0, len(args))
	cmd := root
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			sub := subcommand(cmd, a)
			if sub == nil {
				return append(out, args[i:]...)
			}
			cmd = sub
			out = append(out, a)
			continue
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") && len(a) > 2 && long[name] {
			a = "-" + a
		}
		out = append(out, a)
		// A flag's value in the next argument is not the first argument.
		if f := lookupFlag(cmd, a, name); f != nil && !inline && f.NoOptDefVal == "" && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

func subcommand(c *cobra.Command, name string) *cobra.Command {
	for _, sub := range c.Commands() {
		if sub.Name() == name || sub.HasAlias(name) {
			return sub
		}
	}
	return nil
}

// lookupFlag finds a flag of c or a persistent flag of its parents, by
// long name ("--name") or shorthand ("-n").
func lookupFlag(c *cobra.Command, arg, name string) *pflag.Flag {
	for ; c != nil; c = c.Parent() {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			if strings.HasPrefix(arg, "--") {
				if f := fs.Lookup(name); f != nil {
					return f
				}
			} else if len(name) == 1 {
				if f := fs.ShorthandLookup(name); f != nil {
					return f
				}
			}
		}
	}
	return nil
}
