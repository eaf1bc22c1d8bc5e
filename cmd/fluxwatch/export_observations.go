package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxwatch/fluxwatch/columnar"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/storage"
)

func exportObservationsCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export-observations [flags]",
		Short: "write the stored observations as jsonl, or Parquet for analysis",
		Long: `Write the stored observations as jsonl, the format import reads (a file, or
standard output), or as a directory of daily Parquet files for Spark, DuckDB
or ClickHouse; --since and --domain narrow them down.`,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	format := s.fs.StringP("format", "f", importer.JSONL, "output format: jsonl (the import format of the same name) or parquet (a directory of daily files)")
	out := s.fs.StringP("out", "o", "-", "output `file`, written atomically and gzip-compressed if it ends in .gz; - for stdout; for parquet a directory")
	s.group(func(fs *pflag.FlagSet, c *config.Config) {
		fs.StringArrayVar(&c.ASNDB, "asn-db", c.ASNDB, "parquet: IP-to-ASN `file` filling the asns column (repeatable)")
	})
	since := s.fs.String("since", "", "only probes from `T` on: an RFC 3339 time or date, or a duration back from now (24h)")
	var domains []string
	s.fs.StringArrayVar(&domains, "domain", nil, "only this `domain` (repeatable; default: every domain, removed ones too)")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{importer.JSONL, "parquet"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if *format != importer.JSONL && *format != "parquet" {
			return fmt.Errorf("%w: unknown format %q (want jsonl or parquet)", errUsage, *format)
		}
		if *format == "parquet" && *out == "-" {
			return fmt.Errorf("%w: parquet is a directory of files: give --out DIR", errUsage)
		}
		if s.fs.NArg() > 0 {
			return fmt.Errorf("%w: export-observations takes no arguments (use --domain)", errUsage)
		}
		from, err := parseSince(*since, time.Now())
		if err != nil {
			return fmt.Errorf("%w: --since: %v", errUsage, err)
		}
		for i, d := range domains {
			domains[i] = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		}
		store, err := s.openReader(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		if *format == "parquet" {
			meta, err := ipmeta.FromConfig(cfg)
			if err != nil {
				return err
			}
			var only []string
			if len(domains) > 0 {
				only = domains
			}
			r, err := columnar.Write(ctx, store, *out, columnar.Options{Since: from, Domains: only, Meta: meta})
			if err != nil {
				return err
			}
			fmt.Fprintf(std.err, "export-observations: %d rows in %d files over %d days under %s\n", r.Rows, r.Files, len(r.Days), *out)
			return nil
		}

		var n exportCounts
		write := func(w io.Writer) error {
			n = exportCounts{}
			return exportObservations(ctx, store, domains, from, w, &n)
		}
		if *out == "-" {
			bw := bufio.NewWriterSize(std.out, 64<<10)
			if err := write(bw); err != nil {
				return err
			}
			return bw.Flush()
		}
		err = results.WriteFileAtomic(*out, func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 64<<10)
			var dst io.Writer = bw
			var zw *gzip.Writer
			if strings.HasSuffix(*out, ".gz") {
				zw = gzip.NewWriter(bw)
				dst = zw
			}
			if err := write(dst); err != nil {
				return err
			}
			if zw != nil {
				if err := zw.Close(); err != nil {
					return err
				}
			}
			return bw.Flush()
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(std.out, "export-observations: %d probes, %d observations of %d domains written to %s\n", n.probes, n.observations, n.domains, *out)
		return nil
	}
	return cmd
}

type exportCounts struct{ domains, probes, observations int }

// exportObservations writes the probes since from of the given domains,
// or of every domain, one jsonl line each, a domain at a time in name
// order and each domain's probes in time order.
func exportObservations(ctx context.Context, store *storage.Store, domains []string, from time.Time, w io.Writer, n *exportCounts) error {
	each := func(name string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		had := n.probes
		err := store.History(name, from, time.Time{}, func(p obs.Probe) error {
			n.probes++
			n.observations += len(p.Observations)
			return importer.Encode(w, p)
		})
		if n.probes > had {
			n.domains++
		}
		return err
	}
	if len(domains) == 0 {
		// Every domain: the names first, then each history in a
		// transaction of its own. A read transaction inside another
		// deadlocks with a writer that grows the file between them, which
		// the daemon is when this runs through its control socket.
		err := store.Domains(func(d storage.Domain) error { domains = append(domains, d.Name); return nil })
		if err != nil {
			return err
		}
	}
	for _, d := range domains {
		if err := each(d); err != nil {
			return fmt.Errorf("exporting %s: %w", d, err)
		}
	}
	return nil
}

// parseSince reads --since: empty (no bound), a duration back from now,
// an RFC 3339 time or a date (midnight UTC).
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (24h), an RFC 3339 time nor a date (2006-01-02)", s)
}
