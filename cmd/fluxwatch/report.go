package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/web"
)

// reportCommand writes a self-contained HTML report of the crawl: its summary,
// the verdict counts and the charts of the listed domains and of those
// asked for with --domain.
func reportCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report --out FILE [flags]",
		Short: "write a self-contained HTML report with charts",
		Long: `Write a self-contained HTML report of the crawl: its summary, the verdict
counts, and charts of the listed domains and of those named with --domain.`,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	s.group(func(fs *pflag.FlagSet, c *config.Config) {
		fs.StringArrayVar(&c.ASNDB, "asn-db", c.ASNDB, "IP-to-ASN `file` to color the charts by ASN (repeatable)")
		fs.StringArrayVar(&c.CountryDB, "country-db", c.CountryDB, "IP-to-country `file` for the country counts (repeatable)")
	})
	out := s.fs.StringP("out", "o", "", "write the report to `file` (required)")
	var domains []string
	s.fs.StringArrayVar(&domains, "domain", nil, "also chart this `domain`, listed or not (repeatable)")
	maxDomains := s.fs.Int("max-domains", web.DefaultReportDomains, "chart at most this many domains")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
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
		meta, err := ipmeta.FromConfig(cfg)
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
	return cmd
}
