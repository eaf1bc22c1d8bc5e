package classify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Run classifies every active domain in store over the window ending at
// now, stores the verdicts and returns them in name order. With an online
// fallback configured, the addresses the tables do not know are looked up
// first, outside any database transaction.
func (c *Classifier) Run(ctx context.Context, store *storage.Store, window time.Duration, now time.Time) ([]Verdict, error) {
	var out []Verdict
	from := now.Add(-window)
	if c.Fallback != nil {
		addrs, err := addresses(store, from, now)
		if err != nil {
			return nil, err
		}
		if _, err := c.Fallback.Prefetch(ctx, c.Meta, addrs); err != nil {
			return nil, fmt.Errorf("looking up ASNs online: %w", err)
		}
	}
	err := store.Scan(from, func(d storage.Domain, history func(func(obs.Probe) error) error) error {
		var probes []obs.Probe
		if err := history(func(p obs.Probe) error {
			if !p.Start.After(now) {
				probes = append(probes, p)
			}
			return nil
		}); err != nil {
			return err
		}
		out = append(out, c.Classify(d.Name, probes, now))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("classifying: %w", err)
	}
	enc := make(map[string][]byte, len(out))
	for _, v := range out {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		enc[v.Domain] = b
	}
	if err := store.PutVerdicts(enc); err != nil {
		return nil, fmt.Errorf("storing verdicts: %w", err)
	}
	return out, nil
}

// Load returns the stored verdicts in name order.
func Load(store *storage.Store) ([]Verdict, error) {
	var out []Verdict
	err := store.Verdicts(func(domain string, b []byte) error {
		var v Verdict
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("verdict of %s: %w", domain, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// addresses returns every distinct answer address in the window.
func addresses(store *storage.Store, from, to time.Time) ([]netip.Addr, error) {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	err := store.Scan(from, func(_ storage.Domain, history func(func(obs.Probe) error) error) error {
		return history(func(p obs.Probe) error {
			if p.Start.After(to) {
				return nil
			}
			for _, o := range p.Observations {
				for _, r := range o.Answer {
					if r.Type != dns.TypeA && r.Type != dns.TypeAAAA {
						continue
					}
					if a, err := netip.ParseAddr(r.Data); err == nil && !seen[a] {
						seen[a] = true
						out = append(out, a)
					}
				}
			}
			return nil
		})
	})
	return out, err
}
