package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxwatch/fluxwatch/config"
)

const rootLong = `fluxwatch finds fast-flux domains by measuring them: it resolves seeded
domains again and again through many vantage resolvers, keeps the answers over
time, classifies the domains whose answers rotate across unrelated networks,
and publishes blocklists.

Flags go before, between or after the arguments; -- ends them. --config, --db,
--log-level and --log-format are every command's, and may also come before its
name. Settings come from the defaults, then the --config file, then the flags
given.

Exit status: 0 when the command did all it was asked, 1 when it failed, 2 when
the command line was wrong. A command's help says what it counts as done when
only part of its work succeeded.`

// newRoot builds the command tree. Each run builds its own: the flags of a
// tree hold the values of one command line.
func newRoot(std *stdio) *cobra.Command {
	root := &cobra.Command{
		Use:     "fluxwatch",
		Short:   "find fast-flux domains by measuring them",
		Long:    rootLong,
		Version: buildVersion(),
		Args:    knownCommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("%w: no command given", errUsage)
		},
		// Errors are printed once, by main, with a pointer to the help
		// rather than the whole of it.
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		DisableAutoGenTag:          true, // man pages that do not change with the day they were made
	}
	root.SetIn(std.in)
	root.SetOut(std.out)
	root.SetErr(std.err)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(flagError)
	root.PersistentFlags().StringP("config", "c", "", "YAML config `file` (flags override it)")
	rootFlags(root.PersistentFlags(), config.Default())

	root.AddGroup(
		&cobra.Group{ID: "measure", Title: "Measure:"},
		&cobra.Group{ID: "judge", Title: "Judge and publish:"},
		&cobra.Group{ID: "look", Title: "Look:"},
		&cobra.Group{ID: "keep", Title: "Look after the database and tables:"},
		&cobra.Group{ID: "try", Title: "Try it on a simulated world:"},
	)
	for _, c := range []struct {
		group string
		cmds  []*cobra.Command
	}{
		{"measure", []*cobra.Command{seedsCommand(std), importCommand(std), crawlCommand(std), agentCommand(std)}},
		{"judge", []*cobra.Command{classifyCommand(std), exportCommand(std), blocklistCommand(std), daemonCommand(std), clusterCommand(std)}},
		{"look", []*cobra.Command{showCommand(std), networksCommand(std), statusCommand(std), reportCommand(std), exportObservationsCommand(std)}},
		{"keep", []*cobra.Command{dbCommand(std), ipdbCommand(std)}},
		{"try", []*cobra.Command{demoCommand(std), simnetCommand(std), evalCommand(std)}},
	} {
		for _, cmd := range c.cmds {
			cmd.GroupID = c.group
		}
		root.AddCommand(c.cmds...)
	}
	root.AddCommand(versionCommand(std), manCommand())
	markFileFlags(root)
	return root
}

// usageTemplate is cobra's, but for a command that holds subcommands it
// shows only "fluxwatch seeds [command]": the root and the groups run, but
// only to say that a subcommand is missing.
const usageTemplate = `Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{if eq (len .Groups) 0}}

Available Commands:{{range $cmds}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{else}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if not .AllChildCommandsHaveGroup}}

Additional Commands:{{range $cmds}}{{if (and (eq .GroupID "") (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasHelpSubCommands}}

Additional help topics:{{range .Commands}}{{if .IsAdditionalHelpTopicCommand}}
  {{rpad .CommandPath .CommandPathPadding}} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// knownCommand is the root's argument check: an argument left over is a
// command fluxwatch does not have.
func knownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return fmt.Errorf("%w: unknown command %q%s", errUsage, args[0], didYouMean(cmd, args[0]))
}

// didYouMean names the subcommands of cmd spelled like name.
func didYouMean(cmd *cobra.Command, name string) string {
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		return " (did you mean " + strings.Join(s, " or ") + "?)"
	}
	return ""
}

// group returns a command that holds subcommands: given none, or one it
// does not have, it is a usage error.
func group(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	var names []string
	for _, s := range subs {
		names = append(names, s.Name())
	}
	want := names[0]
	if n := len(names); n > 1 {
		want = strings.Join(names[:n-1], ", ") + " or " + names[n-1]
	}
	g := &cobra.Command{
		Use:               use,
		Short:             short,
		Long:              long,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%w: %s needs a subcommand: %s", errUsage, use, want)
			}
			return fmt.Errorf("%w: unknown %s subcommand %q (want %s)%s", errUsage, use, args[0], want, didYouMean(cmd, args[0]))
		},
	}
	g.AddCommand(subs...)
	return g
}

// noArgs is the argument check of a command that takes none.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, commandName(cmd), args[0])
	}
	return nil
}

// commandName is a command's path without the program's name: "seeds add".
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// flagError makes a flag the command does not have, or a value it cannot
// take, a usage error that says what was expected.
func flagError(cmd *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	switch {
	case errors.As(err, &invalid):
		f := invalid.GetFlag()
		err = fmt.Errorf("invalid argument %q for \"--%s\" flag: %s", invalid.GetValue(), f.Name, wanted(f.Value, invalid.Unwrap()))
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}

// wanted says what a flag of v's type takes, where the value's own parser
// would only name the Go function that failed.
func wanted(v pflag.Value, cause error) string {
	switch v.Type() {
	case "int", "int64":
		return "want a whole number"
	case "float64":
		return "want a number"
	case "bool":
		return "want true or false"
	}
	return cause.Error() // fluxwatch's own values say it themselves
}

// markFileFlags lets shell completion offer files for the flags whose
// value is a file (their help names it `file` or `path`) and directories
// for those that take a `directory`.
func markFileFlags(cmd *cobra.Command) {
	mark := func(fs *pflag.FlagSet) {
		fs.VisitAll(func(f *pflag.Flag) {
			switch kind, _ := pflag.UnquoteUsage(f); kind {
			case "file", "path":
				exts := []string{}
				if f.Name == "config" {
					exts = []string{"yaml", "yml"}
				}
				fs.SetAnnotation(f.Name, cobra.BashCompFilenameExt, exts)
			case "directory":
				fs.SetAnnotation(f.Name, cobra.BashCompSubdirsInDir, []string{})
			}
		})
	}
	mark(cmd.Flags()) // before parsing, only the command's own
	mark(cmd.PersistentFlags())
	for _, c := range cmd.Commands() {
		markFileFlags(c)
	}
}
