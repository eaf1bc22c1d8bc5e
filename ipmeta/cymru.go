package ipmeta

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// Querier sends one DNS query through a resolver; crawler.Client is one.
type Querier interface {
	Query(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, time.Duration, error)
}

// Cymru looks addresses up in Team Cymru's IP-to-ASN DNS service
// (origin.asn.cymru.com and origin6.asn.cymru.com TXT records) through a
// resolver, rate limited, and keeps the answers by announced prefix. It is
// an online fallback for addresses the offline tables do not know; nothing
// asks it unless Prefetch is called. Safe for concurrent use.
type Cymru struct {
	Querier  Querier
	Resolver string        // host:port of the resolver to ask through
	Limiter  *rate.Limiter // nil: no limit
	// MaxEntries bounds the cache (default 100000 prefixes); when full,
	// new answers are not kept.
	MaxEntries int

	mu       sync.RWMutex
	prefixes map[netip.Prefix]Info
	missing  map[netip.Addr]bool // asked, and the service had no answer
}

var _ source = (*Cymru)(nil)

// AddFallback adds c after the ASN tables: it answers only for addresses
// no table knows, and only what Prefetch has fetched.
func (db *DB) AddFallback(c *Cymru) { db.asn = append(db.asn, c) }

func (c *Cymru) lookup(a netip.Addr) (Info, bool) {
	a = a.Unmap()
	c.mu.RLock()
	defer c.mu.RUnlock()
	bits := 32
	if a.Is6() {
		bits = 128
	}
	for b := bits; b >= 8; b-- {
		p, _ := a.Prefix(b)
		if info, ok := c.prefixes[p]; ok {
			return info, true
		}
	}
	return Info{}, false
}

func (c *Cymru) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.prefixes)
}

// Prefetch asks the service about every address in addrs that neither db's
// other sources nor the cache know. It stops at the first error that is
// not about one address (a cancelled context).
func (c *Cymru) Prefetch(ctx context.Context, db *DB, addrs []netip.Addr) (asked int, err error) {
	for _, a := range addrs {
		if info, ok := db.Lookup(a); ok && info.ASN != 0 {
			continue
		}
		c.mu.RLock()
		miss := c.missing[a.Unmap()]
		c.mu.RUnlock()
		if miss {
			continue
		}
		if c.Limiter != nil {
			if err := c.Limiter.Wait(ctx); err != nil {
				return asked, err
			}
		}
		asked++
		info, prefix, ok := c.ask(ctx, a.Unmap())
		c.mu.Lock()
		if c.prefixes == nil {
			c.prefixes, c.missing = map[netip.Prefix]Info{}, map[netip.Addr]bool{}
		}
		limit := c.MaxEntries
		if limit <= 0 {
			limit = 100000
		}
		if ok && len(c.prefixes) < limit {
			c.prefixes[prefix] = info
		} else if !ok && len(c.missing) < limit {
			c.missing[a.Unmap()] = true
		}
		c.mu.Unlock()
		if ctx.Err() != nil {
			return asked, ctx.Err()
		}
	}
	return asked, nil
}

// ask queries one address; ok is false when the service has no answer.
func (c *Cymru) ask(ctx context.Context, a netip.Addr) (Info, netip.Prefix, bool) {
	r, _, err := c.Querier.Query(ctx, c.Resolver, CymruName(a), dns.TypeTXT)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		return Info{}, netip.Prefix{}, false
	}
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			if info, prefix, err := ParseCymru(strings.Join(txt.Txt, "")); err == nil && prefix.Contains(a) {
				return info, prefix, true
			}
		}
	}
	return Info{}, netip.Prefix{}, false
}

// CymruName is the name to ask for a: the reversed octets under
// origin.asn.cymru.com, or reversed nibbles under origin6.asn.cymru.com.
func CymruName(a netip.Addr) string {
	a = a.Unmap()
	var b strings.Builder
	if a.Is4() {
		o := a.As4()
		fmt.Fprintf(&b, "%d.%d.%d.%d.origin.asn.cymru.com.", o[3], o[2], o[1], o[0])
		return b.String()
	}
	o := a.As16()
	for i := len(o) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "%x.%x.", o[i]&0xf, o[i]>>4)
	}
	b.WriteString("origin6.asn.cymru.com.")
	return b.String()
}

// ParseCymru parses one TXT answer: "ASN [ASN...] | prefix | CC | registry | date".
// Of several origin ASNs the first is taken.
func ParseCymru(txt string) (Info, netip.Prefix, error) {
	f := strings.Split(txt, "|")
	if len(f) < 3 {
		return Info{}, netip.Prefix{}, fmt.Errorf("cymru answer %q: want ASN | prefix | country | …", txt)
	}
	asns := strings.Fields(f[0])
	if len(asns) == 0 {
		return Info{}, netip.Prefix{}, fmt.Errorf("cymru answer %q: no ASN", txt)
	}
	asn, err := strconv.ParseUint(asns[0], 10, 32)
	if err != nil {
		return Info{}, netip.Prefix{}, fmt.Errorf("cymru answer %q: bad ASN", txt)
	}
	prefix, err := netip.ParsePrefix(strings.TrimSpace(f[1]))
	if err != nil {
		return Info{}, netip.Prefix{}, fmt.Errorf("cymru answer %q: bad prefix", txt)
	}
	info := Info{ASN: uint32(asn)}
	if cc := strings.ToUpper(strings.TrimSpace(f[2])); len(cc) == 2 {
		info.Country = cc
	}
	return info, prefix.Masked(), nil
}
