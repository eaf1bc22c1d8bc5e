package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/web"
)

// cmdReport writes a self-contained HTML report of the crawl: its summary,
// the verdict counts and the charts of the listed domains and of those
// asked for with --domain.
func cmdReport(_ context.Context, args []string, std *stdio) error {
	s := newFlags("report", "report --out FILE [--domain D ...] [--max-domains N] [--asn-db FILE]", std)
	s.group(func(fs *flag.FlagSet, c *config.Config) {
		fs.Var(&listFlag{p: &c.ASNDB}, "asn-db", "IP-to-ASN `file` to color the charts by ASN (repeatable)")
		fs.Var(&listFlag{p: &c.CountryDB}, "country-db", "IP-to-country `file` for the country counts (repeatable)")
	})
	out := s.fs.String("out", "", "write the report to `file` (required)")
	var domains []string
	s.fs.Var(&listFlag{p: &domains}, "domain", "also chart this `domain`, listed or not (repeatable)")
	maxDomains := s.fs.Int("max-domains", web.DefaultReportDomains, "chart at most this many domains")
	cfg, err := s.parse(args)
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: report needs --out FILE", errUsage)
	}
	if *maxDomains < 1 {
		return fmt.Errorf("%w: --max-domains must be at least 1", errUsage)
	}
	for i, d := range domains {
		if domains[i], err = web.NormalizeName(d); err != nil {
			return fmt.Errorf("%w: --domain %q: %v", errUsage, d, err)
		}
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("%w: report takes no arguments (use --domain)", errUsage)
	}
	meta, err := loadIPMeta(cfg)
	if err != nil {
		return err
	}
	store, err := s.openReader(cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	opts := web.ReportOptions{Domains: domains, MaxDomains: *maxDomains, Now: std.clock()}
	if err := results.WriteFileAtomic(*out, func(w io.Writer) error {
		return web.WriteReport(w, store, meta, opts)
	}); err != nil {
		return err
	}
	fmt.Fprintf(std.out, "report: wrote %s\n", *out)
	return nil
}
