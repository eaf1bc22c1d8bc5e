package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/storage"
)

func dbCommand(std *stdio) *cobra.Command {
	return group("db", "check, compact, back up or salvage the database", "",
		dbCheckCommand(std), dbCompactCommand(std), dbBackupCommand(std), dbSalvageCommand(std))
}

func dbCheckCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check [flags]",
		Short: "verify the database",
		Long: `Verify the database: every page and every record it holds, read-only.

Exit status: 0 when it is sound; 1 when it is damaged (each problem is printed)
or cannot be read.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
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
	}
	return cmd
}

func dbCompactCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "compact [flags]",
		Short:             "rewrite the database without its free space",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		before, after, err := storage.Compact(cfg.DB)
		if err != nil {
			return err
		}
		fmt.Fprintf(std.out, "db: %s compacted from %d to %d bytes\n", cfg.DB, before, after)
		return nil
	}
	return cmd
}

func dbBackupCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup --out FILE [flags]",
		Short: "write a consistent copy of the database, checked",
		Long: `Write a consistent copy of the database to --out, while other commands read
it, and check the copy.`,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	out := s.fs.StringP("out", "o", "", "write the copy to `file` (replaced atomically if it exists)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
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
	}
	return cmd
}

func dbSalvageCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "salvage --out NEW [flags]",
		Short: "copy what a damaged database still holds into a new one",
		Long: `Copy what a damaged database still holds into a new database, --out, which
must not exist. What could not be read is printed, one "lost:" line each.

Exit status: 0 when the new database was written, also when parts were lost
(check it before using it in place of the old one); 1 when it was not.`,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	out := s.fs.StringP("out", "o", "", "write what can be read to the new database `file` (must not exist)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
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
	}
	return cmd
}
