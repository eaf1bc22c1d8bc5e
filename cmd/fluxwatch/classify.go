package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/storage"
)

func cmdClassify(ctx context.Context, args []string, std *stdio) error {
	s := newFlags("classify", "classify [--json] [--asn-db FILE] [--window D]", std)
	s.classifyFlags()
	asJSON := s.fs.Bool("json", false, "print verdicts as JSON Lines")
	cfg, err := s.parse(args)
	if err != nil {
		return err
	}
	store, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if *asJSON {
		enc := json.NewEncoder(std.out)
		_, err := classifyStore(ctx, cfg, store, time.Now(), func(v classify.Verdict) error { return enc.Encode(v) })
		return err
	}
	t := newVerdictTable(std.out, false)
	counts, err := classifyStore(ctx, cfg, store, time.Now(), t.row)
	if err != nil {
		return err
	}
	return t.close(counts)
}

// classifyStore classifies every active domain, stores the verdicts and
// passes each to each.
func classifyStore(ctx context.Context, cfg *config.Config, store *storage.Store, now time.Time, each func(classify.Verdict) error) (map[string]int, error) {
	c, err := newClassifier(cfg)
	if err != nil {
		return nil, err
	}
	return c.Run(ctx, store, cfg.Window, now, each)
}

// verdictTable prints verdicts as an aligned table, flushed every few
// thousand rows so that a million verdicts need no memory.
type verdictTable struct {
	w         io.Writer
	tw        *tabwriter.Writer
	withTruth bool
	rows      int
}

func newVerdictTable(w io.Writer, withTruth bool) *verdictTable {
	t := &verdictTable{w: w, tw: tabwriter.NewWriter(w, 2, 8, 2, ' ', 0), withTruth: withTruth}
	if withTruth {
		fmt.Fprintln(t.tw, "DOMAIN\tVERDICT\tTRUTH\tSCORE\tEVIDENCE")
	} else {
		fmt.Fprintln(t.tw, "DOMAIN\tVERDICT\tSCORE\tEVIDENCE")
	}
	return t
}

func (t *verdictTable) row(v classify.Verdict) error {
	if t.withTruth {
		fmt.Fprintf(t.tw, "%s\t%s\t%s\t%.1f\t%s\n", v.Domain, v.Verdict, v.Truth, v.Score, v.Evidence)
	} else {
		fmt.Fprintf(t.tw, "%s\t%s\t%.1f\t%s\n", v.Domain, v.Verdict, v.Score, v.Evidence)
	}
	if t.rows++; t.rows%5000 == 0 {
		return t.tw.Flush()
	}
	return nil
}

// close flushes the table and prints the counts.
func (t *verdictTable) close(counts map[string]int) error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	var parts []string
	total := 0
	for _, k := range []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign, classify.InsufficientData, classify.Unresolvable} {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		total += counts[k]
	}
	_, err := fmt.Fprintf(t.w, "%d domains: %s\n", total, strings.Join(parts, ", "))
	return err
}

// printVerdicts prints a small set of verdicts: flux first, then by name.
func printVerdicts(w io.Writer, vs []classify.Verdict) error {
	withTruth := false
	for _, v := range vs {
		withTruth = withTruth || v.Truth != ""
	}
	t := newVerdictTable(w, withTruth)
	counts := map[string]int{}
	for _, listed := range []bool{true, false} {
		for _, v := range vs {
			if classify.Listed(v.Verdict) == listed {
				counts[v.Verdict]++
				t.row(v)
			}
		}
	}
	return t.close(counts)
}

func cmdExport(ctx context.Context, args []string, std *stdio) error {
	s := newFlags("export", "export --format "+strings.Join(results.Formats, "|")+" --out FILE [--all]", std)
	format := s.fs.String("format", "domains", "output format: "+strings.Join(results.Formats, ", "))
	out := s.fs.String("out", "-", "output `file` (written atomically; - for stdout)")
	all := s.fs.Bool("all", false, "jsonl and csv: include every verdict, not only listed domains")
	zone := s.fs.String("zone", "", "RPZ zone name (default from config: fluxwatch.rpz)")
	cfg, err := s.parse(args)
	if err != nil {
		return err
	}
	if *zone != "" {
		cfg.RPZZone = *zone
	}
	store, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := export(store, cfg, *format, *out, *all, std.out)
	if err != nil {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(std.out, "export: %d listed domains written to %s (%s)\n", n, *out, *format)
	}
	return nil
}

// export streams the stored verdicts in format to out (atomically; - is
// stdout) and returns how many listed domains it holds. Block lists read
// only the short records of listed domains.
func export(store *storage.Store, cfg *config.Config, format, out string, all bool, stdout io.Writer) (int, error) {
	if !slices.Contains(results.Formats, format) {
		return 0, fmt.Errorf("%w: unknown format %q (want one of %s)", errUsage, format, strings.Join(results.Formats, ", "))
	}
	opts := results.Options{All: all, Zone: cfg.RPZZone, Now: time.Now()}
	if format == "rpz" || format == "stix" {
		serial, err := store.NextSerial(time.Now())
		if err != nil {
			return 0, err
		}
		opts.Serial = serial
	}
	listedOnly := results.IsBlockList(format) // jsonl and csv need the features
	listed := 0
	write := func(w io.Writer) error {
		listed = 0
		return results.WriteEach(w, format, func(yield func(classify.Verdict) error) error {
			return classify.Each(store, listedOnly, func(v classify.Verdict) error {
				if classify.Listed(v.Verdict) {
					listed++
				}
				return yield(v)
			})
		}, opts)
	}
	if out == "-" {
		return listed, write(stdout)
	}
	return listed, results.WriteFileAtomic(out, write)
}

func cmdShow(ctx context.Context, args []string, std *stdio) error {
	s := newFlags("show", "show [--json] [--since D] DOMAIN", std)
	asJSON := s.fs.Bool("json", false, "print probes as JSON Lines")
	since := s.fs.Duration("since", 0, "only the last period (default: all history)")
	cfg, err := s.parse(args)
	if err != nil {
		return err
	}
	if s.fs.NArg() != 1 {
		return fmt.Errorf("%w: show needs exactly one DOMAIN", errUsage)
	}
	domain := strings.TrimSuffix(strings.ToLower(s.fs.Arg(0)), ".")
	store, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	var from time.Time
	if *since > 0 {
		from = time.Now().Add(-*since)
	}
	w := bufio.NewWriter(std.out)
	defer w.Flush()
	var verdict *classify.Verdict
	if b, err := store.Verdict(domain); err != nil {
		return err
	} else if b != nil {
		verdict = new(classify.Verdict)
		if err := json.Unmarshal(b, verdict); err != nil {
			return fmt.Errorf("verdict of %s: %w", domain, err)
		}
	}
	return results.WriteHistory(w, store, domain, from, verdict, *asJSON)
}
