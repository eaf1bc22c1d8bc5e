package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	vs, err := classifyStore(ctx, cfg, store, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return results.Write(std.out, "jsonl", vs, results.Options{All: true})
	}
	return printVerdicts(std.out, vs)
}

// classifyStore classifies every active domain and stores the verdicts.
func classifyStore(ctx context.Context, cfg *config.Config, store *storage.Store, now time.Time) ([]classify.Verdict, error) {
	c, err := newClassifier(cfg)
	if err != nil {
		return nil, err
	}
	return c.Run(ctx, store, cfg.Window, now)
}

// printVerdicts prints the verdict table: flux first, then by name.
func printVerdicts(w io.Writer, vs []classify.Verdict) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	withTruth := false
	for _, v := range vs {
		withTruth = withTruth || v.Truth != ""
	}
	header := "DOMAIN\tVERDICT\tSCORE\tEVIDENCE"
	if withTruth {
		header = "DOMAIN\tVERDICT\tTRUTH\tSCORE\tEVIDENCE"
	}
	fmt.Fprintln(tw, header)
	counts := map[string]int{}
	for _, pass := range []bool{true, false} {
		for _, v := range vs {
			if classify.Listed(v.Verdict) != pass {
				continue
			}
			counts[v.Verdict]++
			if withTruth {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\n", v.Domain, v.Verdict, v.Truth, v.Score, v.Evidence)
			} else {
				fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\n", v.Domain, v.Verdict, v.Score, v.Evidence)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, k := range []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign, classify.InsufficientData, classify.Unresolvable} {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	_, err := fmt.Fprintf(w, "%d domains: %s\n", len(vs), strings.Join(parts, ", "))
	return err
}

func cmdExport(ctx context.Context, args []string, std *stdio) error {
	s := newFlags("export", "export --format domains|hosts|rpz|jsonl|csv --out FILE [--all]", std)
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
	vs, err := classify.Load(store)
	if err != nil {
		return err
	}
	n, err := export(store, cfg, vs, *format, *out, *all, std.out)
	if err != nil {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(std.out, "export: %d listed domains written to %s (%s)\n", n, *out, *format)
	}
	return nil
}

// export writes verdicts in format to out (atomically; - is stdout) and
// returns how many listed domains it holds.
func export(store *storage.Store, cfg *config.Config, vs []classify.Verdict, format, out string, all bool, stdout io.Writer) (int, error) {
	opts := results.Options{All: all, Zone: cfg.RPZZone}
	if format == "rpz" {
		serial, err := store.NextSerial(time.Now())
		if err != nil {
			return 0, err
		}
		opts.Serial = serial
	}
	if !contains(results.Formats, format) {
		return 0, fmt.Errorf("%w: unknown format %q (want one of %s)", errUsage, format, strings.Join(results.Formats, ", "))
	}
	listed := 0
	for _, v := range vs {
		if classify.Listed(v.Verdict) {
			listed++
		}
	}
	write := func(w io.Writer) error { return results.Write(w, format, vs, opts) }
	if out == "-" {
		return listed, write(stdout)
	}
	return listed, results.WriteFileAtomic(out, write)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
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
