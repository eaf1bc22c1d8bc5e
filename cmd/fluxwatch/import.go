package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

func importCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import --format FORMAT [flags] FILE... (- reads stdin)",
		Short: "import dig logs, zdns, dnsx, passive DNS (cof) or jsonl observations",
		Long: `Import lookups measured elsewhere: dig output, zdns and dnsx JSON, passive DNS
in the Common Output Format (cof), or fluxwatch's own jsonl (what
export-observations writes). Gzip-compressed input is read as it is. Probes
already stored are recognised and not stored twice; lines that cannot be read
are printed as file:line: reason on standard error and counted.

Exit status: 0 when probes were read to store, also when some lines failed
(the closing line counts them) and when every probe read was already stored
(importing a file again); 1 when a file has not one line that reads (most
likely the wrong --format; what the files before it held is kept), or when no
probe was read at all: every line was skipped, or the input was empty.`,
	}
	s := newFlags(cmd, std)
	format := s.fs.StringP("format", "f", "", "input format: "+strings.Join(importer.Formats, ", "))
	vantage := s.fs.String("vantage", "", "vantage `name` for every lookup (default: the resolver or sensor the input names)")
	source := s.fs.String("source", "", "source `tag` of the domains added (default import:FORMAT); cof: also names the sensor of records without sensor_id")
	tz := s.fs.String("tz", "UTC", "dig: time `zone` of times written without one or with an ambiguous abbreviation such as CST (IANA name)")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(importer.Formats, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if !slices.Contains(importer.Formats, *format) {
			return fmt.Errorf("%w: import needs --format, one of %s", errUsage, strings.Join(importer.Formats, ", "))
		}
		files := s.fs.Args()
		if len(files) == 0 {
			return fmt.Errorf("%w: import needs at least one FILE (- for stdin)", errUsage)
		}
		loc, err := time.LoadLocation(*tz)
		if err != nil {
			return fmt.Errorf("%w: --tz %q: %v", errUsage, *tz, err)
		}
		store, err := ownStore(ctx, cfg, "import")
		if err != nil {
			return err
		}
		defer store.Close()

		tag := *source
		if tag == "" {
			tag = "import:" + *format
		}
		lastProgress := time.Now()
		imp := store.NewImport(tag, time.Now, func(c storage.ImportCounts) {
			if now := time.Now(); now.Sub(lastProgress) >= 10*time.Second {
				lastProgress = now
				fmt.Fprintf(std.err, "import: %d probes read, %d new, %d already stored, %d merged\n", c.Read, c.New, c.Duplicate, c.Merged)
			}
		})
		opts := importer.Options{Vantage: *vantage, Source: *source, Location: loc}
		var counts importCounts
		var readErr error
		for _, file := range files {
			if readErr = importFile(ctx, imp, &counts, file, *format, opts, std); readErr != nil {
				break
			}
		}
		// What was read before an interruption or a bad file is kept.
		if err := imp.Close(); err != nil {
			return err
		}
		counts.ImportCounts = imp.Counts()
		counts.print(std.out)
		if readErr == nil && counts.probes == 0 {
			return fmt.Errorf("no probe read from %s: of %d lines, %d failed and %d were skipped",
				strings.Join(files, ", "), counts.lines, counts.errors, counts.skipped)
		}
		return readErr
	}
	return cmd
}

// importFile reads one input into the import.
func importFile(ctx context.Context, imp *storage.Import, counts *importCounts, file, format string, opts importer.Options, std *stdio) error {
	f, err := importer.Open(file, std.in)
	if err != nil {
		return fmt.Errorf("importing %s: %w", file, err)
	}
	defer f.Close()
	stats, err := importer.Read(f, file, format, opts, func(p obs.Probe) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return imp.Add(p)
	}, func(e *importer.LineError) { fmt.Fprintln(std.err, e.Error()) })
	counts.lines += stats.Lines
	counts.probes += stats.Probes
	counts.observations += stats.Observations
	counts.errors += stats.Errors
	counts.skipped += stats.Skipped
	if err == nil && stats.Probes == 0 && stats.Errors > 0 {
		// Not one line read, most likely the wrong format: a script must
		// not take the import for done.
		return fmt.Errorf("importing %s: no line read as %s (%d rejected)", file, format, stats.Errors)
	}
	return err
}

// importCounts are the figures an import ends with: what the inputs held,
// and what storing it did.
type importCounts struct {
	lines, probes, observations, errors, skipped int
	storage.ImportCounts
}

func (c importCounts) print(w io.Writer) {
	fmt.Fprintf(w, "import: %d lines, %d probes, %d observations: %d new, %d already stored, %d merged into stored probes; %d errors, %d skipped; %d domains added\n",
		c.lines, c.probes, c.observations, c.New, c.Duplicate, c.Merged, c.errors, c.skipped, c.Domains)
}
