package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/ipmeta"
)

func cmdIPDB(ctx context.Context, args []string, std *stdio) error {
	if len(args) == 0 || args[0] != "update" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(std.out, "Usage: fluxwatch ipdb update [--dir DIR] [--source URL]")
			return nil
		}
		return fmt.Errorf("%w: ipdb needs a subcommand: update", errUsage)
	}
	s := newFlags("ipdb update", "ipdb update [--dir DIR] [--source URL]", std)
	s.group(func(fs *flag.FlagSet, c *config.Config) {
		fs.StringVar(&c.IPDBDir, "dir", c.IPDBDir, "`directory` of the tables (default: ipdb beside the database)")
		fs.StringVar(&c.IPDBSource, "source", c.IPDBSource, "base `URL` the tables are fetched from: URL/asn/asn-ipv4.csv and so on (default "+ipmeta.DefaultSource+")")
	})
	cfg, err := s.parse(args[1:])
	if err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("%w: ipdb update takes no arguments, got %q", errUsage, s.fs.Arg(0))
	}
	dir := cfg.IPDBPath()
	start := time.Now()
	m, err := ipmeta.Update(ctx, ipmeta.UpdateOptions{Dir: dir, Source: cfg.IPDBSource})
	if err != nil {
		return fmt.Errorf("%w (the tables in %s are unchanged)", err, dir)
	}
	for _, f := range m.Files {
		fmt.Fprintf(std.out, "ipdb: %s: %d ranges, %d bytes\n", f.Name, f.Ranges, f.Bytes)
	}
	fmt.Fprintf(std.out, "ipdb: tables from %s in use in %s (%.1fs)\n", m.Source, dir, time.Since(start).Seconds())
	return nil
}

// ipTablesNote says which IP tables cfg's commands use and how old they
// are, for status.
func ipTablesNote(cfg *config.Config, now time.Time) string {
	if len(cfg.ASNDB) > 0 || len(cfg.CountryDB) > 0 {
		return fmt.Sprintf("ip tables: %d ASN and %d country files from the configuration", len(cfg.ASNDB), len(cfg.CountryDB))
	}
	m, err := ipmeta.ReadManifest(cfg.IPDBPath())
	if errors.Is(err, ipmeta.ErrNoTables) {
		switch {
		case cfg.Cymru:
			return fmt.Sprintf("ip tables: none in %s: addresses are looked up in Team Cymru's service (run fluxwatch ipdb update)", cfg.IPDBPath())
		case cfg.ListWithoutIPTables:
			return fmt.Sprintf("ip tables: none in %s: verdicts are judged by prefixes, and listed (list_without_ip_tables)", cfg.IPDBPath())
		}
		return fmt.Sprintf("ip tables: none in %s: verdicts are judged by prefixes and nothing new is listed (run fluxwatch ipdb update)", cfg.IPDBPath())
	}
	if err != nil {
		return "ip tables: " + err.Error()
	}
	return fmt.Sprintf("ip tables: %s, fetched %s (%s ago) from %s", cfg.IPDBPath(), m.Updated.Format(time.RFC3339),
		now.Sub(m.Updated).Round(time.Minute), m.Source)
}
