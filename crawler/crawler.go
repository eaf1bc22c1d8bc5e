// Package crawler measures domains through vantage resolvers. For one domain
// and one vantage it asks the configured types (A, AAAA and NS by default),
// keeps the answer records that belong to the queried name's CNAME chain,
// and asks the addresses of every name server the NS answer names, so the
// probe shows both the domain's own addresses and its name servers'.
package crawler

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// DefaultMaxRecords is the default cap on the records kept of one answer.
const DefaultMaxRecords = 512

// DefaultQTypes are the types asked when none are configured.
var DefaultQTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeNS}

// Crawler turns queries into observations. It is safe for concurrent use.
type Crawler struct {
	Querier Querier
	// QTypes asked for each domain; nil means DefaultQTypes.
	QTypes []uint16
	// NSHosts, when true, resolves the A and AAAA of every name server named
	// in an NS answer.
	NSHosts bool
	// Delegation, when true, also asks the parent zone's servers directly
	// (through Direct, without recursion) for the domain's NS set and glue.
	Delegation bool
	// Direct is the Querier for parent zone servers; it must not set RD.
	Direct Querier
	// ParentPort is the port parent servers are asked on (default 53; the
	// simulated world serves its registry on another).
	ParentPort int
	// MaxRecords caps the records kept of one answer (default 512); a
	// longer answer is cut and flagged obs.FlagCapped.
	MaxRecords int
	// Now is the clock stamped on observations; nil means time.Now.
	Now func() time.Time
}

func (c *Crawler) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Probe measures one domain through one vantage. The queries that do not
// depend on each other go out together: every configured type and the
// referral from the parent zone first, then the addresses of every name
// server the NS answer named. Lookups of name server addresses and
// referrals go through round, so that one shared by many domains is asked
// once per vantage and round; round may be nil. The observations are in a
// fixed order: the types as configured, the referral, the name servers'
// addresses by host name.
func (c *Crawler) Probe(ctx context.Context, domain, vantage string, round *Round) obs.Probe {
	qtypes := c.QTypes
	if qtypes == nil {
		qtypes = DefaultQTypes
	}
	p := obs.Probe{Domain: domain, Vantage: vantage, Start: c.now()}
	// One observation per type, and room for the referral after them.
	first := make([]obs.Observation, len(qtypes)+1)
	referral := &first[len(qtypes)]
	var wg sync.WaitGroup
	for i, qt := range qtypes[1:] {
		wg.Go(func() { first[i+1] = c.observe(ctx, vantage, domain, qt) })
	}
	if c.Delegation && c.Direct != nil && ctx.Err() == nil {
		if zone, parent, ok := Zone(domain); ok {
			// The whole lookup, once per zone, vantage and round.
			c.fetch(ctx, round, &wg, roundKey{vantage, zone, delegationLookup}, parent, referral)
		}
	}
	first[0] = c.observe(ctx, vantage, domain, qtypes[0])
	wg.Wait()
	p.Observations = first
	if referral.Time.IsZero() {
		p.Observations = first[:len(qtypes):len(qtypes)]
	}
	if !c.NSHosts {
		return p
	}
	var hosts []string
	for _, o := range first[:len(qtypes)] { // the referral's NS set is the parent's word
		if o.QType != dns.TypeNS {
			continue
		}
		for _, r := range o.Answer {
			if r.Type == dns.TypeNS && r.Name == domain {
				hosts = append(hosts, r.Data)
			}
		}
	}
	if len(hosts) == 0 || ctx.Err() != nil {
		return p
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	addrs := make([]obs.Observation, 2*len(hosts))
	for i, host := range hosts {
		for j, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			c.fetch(ctx, round, &wg, roundKey{vantage, host, qt}, "", &addrs[2*i+j])
		}
	}
	wg.Wait()
	p.Observations = append(p.Observations, addrs...)
	return p
}

// observe sends one query through a vantage and records what came back.
func (c *Crawler) observe(ctx context.Context, vantage, name string, qtype uint16) obs.Observation {
	return c.observeWith(ctx, c.Querier, vantage, name, qtype, Normalize)
}

// observeWith sends one query with q to server and keeps what keep selects
// from the response.
func (c *Crawler) observeWith(ctx context.Context, q Querier, server, name string, qtype uint16,
	keep func(name string, qtype uint16, r *dns.Msg) []obs.Record) obs.Observation {
	o := obs.Observation{Time: c.now(), Vantage: server, Name: name, QType: qtype}
	r, rtt, err := q.Query(ctx, server, name, qtype)
	o.RTT = rtt
	if err != nil {
		o.Err = Classify(err)
		return o
	}
	o.Rcode = r.Rcode
	o.Err = RcodeClass(r.Rcode)
	if r.Authoritative {
		o.Flags |= obs.FlagAA
	}
	if r.RecursionAvailable {
		o.Flags |= obs.FlagRA
	}
	if o.Err == obs.OK {
		o.Answer = keep(name, qtype, r)
		limit := c.MaxRecords
		if limit <= 0 {
			limit = DefaultMaxRecords
		}
		if len(o.Answer) > limit {
			o.Answer = o.Answer[:limit:limit]
			o.Flags |= obs.FlagCapped
		}
	}
	return o
}

// Normalize keeps the answer records of r that belong to qname's CNAME
// chain; see NormalizeAnswer.
func Normalize(qname string, qtype uint16, r *dns.Msg) []obs.Record {
	return NormalizeAnswer(qname, qtype, r.Answer)
}

// NormalizeAnswer keeps the answer records that belong to qname's CNAME chain
// (CNAMEs along the chain and records of qtype at its names), lower-cases
// names, drops trailing dots and sorts the result. Records for names outside
// the chain are ignored: a resolver has no business sending them.
func NormalizeAnswer(qname string, qtype uint16, answer []dns.RR) []obs.Record {
	// The chain's names; answers are short, so a slice beats a map.
	chain := make([]string, 1, 4)
	chain[0] = qname
	// Follow CNAMEs in any order; a chain longer than the answer is a loop.
	// Only IN records are kept, so only IN CNAMEs extend the chain.
	for range len(answer) {
		grew := false
		for _, rr := range answer {
			if cn, ok := rr.(*dns.CNAME); ok && cn.Hdr.Class == dns.ClassINET && slices.Contains(chain, canon(cn.Hdr.Name)) {
				if target := canon(cn.Target); !slices.Contains(chain, target) {
					chain = append(chain, target)
					grew = true
				}
			}
		}
		if !grew {
			break
		}
	}
	out := make([]obs.Record, 0, len(answer))
	for _, rr := range answer {
		h := rr.Header()
		owner := canon(h.Name)
		if !slices.Contains(chain, owner) || h.Class != dns.ClassINET {
			continue
		}
		rec := obs.Record{Name: owner, Type: h.Rrtype, TTL: h.Ttl}
		switch v := rr.(type) {
		case *dns.CNAME:
			rec.Data = canon(v.Target)
		case *dns.A:
			if h.Rrtype != qtype || v.A == nil {
				continue
			}
			rec.Data = v.A.String()
		case *dns.AAAA:
			if h.Rrtype != qtype || v.AAAA == nil {
				continue
			}
			rec.Data = v.AAAA.String()
		case *dns.NS:
			if h.Rrtype != qtype {
				continue
			}
			rec.Data = canon(v.Ns)
		default:
			continue
		}
		rec.TTL = clampTTL(rec.TTL)
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil
	}
	obs.Sort(out)
	return slices.CompactFunc(out, func(a, b obs.Record) bool {
		return a.Name == b.Name && a.Type == b.Type && a.Data == b.Data
	})
}

// clampTTL caps a TTL at 2^31-1 (RFC 2181 §8).
func clampTTL(ttl uint32) uint32 { return min(ttl, 1<<31-1) }

func canon(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// Round deduplicates name server lookups within one crawl round: the first
// probe to need (vantage, host, type) asks, the others wait for and share its
// observation. The zero value is not usable; use NewRound. A nil *Round
// does not deduplicate.
type Round struct {
	mu      sync.Mutex
	entries map[roundKey]*roundEntry
}

type roundKey struct {
	vantage, host string
	qtype         uint16
}

type roundEntry struct {
	done chan struct{}
	o    obs.Observation
}

// delegationLookup is the type in the key of a whole delegation lookup
// (the parent's servers through a vantage, then the referral).
const delegationLookup = 0

// NewRound returns an empty round cache.
func NewRound() *Round { return &Round{entries: map[roundKey]*roundEntry{}} }

// fetch puts the observation of the round's lookup k into *dst: at once
// when round has it settled (a name server or referral shared by many
// domains, which most probes find), else from a goroutine of wg that asks,
// or waits for the probe that is asking. A delegation lookup (qtype
// delegationLookup, host the zone) needs the zone's parent; an address
// lookup asks k.host's type k.qtype through k.vantage. Nothing is
// allocated for a settled lookup.
func (c *Crawler) fetch(ctx context.Context, round *Round, wg *sync.WaitGroup, k roundKey, parent string, dst *obs.Observation) {
	if o, ok := round.peek(k); ok {
		*dst = o
		return
	}
	wg.Go(func() {
		*dst = round.do(k.vantage, k.host, k.qtype, func() obs.Observation {
			if k.qtype == delegationLookup {
				return c.delegation(ctx, k.host, parent, k.vantage, round)
			}
			return c.observe(ctx, k.vantage, k.host, k.qtype)
		})
	})
}

// peek returns the observation under k if it is already settled.
func (r *Round) peek(k roundKey) (obs.Observation, bool) {
	if r == nil {
		return obs.Observation{}, false
	}
	r.mu.Lock()
	e, ok := r.entries[k]
	r.mu.Unlock()
	if !ok {
		return obs.Observation{}, false
	}
	select {
	case <-e.done:
		return e.o, true
	default:
		return obs.Observation{}, false
	}
}

func (r *Round) do(vantage, host string, qtype uint16, ask func() obs.Observation) obs.Observation {
	if r == nil {
		return ask()
	}
	k := roundKey{vantage, host, qtype}
	r.mu.Lock()
	e, ok := r.entries[k]
	if !ok {
		e = &roundEntry{done: make(chan struct{})}
		r.entries[k] = e
	}
	r.mu.Unlock()
	if ok {
		<-e.done
		return e.o
	}
	e.o = ask()
	close(e.done)
	return e.o
}
