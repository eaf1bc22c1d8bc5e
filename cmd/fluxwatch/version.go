package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version, when set at build time with -ldflags "-X main.version=…",
// replaces the module version the build recorded.
var version string

// buildVersion describes this build: its version, the VCS revision and
// commit time it was built from, and the Go release that built it.
func buildVersion() string {
	info, _ := debug.ReadBuildInfo()
	return describeBuild(version, info)
}

// describeBuild describes a build from what the Go toolchain recorded in
// it (info may be nil); override, if set, is its version.
func describeBuild(override string, info *debug.BuildInfo) string {
	ver, revision, when, goVersion := override, "unknown", "unknown", runtime.Version()
	if info != nil {
		if ver == "" {
			ver = info.Main.Version
		}
		goVersion = info.GoVersion
		dirty := ""
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if revision != "unknown" {
			revision += dirty
		}
	}
	if ver == "" {
		ver = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fluxwatch %s\n", ver)
	fmt.Fprintf(&b, "revision  %s\n", revision)
	fmt.Fprintf(&b, "time      %s\n", when)
	fmt.Fprintf(&b, "go        %s", goVersion)
	return b.String()
}

func versionCommand(std *stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version, the revision it was built from and the Go release",
		Long: `Print the version, the VCS revision the binary was built from (with -dirty
when the work tree had changes), that commit's time and the Go release that
built it. A go build or go install from a checkout records them; the same as
fluxwatch --version.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(std.out, cmd.Root().Version)
			return err
		},
	}
}
