package main

import (
	"context"
	"fmt"

	"github.com/fluxwatch/fluxwatch/storage"
)

func cmdDB(ctx context.Context, args []string, std *stdio) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: db needs a subcommand: check or compact", errUsage)
	}
	switch args[0] {
	case "check":
		s := newFlags("db check", "db check [--db PATH]", std)
		cfg, err := s.parse(args[1:])
		if err != nil {
			return err
		}
		store, err := openReader(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		if err := store.Check(); err != nil {
			return fmt.Errorf("%s is damaged:\n%w", cfg.DB, err)
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
	default:
		return fmt.Errorf("%w: unknown db subcommand %q (want check or compact)", errUsage, args[0])
	}
}
