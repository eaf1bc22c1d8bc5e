package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/fluxwatch/fluxwatch/storage"
)

const dbUsage = "db check | compact | backup --out FILE | salvage --out NEW"

func cmdDB(ctx context.Context, args []string, std *stdio) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: db needs a subcommand: %s", errUsage, dbUsage)
	}
	switch args[0] {
	case "check":
		s := newFlags("db check", "db check [--db PATH]", std)
		cfg, err := s.parse(args[1:])
		if err != nil {
			return err
		}
		// Every problem on a line of its own, then the one line.
		report := func(err error) error {
			var de *storage.DamagedError
			if errors.As(err, &de) {
				for _, p := range de.Problems {
					fmt.Fprintf(std.out, "db: %s: %v\n", cfg.DB, p)
				}
			}
			return err
		}
		store, err := s.openReader(cfg)
		if errors.Is(err, storage.ErrDamaged) {
			// Too damaged to open: what can be seen of it.
			if cerr := storage.CheckFile(cfg.DB); cerr != nil {
				return report(cerr)
			}
			return err
		}
		if err != nil {
			return err
		}
		defer store.Close()
		if err := store.Check(); err != nil {
			return report(err)
		}
		st, err := store.Stats()
		if err != nil {
			return err
		}
		fmt.Fprintf(std.out, "db: %s is sound: %d domains (%d active), %d probes, %d answer sets, %d names, %d verdicts, %d bytes\n",
			cfg.DB, st.Domains, st.ActiveDomains, st.Probes, st.AnswerSets, st.Names, st.Verdicts, st.FileBytes)
		return nil
	case "compact":
		s := newFlags("db compact", "db compact [--db PATH]", std)
		cfg, err := s.parse(args[1:])
		if err != nil {
			return err
		}
		before, after, err := storage.Compact(cfg.DB)
		if err != nil {
			return err
		}
		fmt.Fprintf(std.out, "db: %s compacted from %d to %d bytes\n", cfg.DB, before, after)
		return nil
	case "backup":
		s := newFlags("db backup", "db backup --out FILE [--db PATH]", std)
		out := s.fs.String("out", "", "write the copy to `file` (replaced atomically if it exists)")
		cfg, err := s.parse(args[1:])
		if err != nil {
			return err
		}
		if *out == "" || s.fs.NArg() > 0 {
			return fmt.Errorf("%w: db backup needs --out FILE and no arguments", errUsage)
		}
		store, err := s.openReader(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		n, err := store.Backup(*out)
		if err != nil {
			return err
		}
		fmt.Fprintf(std.out, "db: backup of %s written to %s (%d bytes) and checked\n", cfg.DB, *out, n)
		return nil
	case "salvage":
		s := newFlags("db salvage", "db salvage --out NEW [--db PATH]", std)
		out := s.fs.String("out", "", "write what can be read to the new database `file` (must not exist)")
		cfg, err := s.parse(args[1:])
		if err != nil {
			return err
		}
		if *out == "" || s.fs.NArg() > 0 {
			return fmt.Errorf("%w: db salvage needs --out NEW and no arguments", errUsage)
		}
		rep, err := storage.Salvage(cfg.DB, *out)
		if err != nil {
			return err
		}
		for _, l := range rep.Lost {
			fmt.Fprintf(std.out, "db: lost: %s\n", l)
		}
		fmt.Fprintf(std.out, "db: salvaged %s into %s: %d domains, %d probes, %d answer sets, %d verdicts, %d listed, %d listing log entries\n",
			cfg.DB, *out, rep.Copied["domains"], rep.Copied["probes"], rep.Copied["sets"], rep.Copied["verdicts"],
			rep.Copied["listed"], rep.Copied["listing_log"])
		if len(rep.Lost) > 0 {
			fmt.Fprintf(std.out, "db: %d lines above say what could not be read; check %s before using it in place of %s\n", len(rep.Lost), *out, cfg.DB)
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown db subcommand %q (%s)", errUsage, args[0], dbUsage)
	}
}
