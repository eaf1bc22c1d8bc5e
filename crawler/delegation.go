package crawler

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/fluxwatch/fluxwatch/obs"
)

// Zone returns the registrable domain of name (its public suffix plus one
// label) and that suffix: the zone whose delegation the parent holds. It is
// publicsuffix.EffectiveTLDPlusOne with the suffix it found, from one look
// at the list: every probe asks it, and each look parses the name as an IP
// address first (an allocation for every name that is not one).
func Zone(name string) (zone, parent string, ok bool) {
	if name == "" || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return "", "", false
	}
	parent, _ = publicsuffix.PublicSuffix(name)
	i := len(name) - len(parent) - 1
	if i <= 0 || name[i] != '.' {
		return "", "", false // name is a public suffix, or the list disagrees with it
	}
	return name[1+strings.LastIndexByte(name[:i], '.'):], parent, true
}

// delegation asks a parent zone's server for zone (below parent) without
// recursion and returns the referral as an observation flagged
// FlagDelegation; the parent's servers are found through the vantage. The
// answer is shared by every probe of the round, and what the vantage said
// of the parent too. A zero observation (no Time) means no parent server
// was found.
func (c *Crawler) delegation(ctx context.Context, zone, parent, vantage string, round *Round) obs.Observation {
	servers := c.parentServers(ctx, parent, vantage, round)
	if len(servers) == 0 {
		return obs.Observation{}
	}
	// One answer per zone and round, from the first parent server that
	// answers, whichever vantage found it.
	return round.do("", zone, dns.TypeNS, func() obs.Observation {
		var o obs.Observation
		for _, server := range servers {
			o = c.observeWith(ctx, c.Direct, server, zone, dns.TypeNS, referral)
			o.Flags |= obs.FlagDelegation
			if o.Err == obs.OK {
				break
			}
		}
		return o
	})
}

// parentServers returns the addresses (host:port) of the parent zone's
// name servers as the vantage resolves them, at most three.
func (c *Crawler) parentServers(ctx context.Context, parent, vantage string, round *Round) []string {
	ns := round.do(vantage, parent, dns.TypeNS, func() obs.Observation {
		return c.observe(ctx, vantage, parent, dns.TypeNS)
	})
	var hosts []string
	for _, r := range ns.Answer {
		if r.Type == dns.TypeNS {
			hosts = append(hosts, r.Data)
		}
	}
	slices.Sort(hosts)
	port := c.ParentPort
	if port == 0 {
		port = 53
	}
	var out []string
	for _, h := range hosts {
		a := round.do(vantage, h, dns.TypeA, func() obs.Observation {
			return c.observe(ctx, vantage, h, dns.TypeA)
		})
		for _, r := range a.Answer {
			if r.Type == dns.TypeA {
				out = append(out, net.JoinHostPort(r.Data, strconv.Itoa(port)))
			}
		}
		if len(out) >= 3 {
			break
		}
	}
	return slices.Compact(out)
}

// referral keeps what a parent server says about zone: its NS records
// (from the authority or answer section) and the glue addresses of those
// name servers (additional section).
func referral(zone string, _ uint16, r *dns.Msg) []obs.Record {
	var out []obs.Record
	nsNames := map[string]bool{}
	for _, rr := range append(slices.Clip(r.Answer), r.Ns...) {
		if ns, ok := rr.(*dns.NS); ok && canon(ns.Hdr.Name) == zone {
			out = append(out, obs.Record{Name: zone, Type: dns.TypeNS, TTL: clampTTL(ns.Hdr.Ttl), Data: canon(ns.Ns)})
			nsNames[canon(ns.Ns)] = true
		}
	}
	for _, rr := range r.Extra {
		h := rr.Header()
		if !nsNames[canon(h.Name)] {
			continue
		}
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, obs.Record{Name: canon(h.Name), Type: dns.TypeA, TTL: clampTTL(h.Ttl), Data: v.A.String()})
		case *dns.AAAA:
			out = append(out, obs.Record{Name: canon(h.Name), Type: dns.TypeAAAA, TTL: clampTTL(h.Ttl), Data: v.AAAA.String()})
		}
	}
	obs.Sort(out)
	return slices.CompactFunc(out, func(a, b obs.Record) bool {
		return a.Name == b.Name && a.Type == b.Type && a.Data == b.Data
	})
}
