package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The tests of the command line itself: where flags may stand, help,
// completion, man pages, exit statuses, messages and the version.

// fwContext is fw with a context.
func fwContext(ctx context.Context, args ...string) (stdout string, err error) {
	var out, errb bytes.Buffer
	err = run(ctx, args, strings.NewReader(""), &out, &errb)
	return out.String(), err
}

// seededDB returns a small database: four stored verdicts (two of them
// listed with confident addresses), the probes of importer/testdata's
// zdns lines, and four seeded domains.
func seededDB(t *testing.T) string {
	t.Helper()
	db := storeVerdicts(t, exportVerdicts())
	if _, stderr, err := fw(t, "", "import", "--db", db, "--format", "zdns", "../../importer/testdata/zdns.jsonl"); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if _, stderr, err := fw(t, "a.test\nb.test\nc.test\nd.test\n", "seeds", "add", "--db", db, "-"); err != nil {
		t.Fatalf("seeds add: %v\n%s", err, stderr)
	}
	return db
}

// copyFile copies a file (a database) to a new one.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// silentResolver listens on a loopback UDP port and answers nothing.
func silentResolver(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// commandPaths lists the path of every command of the tree below cmd,
// hidden ones too, cobra's help command aside.
func commandPaths(cmd *cobra.Command) [][]string {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Name() != "help" {
				walk(sub, append(slices.Clip(path), sub.Name()))
			}
		}
	}
	walk(cmd, nil)
	return paths
}

// A command line whose every form, flags before, between and after the
// arguments, gives the same result.
type anywhere struct {
	path  []string   // the command
	flags []string   // its flags and their values (DIR is the form's own directory)
	args  []string   // its arguments
	setup [][]string // command lines run first on the form's database
}

// forms places the flags (with --db DB) around the arguments of a command
// line in each way a person might: all flags after the command; --db
// before it and the rest after the arguments; the flags between the
// arguments, or between a group and its subcommand.
func (a anywhere) forms(db string) map[string][]string {
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }
	dbFlag := []string{"--db", db}
	forms := map[string][]string{
		"flags first": cat(a.path, a.flags, dbFlag, a.args),
		"flags last":  cat(dbFlag, a.path, a.args, a.flags),
	}
	switch {
	case len(a.args) > 0:
		forms["flags between"] = cat(a.path, a.args[:1], dbFlag, a.flags, a.args[1:])
	case len(a.path) > 1:
		forms["flags between"] = cat(a.path[:1], dbFlag, a.path[1:], a.flags)
	}
	return forms
}

// varying are the parts of outputs that differ from run to run: times,
// rates and ports.
var varying = regexp.MustCompile(`127\.0\.0\.1:\d+|port \d+|\d+ queries/s|\d+\.\d+`)

func TestFlagsAnywhere(t *testing.T) {
	seeded := seededDB(t)
	silent := silentResolver(t)
	zdns, err := filepath.Abs("../../importer/testdata/zdns.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	seedFiles := t.TempDir()
	for name, text := range map[string]string{"one.txt": "one.test\n192.0.2.1\n", "two.txt": "two.test\n"} {
		os.WriteFile(filepath.Join(seedFiles, name), []byte(text), 0o644)
	}
	missingConfig := filepath.Join(t.TempDir(), "missing.yaml")
	tests := []anywhere{
		{path: []string{"seeds", "add"}, flags: []string{"--source", "feed", "-q"},
			args: []string{filepath.Join(seedFiles, "one.txt"), filepath.Join(seedFiles, "two.txt")}},
		{path: []string{"seeds", "list"}, flags: []string{"--all"}},
		{path: []string{"seeds", "remove"}, args: []string{"a.test", "b.test"}},
		{path: []string{"import"}, flags: []string{"-f", "zdns", "--vantage", "lab"}, args: []string{zdns}},
		{path: []string{"export-observations"}, flags: []string{"--format", "jsonl", "--domain", "flux.example"}},
		{path: []string{"crawl"}, flags: []string{"--resolver", silent, "--timeout", "50ms", "--retries", "0",
			"--delegation=false", "--ns-hosts=false", "--qtypes", "A", "-q"}},
		{path: []string{"classify"}, flags: []string{"--dry-run", "--window", "700h"}},
		{path: []string{"export"}, flags: []string{"-f", "ips", "-o", "DIR/ips.txt"}},
		{path: []string{"show"}, flags: []string{"--probes", "--since", "87600h"}, args: []string{"flux.example"}},
		{path: []string{"report"}, flags: []string{"-o", "DIR/report.html", "--domain", "flux.example"}},
		{path: []string{"networks"}, flags: []string{"--json", "--min-domains", "1"}},
		{path: []string{"networks", "show"}, flags: []string{"--json"}, args: []string{"net-1"}},
		{path: []string{"status"}, flags: []string{"--json"}},
		{path: []string{"blocklist", "list"}, flags: []string{"--json"}},
		{path: []string{"blocklist", "diff"}, flags: []string{"--last", "2"}},
		{path: []string{"blocklist", "history"}, flags: []string{"--json"}, args: []string{"a.test"}},
		{path: []string{"blocklist", "delist"}, flags: []string{"--reason", "a test"}, args: []string{"a.test", "b.test"}},
		{path: []string{"blocklist", "relist"}, flags: []string{"--reason", "a test"}, args: []string{"a.test"},
			setup: [][]string{{"blocklist", "delist", "a.test"}}},
		{path: []string{"db", "check"}},
		{path: []string{"db", "compact"}},
		{path: []string{"db", "backup"}, flags: []string{"-o", "DIR/backup.db"}},
		{path: []string{"db", "salvage"}, flags: []string{"-o", "DIR/salvaged.db"}},
		{path: []string{"ipdb", "update"}, flags: []string{"--dir", "DIR/ipdb", "--source", "http://127.0.0.1:1/"}},
		{path: []string{"daemon"}, flags: []string{"--config", missingConfig, "--log-level", "warn"}},
		{path: []string{"cluster", "status"}, flags: []string{"--json", "--timeout", "300ms", "--nats", "nats://127.0.0.1:1"}},
		{path: []string{"cluster", "reshard"}, flags: []string{"--to", "2", "--timeout", "300ms", "--nats", "nats://127.0.0.1:1"}},
		{path: []string{"agent"}, flags: []string{"--name", "not a name", "--resolver", silent}},
		{path: []string{"simnet"}, flags: []string{"--seed", "3", "--vantages", "2", "--seeds-out", "DIR/seeds.txt"}},
		{path: []string{"demo"}, flags: []string{"-o", "DIR/not-a-directory/demo", "--rounds", "1"}},
		{path: []string{"eval"}, flags: []string{"--seeds", "1", "--parallel", "0"}},
		{path: []string{"version"}},
		{path: []string{"completion", "bash"}, flags: []string{"--no-descriptions"}},
		{path: []string{"completion", "fish"}, flags: []string{"--no-descriptions"}},
		{path: []string{"man"}, flags: []string{"-o", "DIR/man"}},
	}
	// Every command is here (the groups are their subcommands).
	for _, p := range commandPaths(newRoot(&stdio{})) {
		c, _, _ := newRoot(&stdio{}).Find(p)
		if len(p) == 0 || c.HasSubCommands() || slices.Contains([]string{"powershell", "zsh"}, c.Name()) {
			continue
		}
		if !slices.ContainsFunc(tests, func(a anywhere) bool { return slices.Equal(a.path, p) }) {
			t.Errorf("no test of flags anywhere for %q", strings.Join(p, " "))
		}
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.path, " "), func(t *testing.T) {
			results := map[string]string{}
			for name, form := range tt.forms("DB") {
				dir := t.TempDir()
				os.WriteFile(filepath.Join(dir, "not-a-directory"), nil, 0o644)
				db := filepath.Join(dir, "fw.db")
				copyFile(t, seeded, db)
				for _, setup := range tt.setup {
					if _, err := fwContext(context.Background(), append(setup, "--db", db)...); err != nil {
						t.Fatalf("%v: %v", setup, err)
					}
				}
				args := slices.Clone(form)
				for i := range args {
					args[i] = strings.ReplaceAll(strings.ReplaceAll(args[i], "DIR", dir), "DB", db)
				}
				ctx, cancel := context.WithCancel(context.Background())
				if tt.path[0] == "simnet" { // it serves until its context ends
					ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
				}
				out, err := fwContext(ctx, args...)
				cancel()
				result := "stdout:\n" + out + "error: none"
				if err != nil {
					result = "stdout:\n" + out + "error: " + err.Error()
				}
				results[name] = varying.ReplaceAllString(strings.ReplaceAll(result, dir, "DIR"), "N")
			}
			want := results["flags first"]
			for name, got := range results {
				if got != want {
					t.Errorf("%s gives:\n%s\nflags first gives:\n%s", name, got, want)
				}
			}
			if strings.Contains(want, "usage:") && tt.path[0] != "eval" && tt.path[0] != "agent" {
				t.Errorf("a usage error:\n%s", want)
			}
		})
	}
}

// Flags may also come after --, which ends them: what follows is an
// argument even when it looks like a flag.
func TestDoubleDashEndsFlags(t *testing.T) {
	db := seededDB(t)
	out, err := fwContext(context.Background(), "seeds", "remove", "--db", db, "--", "a.test", "b.test")
	if err != nil || out != "seeds: 2 removed (history kept)\n" {
		t.Errorf("seeds remove -- a.test b.test: %v %q", err, out)
	}
	_, err = fwContext(context.Background(), "seeds", "remove", "--db", db, "--", "--all")
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `"--all"`) {
		t.Errorf("seeds remove -- --all: %v; want --all taken as a name, and refused", err)
	}
}

// -h and --help work on every command and group, and help COMMAND too:
// on standard output, with the command's usage, and nothing is an error.
func TestHelpEverywhere(t *testing.T) {
	for _, p := range commandPaths(newRoot(&stdio{})) {
		want := "Usage:\n  " + strings.Join(append([]string{"fluxwatch"}, p...), " ")
		for _, args := range [][]string{append(slices.Clip(p), "-h"), append(slices.Clip(p), "--help"), append([]string{"help"}, p...)} {
			var out, errb bytes.Buffer
			err := run(context.Background(), args, strings.NewReader(""), &out, &errb)
			if err != nil || !strings.Contains(out.String(), want) || errb.Len() > 0 {
				t.Errorf("%q: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errb.String())
			}
		}
	}
}

// A shorthand stands for one long flag wherever it is used, and every
// command's flags are in long form too.
func TestShortFlagsAreConsistent(t *testing.T) {
	long := map[string]string{}
	root := newRoot(&stdio{})
	for _, p := range commandPaths(root) {
		c, _, _ := root.Find(p)
		c.InitDefaultHelpFlag()
		for _, fs := range []*pflag.FlagSet{c.LocalNonPersistentFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if f.Shorthand == "" {
					return
				}
				if l, ok := long[f.Shorthand]; ok && l != f.Name {
					t.Errorf("-%s is --%s in %q, but --%s elsewhere", f.Shorthand, f.Name, p, l)
				}
				long[f.Shorthand] = f.Name
			})
		}
	}
	for short, name := range map[string]string{"c": "config", "o": "out", "f": "format", "q": "quiet", "h": "help"} {
		if long[short] != name {
			t.Errorf("-%s is --%s, want --%s", short, long[short], name)
		}
	}
}

// Every duration flag refuses a negative value, and every flag whose value
// is a file or directory lets completion offer files or directories.
func TestFlagValues(t *testing.T) {
	root := newRoot(&stdio{})
	files := 0
	for _, p := range commandPaths(root) {
		c, _, _ := root.Find(p)
		for _, fs := range []*pflag.FlagSet{c.LocalNonPersistentFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if f.Value.Type() == "duration" {
					if _, ok := f.Value.(duration); !ok {
						t.Errorf("%q --%s is a %T: it takes negative durations", p, f.Name, f.Value)
					}
				}
				switch kind, _ := pflag.UnquoteUsage(f); kind {
				case "file", "path":
					files++
					if _, ok := f.Annotations[cobra.BashCompFilenameExt]; !ok {
						t.Errorf("%q --%s takes a %s but completion does not offer files", p, f.Name, kind)
					}
				case "directory":
					if _, ok := f.Annotations[cobra.BashCompSubdirsInDir]; !ok {
						t.Errorf("%q --%s takes a directory but completion does not offer them", p, f.Name)
					}
				}
			})
		}
	}
	if files < 20 {
		t.Errorf("only %d flags take files", files)
	}
	// What completion then offers: commands, formats, files.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "bl"}, "(?m)^blocklist\t"},
		{[]string{"__complete", "export", "--format", "n"}, "(?m)^nftables\n(.*\n)*:4\n"}, // no files
		{[]string{"__complete", "export", "--out", ""}, "^:0\n"},                          // files
		{[]string{"__complete", "--config", ""}, "^yaml\nyml\n:8\n"},                      // files ending so
		{[]string{"__complete", "show", ""}, "^:4\n"},                                     // no files for a domain
	} {
		out, err := fwContext(context.Background(), tt.args...)
		if err != nil || !regexp.MustCompile(tt.want).MatchString(out) {
			t.Errorf("%q: %v\n%s\nwant %q in it", tt.args, err, out, tt.want)
		}
	}
}

// buildFluxwatch builds the command with go build into a temporary
// directory and returns the binary's path.
func buildFluxwatch(t *testing.T, flags ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "fluxwatch")
	// -buildvcs=true: GOFLAGS may turn the stamping off.
	args := slices.Concat([]string{"build", "-buildvcs=true"}, flags, []string{"-o", bin, "."})
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// A binary built from a checkout says which revision it was built from.
func TestVersionOfABuild(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	top, _ := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		t.Skip("a git worktree: go build records no revision where .git is not a directory")
	}
	bin := buildFluxwatch(t)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || !strings.Contains(string(out), "revision  "+strings.TrimSpace(string(head))) ||
			!regexp.MustCompile(`(?m)^go        go1\.\d+`).Match(out) {
			t.Errorf("fluxwatch %s: %v\n%s\nwant the revision %s", args[0], err, out, head)
		}
	}
}

func TestDescribeBuild(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261207014100-613a401abcde+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "613a401abcde"}, {Key: "vcs.time", Value: "2026-12-07T01:41:00Z"},
			{Key: "vcs.modified", Value: "true"}}}
	for _, tt := range []struct {
		override string
		info     *debug.BuildInfo
		want     string
	}{
		{"", info, "fluxwatch v0.0.0-20261207014100-613a401abcde+dirty\nrevision  613a401abcde-dirty\ntime      2026-12-07T01:41:00Z\ngo        go1.26.8"},
		{"v1.2.3", info, "fluxwatch v1.2.3\nrevision  613a401abcde-dirty\ntime      2026-12-07T01:41:00Z\ngo        go1.26.8"},
		{"", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"fluxwatch (devel)\nrevision  unknown\ntime      unknown\ngo        go1.26.8"},
	} {
		if got := describeBuild(tt.override, tt.info); got != tt.want {
			t.Errorf("describeBuild(%q) =\n%s\nwant\n%s", tt.override, got, tt.want)
		}
	}
}

// The -ldflags override of the version still works.
func TestVersionFromLinkerFlag(t *testing.T) {
	bin := buildFluxwatch(t, "-ldflags", "-X main.version=v9.8.7")
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "fluxwatch v9.8.7\n") {
		t.Errorf("version: %v\n%s", err, out)
	}
}

// The bash completion script loads in bash and completes fluxwatch; zsh's
// and fish's are written too.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, err := fwContext(context.Background(), "completion", shell)
		if err != nil || !strings.Contains(out, "fluxwatch") {
			t.Errorf("completion %s: %v\n%.200s", shell, err, out)
		}
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	bin := buildFluxwatch(t)
	script := `source <("$FLUXWATCH" completion bash) && complete -p fluxwatch`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "FLUXWATCH="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "__start_fluxwatch") || strings.Contains(string(out), "error") {
		t.Errorf("bash: %v\n%s", err, out)
	}
}

// make man writes a page per command, from the same definitions.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if _, err := fwContext(context.Background(), "man", "--out", dir); err != nil {
		t.Fatal(err)
	}
	root := newRoot(&stdio{})
	for _, p := range commandPaths(root) {
		c, _, _ := root.Find(p)
		if !c.IsAvailableCommand() && len(p) > 0 {
			continue // hidden
		}
		page := filepath.Join(dir, strings.Join(append([]string{"fluxwatch"}, p...), "-")+".1")
		b, err := os.ReadFile(page)
		if err != nil || !bytes.Contains(b, []byte(".TH \"FLUXWATCH\" \"1\"")) {
			t.Errorf("%s: %v\n%.200s", page, err, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "fluxwatch-man.1")); err == nil {
		t.Error("the hidden man command has a page")
	}
}

// statusOf runs a command line and returns what main would print on
// standard error and the exit status.
func statusOf(t *testing.T, stdin string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	stdout, _, err := fw(t, stdin, args...)
	var b bytes.Buffer
	status = reportError(&b, err)
	return stdout, b.String(), status
}

// The exit status: 0 when all was done, 1 when the command failed, 2 for a
// usage error; what each command counts as done when part of its work
// failed is in its help.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	zdns, _ := os.ReadFile("../../importer/testdata/zdns.jsonl")
	lines := strings.SplitAfter(string(zdns), "\n")
	mixed := write("mixed.txt", "good.test\n192.0.2.1\n")
	bad := write("bad.txt", "192.0.2.1\n*.wild.test\n")
	allBad := write("bad.jsonl", "{\"name\":\nnot json\n")
	someBad := write("some.jsonl", lines[0]+"not json\n")
	empty := write("empty.jsonl", "")
	silent := silentResolver(t)
	tests := []struct {
		name   string
		args   []string
		status int
		want   string // in what main prints, or on stdout
	}{
		{"seeds add with rejected lines", []string{"seeds", "add", mixed}, 0, "seeds: 1 added, 0 already known, 1 rejected"},
		{"seeds add of nothing valid", []string{"seeds", "add", bad}, 1, "no valid domain name read from " + bad},
		{"import of lines that all fail", []string{"import", "-f", "zdns", allBad}, 1,
			"fluxwatch: importing " + allBad + ": no line read as zdns (2 rejected)\n"},
		{"import of an empty file", []string{"import", "-f", "zdns", empty}, 1, "no probe read from " + empty},
		{"import with a line failing", []string{"import", "-f", "zdns", someBad}, 0, "1 probes"},
		{"import again: all stored already", []string{"import", "-f", "zdns", someBad}, 0, "1 already stored"},
		{"crawl that no resolver answers", []string{"crawl", "--resolver", silent, "--timeout", "50ms", "--retries", "0",
			"--delegation=false", "--ns-hosts=false", "--qtypes", "A", "-q"}, 1,
			"fluxwatch: not one of the 2 queries sent got a response: check that the vantage resolvers can be reached from here\n"},
		{"crawl with nothing due", []string{"crawl", "--due", "--resolver", silent}, 0, "crawl: 0 probes"},
		{"a group without its subcommand", []string{"db"}, 2, "db needs a subcommand: check, compact, backup or salvage"},
		{"help", []string{"db", "-h"}, 0, "Usage:"},
		{"an unknown flag", []string{"show", "x.test", "--nope"}, 2, "unknown flag: --nope"},
		{"no database", []string{"status", "--db", filepath.Join(dir, "none.db")}, 1, "no database at"},
	}
	for _, tt := range tests {
		args := append(slices.Clone(tt.args), "--db", db)
		if tt.name == "no database" {
			args = tt.args
		}
		stdout, stderr, status := statusOf(t, "", args...)
		if status != tt.status || !strings.Contains(stdout+stderr, tt.want) {
			t.Errorf("%s: exit status %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", tt.name, status, tt.status, tt.want, stdout, stderr)
		}
	}
}

// Errors are printed once, say what was expected of which flag, and point
// to the command's help.
func TestMessages(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "fluxwatch.yaml")
	os.WriteFile(config, []byte("db: x.db\nlog_level: warn\nqps: fast\n"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"classify", "--window", "banana"},
			"fluxwatch: usage: invalid argument \"banana\" for \"--window\" flag: want a duration such as 30m or 24h\n" +
				"Run 'fluxwatch classify --help' for usage.\n"},
		{[]string{"crawl", "--interval", "-5s"},
			"fluxwatch: usage: invalid argument \"-5s\" for \"--interval\" flag: want a duration of 0 or more, such as 30m or 24h\n" +
				"Run 'fluxwatch crawl --help' for usage.\n"},
		{[]string{"--config", config, "status"}, "fluxwatch: " + config + ":3: qps: want a number, got \"fast\"\n"},
		{[]string{"crawl", "--qps", "fast"},
			"fluxwatch: usage: invalid argument \"fast\" for \"--qps\" flag: want a number\nRun 'fluxwatch crawl --help' for usage.\n"},
		{[]string{"seeds", "list", "-dbx", "x.db"},
			"fluxwatch: usage: unknown shorthand flag: 'd' in -dbx\n" +
				"Run 'fluxwatch seeds list --help' for usage.\n"},
		{[]string{"crwal"}, "fluxwatch: usage: unknown command \"crwal\" (did you mean crawl?)\nRun 'fluxwatch --help' for usage.\n"},
		{[]string{"show", "a.test", "b.test"}, "fluxwatch: usage: show needs exactly one DOMAIN\nRun 'fluxwatch show --help' for usage.\n"},
		{[]string{"status", "extra"}, "fluxwatch: usage: status takes no arguments, got \"extra\"\nRun 'fluxwatch status --help' for usage.\n"},
		{[]string{}, "fluxwatch: usage: no command given\nRun 'fluxwatch --help' for usage.\n"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		err := run(context.Background(), tt.args, strings.NewReader(""), &out, &errb)
		if errb.Len() > 0 || out.Len() > 0 {
			t.Errorf("%q printed before main did:\nstdout:\n%s\nstderr:\n%s", tt.args, out.String(), errb.String())
		}
		var b bytes.Buffer
		reportError(&b, err)
		if b.String() != tt.want {
			t.Errorf("%q prints:\n%s\nwant:\n%s", tt.args, b.String(), tt.want)
		}
	}
}

// export says how many addresses it wrote, of how many domains.
func TestExportSaysWhatItWrote(t *testing.T) {
	db := storeVerdicts(t, exportVerdicts())
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", "ips", "-o", dir + "/ips.txt"}, "export: 4 addresses of 2 domains written to " + dir + "/ips.txt (ips)\n"},
		{[]string{"-f", "suricata", "-o", dir + "/iprep"}, "export: 4 addresses of 2 domains written to " + dir + "/iprep (suricata)\n"},
		{[]string{"-f", "domains", "-o", dir + "/list.txt"}, "export: 3 listed domains written to " + dir + "/list.txt (domains)\n"},
		{[]string{"-f", "csv", "--all", "-o", dir + "/all.csv"}, "export: 4 verdicts (3 listed) written to " + dir + "/all.csv (csv)\n"},
	} {
		out, stderr, err := fw(t, "", append([]string{"export", "--db", db}, tt.args...)...)
		if err != nil || out != tt.want {
			t.Errorf("export %q: %v\n got %q\nwant %q\n%s", tt.args, err, out, tt.want, stderr)
		}
	}
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1871: "1,871", 123456: "123,456", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// Long flags with one dash, as Go's flag package took them when fluxwatch
// parsed with it, still work wherever they stand; a value that starts
// with a dash stays a value.
func TestLongFlagsWithOneDash(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fw.db")
	if _, stderr, err := fw(t, "one.test\n", "seeds", "add", "-db", db, "-source=stdin", "-"); err != nil {
		t.Fatalf("seeds add with -db: %v\n%s", err, stderr)
	}
	want, _, err := fw(t, "", "seeds", "list", "--db", db)
	if err != nil || !strings.Contains(want, "one.test\t") {
		t.Fatalf("seeds list: %v\n%s", err, want)
	}
	for _, args := range [][]string{
		{"seeds", "list", "-db", db},
		{"seeds", "list", "-db=" + db},
		{"-db", db, "seeds", "list"},
		{"seeds", "-db", db, "list"},
	} {
		if got, stderr, err := fw(t, "", args...); err != nil || got != want {
			t.Errorf("%q: %v\n%s%s", args, err, got, stderr)
		}
	}
	if out, _, err := fw(t, "", "show", "one.test", "-db", db, "-json"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("show -json: %v %q", err, out)
	}
	// The value of a flag that takes one is never rewritten, whatever it
	// looks like.
	if _, stderr, err := fw(t, "two.test\n", "seeds", "add", "-db", db, "--source", "-quiet", "-"); err != nil {
		t.Fatalf("seeds add --source -quiet: %v\n%s", err, stderr)
	}
	if out, _, _ := fw(t, "", "seeds", "list", "-db", db); !strings.Contains(out, "two.test\tfirst-seen=") || !strings.Contains(out, "sources=-quiet") {
		t.Errorf("--source -quiet stored as:\n%s", out)
	}
	if _, _, err := fw(t, "", "seeds", "remove", "-db", db, "--", "-json"); err == nil || !strings.Contains(err.Error(), `"-json"`) {
		t.Errorf("after --, -json is an argument: %v", err)
	}
}

// failingWriter is standard output on a full disk.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// A command whose output could not be written has failed, however little
// it printed.
func TestLostOutputIsAnError(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fw.db")
	if _, stderr, err := fw(t, "one.test\n", "seeds", "add", "--db", db, "-"); err != nil {
		t.Fatalf("seeds add: %v\n%s", err, stderr)
	}
	for _, args := range [][]string{
		{"seeds", "list"}, {"blocklist", "list"}, {"networks"}, {"show", "one.test"},
	} {
		err := run(context.Background(), append(args, "--db", db), strings.NewReader(""), failingWriter{}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "writing the output: no space left on device") {
			t.Errorf("%v to a full disk: %v", args, err)
		}
	}
}
