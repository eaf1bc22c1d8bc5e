package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/seeds"
	"github.com/fluxwatch/fluxwatch/storage"
)

func seedsCommand(std *stdio) *cobra.Command {
	return group("seeds", "the domains to measure: add, list, remove", "",
		seedsAddCommand(std), seedsListCommand(std), seedsRemoveCommand(std))
}

func seedsAddCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add [flags] FILE... (- reads stdin)",
		Short: "import domains to measure",
		Long: `Import domains to measure from files (- reads standard input): plain names
(# comments), hosts-file lines, adblock rules, URLs (also defanged), rank,name
lists and CSV with a header. Names are lower-cased, the trailing dot dropped
and IDNs converted to A-labels. Lines that are not domain names are rejected
and printed as file:line: reason on standard error.

Exit status: 0 when at least one valid name was read, also when other lines
were rejected (the closing line says how many); 1 when none was.`,
	}
	s := newFlags(cmd, std)
	source := s.fs.String("source", "", "source tag recorded with every name (default: the file's name)")
	column := s.fs.String("column", "", "CSV column holding the names (default: domain, host or url)")
	quiet := s.fs.BoolP("quiet", "q", false, "print neither rejected lines nor progress")
	s.fileArgs = true
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		files := s.fs.Args()
		if len(files) == 0 {
			return fmt.Errorf("%w: seeds add needs at least one FILE (- for stdin)", errUsage)
		}
		store, err := s.createStore(cfg)
		if err != nil {
			return err
		}
		defer store.Close()

		var total storage.AddResult
		rejected := 0
		for _, file := range files {
			names, rej, err := readSeedFile(file, *column, std, *quiet)
			if err != nil {
				return err
			}
			rejected += len(rej)
			if !*quiet {
				for _, r := range rej {
					fmt.Fprintln(std.err, r.Error())
				}
			}
			tag := *source
			if tag == "" {
				tag = seeds.DisplayName(file)
			}
			res, err := store.AddDomains(names, tag, time.Now())
			if err != nil {
				return err
			}
			total.Added += res.Added
			total.Known += res.Known
			total.Elsewhere += res.Elsewhere
		}
		elsewhere := ""
		if total.Elsewhere > 0 {
			elsewhere = fmt.Sprintf(", %d for other shards", total.Elsewhere)
		}
		fmt.Fprintf(std.out, "seeds: %d added, %d already known%s, %d rejected\n", total.Added, total.Known, elsewhere, rejected)
		if total.Added+total.Known+total.Elsewhere == 0 {
			return fmt.Errorf("no valid domain name read from %s", strings.Join(files, ", "))
		}
		return nil
	}
	return cmd
}

// readSeedFile parses one seed file (- is stdin) into unique names.
func readSeedFile(file, column string, std *stdio, quiet bool) ([]string, []seeds.Reject, error) {
	r, size := std.in, int64(-1)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, fmt.Errorf("reading seeds: %w", err)
		}
		defer f.Close()
		r = f
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
	}
	bar := newProgress(std, quiet, "seeds "+seeds.DisplayName(file), size, true)
	defer bar.finish()
	r = bar.reader(r)
	return seeds.ParseUnique(r, file, seeds.Options{Column: column})
}

func seedsListCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "list [flags]",
		Short:             "list the measured domains",
		Long:              "List the measured domains with their first-seen time and sources; --all adds\nthe removed ones.",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	all := s.fs.Bool("all", false, "include removed domains")
	cmd.RunE = func(cmd *cobra.Command, args []string) (err error) {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		store, err := s.openReader(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		w := bufio.NewWriter(std.out)
		defer flush(w, &err)
		return store.Domains(func(d storage.Domain) error {
			if !d.Active && !*all {
				return nil
			}
			state := ""
			if !d.Active {
				state = " removed"
			}
			_, err := fmt.Fprintf(w, "%s\tfirst-seen=%s\tsources=%s%s\n", d.Name, d.FirstSeen.Format(time.RFC3339), strings.Join(d.Sources, ","), state)
			return err
		})
	}
	return cmd
}

func seedsRemoveCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "remove [flags] NAME...",
		Short:             "stop measuring domains (their history is kept)",
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if s.fs.NArg() == 0 {
			return fmt.Errorf("%w: seeds remove needs at least one NAME", errUsage)
		}
		var names []string
		for _, n := range s.fs.Args() {
			name, err := seeds.Normalize(n)
			if err != nil {
				return fmt.Errorf("%w: %q: %v", errUsage, n, err)
			}
			names = append(names, name)
		}
		store, err := s.openStore(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		res, err := store.RemoveDomains(names)
		if err != nil {
			return err
		}
		elsewhere := ""
		if res.Elsewhere > 0 {
			elsewhere = fmt.Sprintf(", %d handed to other shards", res.Elsewhere)
		}
		fmt.Fprintf(std.out, "seeds: %d removed (history kept)%s\n", res.Removed, elsewhere)
		return nil
	}
	return cmd
}
