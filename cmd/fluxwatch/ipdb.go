package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/ipmeta"
)

func ipdbCommand(std *stdio) *cobra.Command {
	return group("ipdb", "the IP-to-ASN and country tables", "", ipdbUpdateCommand(std))
}

func ipdbUpdateCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update [flags]",
		Short: "fetch the IP-to-ASN and country tables, check them, swap them in",
		Long: `Fetch ip-location-db's IP-to-ASN and IP-to-country tables, check them and swap
them in for the ones in use, whole: classify, show and the daemon use them
unless --asn-db or --country-db name others.

Exit status: 0 when every table was fetched and is in use; 1 when one failed
(the tables in use are left as they were).`,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	s.group(func(fs *pflag.FlagSet, c *config.Config) {
		fs.StringVar(&c.IPDBDir, "dir", c.IPDBDir, "`directory` of the tables (default: ipdb beside the database)")
		fs.StringVar(&c.IPDBSource, "source", c.IPDBSource, "base `URL` the tables are fetched from: URL/asn/asn-ipv4.csv and so on (default "+ipmeta.DefaultSource+")")
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
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
	return cmd
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
