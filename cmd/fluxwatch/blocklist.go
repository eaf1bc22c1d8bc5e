package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/seeds"
	"github.com/fluxwatch/fluxwatch/storage"
)

const blocklistUsage = "blocklist list | diff [--last N] | history DOMAIN | delist [--reason TEXT] DOMAIN... | relist DOMAIN..."

// cmdBlocklist shows and edits the listing lifecycle: what is listed and
// until when, what publishes changed, a domain's listing log, and manual
// delisting.
func cmdBlocklist(ctx context.Context, args []string, std *stdio) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, blocklistUsage)
	}
	sub, rest := args[0], args[1:]
	s := newFlags("blocklist "+sub, blocklistUsage, std)
	asJSON := s.fs.Bool("json", false, "print JSON Lines")
	var last *int
	var reason *string
	switch sub {
	case "diff":
		last = s.fs.Int("last", 1, "how many publishes to show, newest first")
	case "delist", "relist":
		reason = s.fs.String("reason", "", "why (kept in the listing log)")
	case "list", "history":
	default:
		return fmt.Errorf("%w: unknown blocklist subcommand %q (%s)", errUsage, sub, blocklistUsage)
	}
	cfg, err := s.parse(rest)
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
	defer w.Flush()
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
			if p.Kind == storage.PublishStart {
				kind = " (daemon start: the stored list)"
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

// stamp formats a lifecycle time for a terminal.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateTime) + "Z"
}
