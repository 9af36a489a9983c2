package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// command is one of berth's top-level commands: the names it is called
// by (its name, then its aliases) and how to build it.
type command struct {
	names []string
	build func() *cobra.Command
}

func named(name string, build func() *cobra.Command) command {
	return command{names: []string{name}, build: build}
}

// topLevel lists berth's commands. A run builds only the one it runs:
// every command's flags are allocations, and on a cold start each new
// page of them is a page fault that every container start would pay.
func topLevel() []command {
	return []command{
		named("runtime", func() *cobra.Command { return newRuntimeCmd("runtime") }),
		named("registry", newRegistryCmd),
		named("image", newImageCmd),
		named("images", func() *cobra.Command { return newImagesCmd("images") }),
		named("rmi", func() *cobra.Command { return newRmiCmd("rmi") }),
		named("tag", func() *cobra.Command { return newTagCmd("tag") }),
		named("history", func() *cobra.Command { return newHistoryCmd("history") }),
		named("pull", newPullCmd), named("push", newPushCmd),
		named("save", newSaveCmd), named("load", newLoadCmd),
		named("import", func() *cobra.Command { return newImportCmd("import") }),
		named("login", newLoginCmd), named("logout", newLogoutCmd),
		named("system", newSystemCmd),
		named("run", newRunCmd), named("create", newCreateCmd), named("start", newStartCmd),
		named("stop", newStopCmd), named("restart", newRestartCmd), named("kill", newKillCmd),
		{names: []string{"rm", "remove"}, build: func() *cobra.Command { return newRmCmd("rm") }},
		named("ps", func() *cobra.Command { return newPsCmd("ps") }),
		named("logs", newLogsCmd), named("exec", newExecCmd), named("attach", newAttachCmd),
		named("inspect", newInspectCmd), named("wait", newWaitCmd), named("top", newTopCmd),
		named("stats", newStatsCmd), named("cp", newCpCmd), named("commit", newCommitCmd),
		named("rename", newRenameCmd), named("pause", newPauseCmd), named("unpause", newUnpauseCmd),
		named("update", newUpdateCmd), named("port", newPortCmd), named("diff", newDiffCmd),
		named("export", newExportCmd), named("events", newEventsCmd),
		named("container", newContainerCmd), named("volume", newVolumeCmd),
		named("network", newNetworkCmd),
		named("build", newBuildCmd), named("builder", newBuilderCmd),
	}
}

// addCommands adds to root the command args call, or every command when
// args name none of them (help, completion, a mistyped name: cobra then
// lists or suggests from all of them).
func addCommands(root *cobra.Command, args []string) {
	all := topLevel()
	name := commandName(root, args)
	for _, c := range all {
		if slices.Contains(c.names, name) {
			root.AddCommand(c.build())
			return
		}
	}
	for _, c := range all {
		root.AddCommand(c.build())
	}
}

// commandName is the first argument that is not one of root's flags or
// a flag's value; "" when there is none.
func commandName(root *cobra.Command, args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			if a == "--" {
				return ""
			}
			return a
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := root.PersistentFlags().Lookup(name)
		if f == nil {
			// -h, --help, --version or a mistake: cobra answers it
			// with the whole tree.
			return ""
		}
		if !inline && f.NoOptDefVal == "" {
			i++
		}
	}
	return ""
}
