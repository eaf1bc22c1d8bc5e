package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/internal/export"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/storage"
)

func classifyCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "classify [flags]",
		Short: "classify the measured domains",
		Long: `Classify every active domain from its measurements of the last --window as
single-flux, double-flux, benign, unresolvable or unknown, store the verdicts
and move the listings on: a flux verdict lists a domain (unless allowlisted, or
judged without IP-to-ASN tables), which stays listed for --expire-after after
the last one. --dry-run stores nothing. The IP tables are those ipdb update
keeps, unless --asn-db or --country-db name others.

Exit status: 0 when every active domain was classified; 1 otherwise.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	s.classifyFlags()
	asJSON := s.fs.Bool("json", false, "print verdicts as JSON Lines")
	dryRun := s.fs.Bool("dry-run", false, "compute and print the verdicts, but store none and change no listing")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		open := s.openStore
		if *dryRun {
			open = s.openReader // stores nothing: a read-only file will do
		}
		store, err := open(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		var nets classify.NetworkBuilder
		if !*dryRun {
			// The daemon's classifications and this one never overlap.
			unlock, err := std.exclusive("classify")
			if err != nil {
				return err
			}
			defer unlock()
			if nets, err = std.networkBuilder(cfg); err != nil {
				return err
			}
		}
		if *asJSON {
			enc := json.NewEncoder(std.out)
			_, err := classifyStore(ctx, cfg, store, time.Now(), *dryRun, nets, func(v classify.Verdict) error { return enc.Encode(v) })
			return err
		}
		t := newVerdictTable(std.out, false)
		counts, err := classifyStore(ctx, cfg, store, time.Now(), *dryRun, nets, t.row)
		if err != nil {
			return err
		}
		if err := t.close(counts); err != nil {
			return err
		}
		if *dryRun {
			_, err = fmt.Fprintln(std.out, "dry run: no verdict stored, no listing changed")
		}
		return err
	}
	return cmd
}

// classifyStore classifies every active domain and passes each verdict to
// each; unless dryRun, it stores the verdicts and moves the listings on.
// nets, if set, builds the flux networks (a shard's: see networkBuilder).
func classifyStore(ctx context.Context, cfg *config.Config, store *storage.Store, now time.Time, dryRun bool,
	nets classify.NetworkBuilder, each func(classify.Verdict) error) (map[string]int, error) {
	c, err := newClassifier(cfg)
	if err != nil {
		return nil, err
	}
	c.DryRun, c.Networks = dryRun, nets
	return c.Run(ctx, store, cfg.Window, now, each)
}

// networkBuilder returns what builds the flux networks of a
// classification that stores its verdicts: the daemon's, for a shard's
// database it holds; none for a database that is no shard's. A shard's
// database classified apart from its daemon would have networks of its
// own domains alone: refused.
func (s *stdio) networkBuilder(cfg *config.Config) (classify.NetworkBuilder, error) {
	if s.held != nil && s.held.networks != nil {
		return s.held.networks()
	}
	if cfg.Daemon.NATS.IsSharded() {
		return nil, fmt.Errorf("%s is the database of shard %d of a cluster: classify it through its running daemon, "+
			"which builds the flux networks with the other shards (or classify --dry-run)", cfg.DB, cfg.Daemon.NATS.Shard)
	}
	return nil, nil
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
		fmt.Fprintf(t.tw, "%s\t%s\t%s\t%.2f\t%s\n", v.Domain, v.Verdict, v.Truth, v.Score, v.Evidence)
	} else {
		fmt.Fprintf(t.tw, "%s\t%s\t%.2f\t%s\n", v.Domain, v.Verdict, v.Score, v.Evidence)
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
	for _, k := range classify.Verdicts {
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
			if classify.IsFlux(v.Verdict) == listed {
				counts[v.Verdict]++
				t.row(v)
			}
		}
	}
	return t.close(counts)
}

func exportCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export [flags]",
		Short: "write the blocklist, or the flux agents' addresses",
		Long: `Write the listed domains as a blocklist (domains, hosts, rpz, dnsmasq,
unbound, adblock, stix, misp, jsonl, csv), or the addresses the listed flux
domains resolved to (ips, nftables, ipset, suricata). Files are written whole
or not at all, and so are the directories of misp and suricata; - writes to
standard output. The closing line says what was written: the listed domains,
or the addresses and the domains they came from.

Exit status: 0 when the export was written, also when the list is empty; 1
when it was not (the previous file is left as it was).`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	format := s.fs.StringP("format", "f", "domains", "output format: of the listed domains "+strings.Join(results.Formats, ", ")+
		"; of the flux agents' addresses "+strings.Join(results.AddressFormats, ", ")+" (misp and suricata are directories)")
	out := s.fs.StringP("out", "o", "-", "output `file` or, for misp and suricata, directory (written atomically; - for stdout)")
	all := s.fs.Bool("all", false, "jsonl and csv: include every verdict, not only listed domains")
	zone := s.fs.String("zone", "", "RPZ zone name (default from config: fluxwatch.rpz)")
	var opts results.Options
	s.fs.Float64Var(&opts.MinConfidence, "min-confidence", results.DefaultMinConfidence,
		"address formats and RPZ rpz-nsdname, rpz-ip and rpz-nsip triggers: only verdicts at least this confident (0 to 1; 0 takes every listed verdict)")
	s.fs.BoolVar(&opts.RPZIPTriggers, "rpz-ip", false, "rpz: add rpz-ip triggers for agent addresses and rpz-nsip for double-flux name server addresses")
	s.fs.StringVar(&opts.Table, "table", "", "nftables: the table (family inet) of the sets (default fluxwatch)")
	s.fs.StringVar(&opts.Set4, "set4", "", "nftables and ipset: name of the IPv4 set (default flux4; ipset fluxwatch4)")
	s.fs.StringVar(&opts.Set6, "set6", "", "nftables and ipset: name of the IPv6 set (default flux6; ipset fluxwatch6)")
	s.fs.StringVar(&opts.Org, "org", "", "misp: the organisation creating the feed's event (default fluxwatch)")
	s.fs.StringVar(&opts.Network, "network", "", "only the domains of this flux network `id` (see fluxwatch networks): its blocklist, or its agents")
	quiet := s.fs.BoolP("quiet", "q", false, "no progress bar (there is none when standard error is not a terminal)")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(slices.Concat(results.Formats, results.AddressFormats), cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if *zone != "" {
			cfg.RPZZone = *zone
		}
		if opts.MinConfidence == 0 {
			opts.MinConfidence = -1 // --min-confidence 0 asks for every listed verdict
		}
		// rpz and stix record the serial they hand out (secondaries must never
		// see it go backwards): they write; every other format only reads.
		open := s.openReader
		if *format == "rpz" || *format == "stix" {
			open = s.openStore
		}
		store, err := open(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		if opts.Network != "" {
			// Networks merge, split and end: an id gone stale must not
			// empty a firewall's set without a word.
			if n, err := networks.Get(store, opts.Network); err != nil {
				return err
			} else if n == nil {
				return fmt.Errorf("no flux network %q (see fluxwatch networks); nothing written", opts.Network)
			}
		}
		opts.All = *all
		var written results.Written
		opts.Written = &written
		bar := newProgress(std, *quiet || *out == "-", "export "+*format, -1, false)
		n, err := exportWith(store, cfg, *format, *out, opts, std.out, bar)
		bar.finish()
		if err != nil {
			return err
		}
		if *out != "-" {
			fmt.Fprintf(std.out, "export: %s written to %s (%s)\n", exported(*format, n, written), *out, *format)
		}
		return nil
	}
	return cmd
}

// exportWith writes the stored verdicts in format to out (- is stdout)
// with opts: results.ExportStore, for a format the command line chose.
func exportWith(store *storage.Store, cfg *config.Config, format, out string, opts results.Options, stdout io.Writer, bar *progress) (int, error) {
	if !slices.Contains(results.Formats, format) && !slices.Contains(results.AddressFormats, format) {
		return 0, fmt.Errorf("%w: unknown format %q (want one of %s)", errUsage, format,
			strings.Join(slices.Concat(results.Formats, results.AddressFormats), ", "))
	}
	if results.IsDir(format) && out == "-" {
		return 0, fmt.Errorf("%w: format %s is a directory of files: give --out DIR", errUsage, format)
	}
	opts.Zone = cfg.RPZZone
	return export.Write(store, format, out, opts, stdout, func() { bar.add(1) })
}

func showCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show [flags] DOMAIN",
		Short: "print a domain's measured history",
		Long: `Print a domain's measured history as a timeline of rounds: the addresses,
networks and name servers each vantage saw, and its verdict. --probes prints
every probe's answers instead, --json the probes as JSON Lines.`,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	asJSON := s.fs.Bool("json", false, "print probes as JSON Lines")
	probes := s.fs.Bool("probes", false, "print every probe's answers instead of the timeline")
	s.group(func(fs *pflag.FlagSet, c *config.Config) {
		fs.StringArrayVar(&c.ASNDB, "asn-db", c.ASNDB, "IP-to-ASN `file` for the timeline's ASN counts (repeatable)")
		fs.StringArrayVar(&c.CountryDB, "country-db", c.CountryDB, "IP-to-country `file` for the timeline's country counts (repeatable)")
	})
	since := durationFlag(s.fs, "since", 0, "only the last period (default: all history)")
	cmd.RunE = func(cmd *cobra.Command, args []string) (err error) {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if s.fs.NArg() != 1 {
			return fmt.Errorf("%w: show needs exactly one DOMAIN", errUsage)
		}
		domain := strings.TrimSuffix(strings.ToLower(s.fs.Arg(0)), ".")
		store, err := s.openReader(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		var from time.Time
		if *since > 0 {
			from = time.Now().Add(-*since)
		}
		w := bufio.NewWriter(std.out)
		defer flush(w, &err)
		verdict, err := classify.Load(store, domain)
		if err != nil {
			return err
		}
		if *asJSON || *probes {
			return results.WriteHistory(w, store, domain, from, verdict, *asJSON)
		}
		meta, err := ipmeta.FromConfig(cfg)
		if err != nil {
			return err
		}
		if err := results.WriteTimeline(w, store, domain, results.TimelineOptions{From: from, Verdict: verdict, Meta: meta, Color: colorful(std.out)}); err != nil {
			return err
		}
		// The flux network the domain is one face of, and its siblings.
		n, err := networks.Of(store, domain)
		if err != nil {
			return err
		}
		if line := networks.Line(n, domain); line != "" {
			fmt.Fprintln(w, line)
		}
		return nil
	}
	return cmd
}

// exported says what an export wrote: the addresses of an address format
// and the domains they came from; else the listed domains, and the
// verdicts of jsonl and csv --all.
func exported(format string, listed int, w results.Written) string {
	switch {
	case results.IsAddressFormat(format):
		return fmt.Sprintf("%s addresses of %s domains", thousands(w.Addresses), thousands(w.Verdicts))
	case w.Verdicts > listed:
		return fmt.Sprintf("%s verdicts (%s listed)", thousands(w.Verdicts), thousands(listed))
	}
	return fmt.Sprintf("%s listed domains", thousands(listed))
}

// thousands writes n with a comma between each group of three digits:
// 1,871.
func thousands(n int) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.Itoa(n)
	i := (len(s)-1)%3 + 1 // digits before the first comma
	out := s[:i]
	for ; i < len(s); i += 3 {
		out += "," + s[i:i+3]
	}
	return out
}
