package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/seeds"
	"github.com/fluxwatch/fluxwatch/storage"
)

func cmdSeeds(ctx context.Context, args []string, std *stdio) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: seeds needs a subcommand: add, list or remove", errUsage)
	}
	switch args[0] {
	case "add":
		return cmdSeedsAdd(args[1:], std)
	case "list":
		return cmdSeedsList(args[1:], std)
	case "remove":
		return cmdSeedsRemove(args[1:], std)
	default:
		return fmt.Errorf("%w: unknown seeds subcommand %q (want add, list or remove)", errUsage, args[0])
	}
}

func cmdSeedsAdd(args []string, std *stdio) error {
	s := newFlags("seeds add", "seeds add [--source NAME] [--column NAME] FILE... (- reads stdin)", std)
	source := s.fs.String("source", "", "source tag recorded with every name (default: the file's name)")
	column := s.fs.String("column", "", "CSV column holding the names (default: domain, host or url)")
	quiet := s.fs.Bool("quiet", false, "print neither rejected lines nor progress")
	s.fileArgs = true
	cfg, err := s.parse(args)
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
	}
	fmt.Fprintf(std.out, "seeds: %d added, %d already known, %d rejected\n", total.Added, total.Known, rejected)
	if total.Added+total.Known == 0 {
		return fmt.Errorf("no valid domain name read from %s", strings.Join(files, ", "))
	}
	return nil
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
	var names []string
	var rejects []seeds.Reject
	seen := map[string]bool{}
	err := seeds.Parse(bufio.NewReader(r), file, seeds.Options{Column: column},
		func(name string, _ int) {
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		},
		func(rj seeds.Reject) { rejects = append(rejects, rj) })
	return names, rejects, err
}

func cmdSeedsList(args []string, std *stdio) error {
	s := newFlags("seeds list", "seeds list [--all]", std)
	all := s.fs.Bool("all", false, "include removed domains")
	cfg, err := s.parse(args)
	if err != nil {
		return err
	}
	store, err := s.openReader(cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	w := bufio.NewWriter(std.out)
	defer w.Flush()
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

func cmdSeedsRemove(args []string, std *stdio) error {
	s := newFlags("seeds remove", "seeds remove NAME...", std)
	cfg, err := s.parse(args)
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
	n, err := store.RemoveDomains(names)
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "seeds: %d removed (history kept)\n", n)
	return nil
}
