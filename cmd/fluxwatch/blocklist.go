package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/seeds"
	"github.com/fluxwatch/fluxwatch/storage"
)

// blocklistCommand shows and edits the listing lifecycle: what is listed and
// until when, what publishes changed, a domain's listing log, and manual
// delisting.
func blocklistCommand(std *stdio) *cobra.Command {
	return group("blocklist", "what is listed and until when; delist and relist by hand", "",
		blocklistSubcommand(std, "list [flags]", "what is listed, since when and until when",
			"List the listed domains: verdict, confidence, when first listed, last confirmed\nand when the listing expires."),
		blocklistSubcommand(std, "diff [flags]", "what the last publishes added and removed",
			`Show what the daemon's last --last publishes added to the list and removed
from it, newest first.

Exit status: 1 when no publish is recorded yet.`),
		blocklistSubcommand(std, "history [flags] DOMAIN", "a domain's listing log",
			"Show a domain's listing log: when it was listed, confirmed, expired, delisted\nand relisted, and why."),
		blocklistSubcommand(std, "delist [flags] DOMAIN...", "take domains off the list by hand",
			"Take domains off the list from the next publish on, whatever the classifier\nsays, until they are relisted."),
		blocklistSubcommand(std, "relist [flags] DOMAIN...", "let delisted domains be listed again",
			`Let delisted domains be listed again by the classifier.

Exit status: 0 when every domain was relisted; 1 when one was not delisted
(the domains before it are relisted).`),
	)
}

// blocklistSubcommand is one of the blocklist subcommands, which share
// their flags and their body.
func blocklistSubcommand(std *stdio, use, short, long string) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long, ValidArgsFunction: cobra.NoFileCompletions}
	sub := cmd.Name()
	s := newFlags(cmd, std)
	asJSON := s.fs.Bool("json", false, "print JSON Lines")
	var last *int
	var reason *string
	switch sub {
	case "diff":
		last = s.fs.Int("last", 1, "how many publishes to show, newest first")
	case "delist", "relist":
		reason = s.fs.String("reason", "", "why (kept in the listing log)")
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) (err error) {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		names := s.fs.Args()
		switch {
		case (sub == "list" || sub == "diff") && len(names) > 0:
			return fmt.Errorf("%w: blocklist %s takes no arguments", errUsage, sub)
		case sub == "history" && len(names) != 1:
			return fmt.Errorf("%w: blocklist history needs exactly one DOMAIN", errUsage)
		case (sub == "delist" || sub == "relist") && len(names) == 0:
			return fmt.Errorf("%w: blocklist %s needs at least one DOMAIN", errUsage, sub)
		}
		for i, n := range names {
			if names[i], err = seeds.Normalize(n); err != nil {
				return fmt.Errorf("%w: %q: %v", errUsage, n, err)
			}
		}
		open := s.openReader
		if sub == "delist" || sub == "relist" {
			open = s.openStore
		}
		store, err := open(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		if sub == "delist" || sub == "relist" {
			unlock, err := std.exclusive("list")
			if err != nil {
				return err
			}
			defer unlock()
		}
		w := bufio.NewWriter(std.out)
		defer flush(w, &err)
		enc := json.NewEncoder(w)
		now := time.Now()
		switch sub {
		case "list":
			tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
			if !*asJSON {
				fmt.Fprintln(tw, "DOMAIN\tVERDICT\tCONFIDENCE\tFIRST LISTED\tLAST CONFIRMED\tEXPIRES")
			}
			n := 0
			err := classify.Each(store, true, func(v classify.Verdict) error {
				n++
				if *asJSON {
					return enc.Encode(v)
				}
				var first, confirmed, expires string
				if l := v.Listing; l != nil {
					first, confirmed, expires = stamp(l.FirstListed), stamp(l.LastConfirmed), stamp(l.ExpiresAt)
				}
				_, err := fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%s\t%s\n", v.Domain, v.Verdict, v.Confidence, first, confirmed, expires)
				return err
			})
			if err != nil {
				return err
			}
			if !*asJSON {
				tw.Flush()
				fmt.Fprintf(w, "%d listed\n", n)
			}
			return nil
		case "diff":
			pubs, err := store.Publishes(max(*last, 1))
			if err != nil {
				return err
			}
			if len(pubs) == 0 {
				return fmt.Errorf("no publish recorded yet in %s (the daemon's publish job records them)", cfg.DB)
			}
			for _, p := range pubs {
				if *asJSON {
					if err := enc.Encode(p); err != nil {
						return err
					}
					continue
				}
				kind := ""
				switch p.Kind {
				case storage.PublishStart:
					kind = " (daemon start: the stored list)"
				case storage.PublishMoved:
					kind = " (domains moved between shards: the stored list)"
				}
				fmt.Fprintf(w, "publish %s%s: %d listed, %d added, %d removed\n", stamp(p.Time), kind, p.Listed, len(p.Added), len(p.Removed))
				for _, n := range p.Added {
					fmt.Fprintf(w, "+ %s\n", n)
				}
				for _, n := range p.Removed {
					fmt.Fprintf(w, "- %s\n", n)
				}
			}
			return nil
		case "history":
			n := 0
			err := classify.History(store, names[0], func(e classify.ListingEvent) error {
				n++
				if *asJSON {
					return enc.Encode(e)
				}
				line := fmt.Sprintf("%s  %-11s", stamp(e.Time), e.Event)
				if e.Verdict != "" {
					line += fmt.Sprintf("  %s (confidence %.2f)", e.Verdict, e.Confidence)
				}
				if !e.ExpiresAt.IsZero() {
					line += "  expires " + stamp(e.ExpiresAt)
				}
				if e.Reason != "" {
					line += "  reason: " + e.Reason
				}
				_, err := fmt.Fprintln(w, line)
				return err
			})
			if err == nil && n == 0 && !*asJSON {
				fmt.Fprintf(w, "%s has never been listed\n", names[0])
			}
			return err
		case "delist":
			for _, n := range names {
				if err := classify.Delist(store, n, *reason, now); err != nil {
					return err
				}
				fmt.Fprintf(w, "delisted %s: off the list from the next publish, until 'fluxwatch blocklist relist %s'\n", n, n)
			}
			return nil
		default: // relist
			for _, n := range names {
				ok, err := classify.Relist(store, n, *reason, now)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%s was not delisted", n)
				}
				fmt.Fprintf(w, "relisted %s: the classifier may list it again\n", n)
			}
			return nil
		}
	}
	return cmd
}

// stamp formats a lifecycle time for a terminal.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateTime) + "Z"
}
