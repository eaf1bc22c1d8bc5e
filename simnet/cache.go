package simnet

import (
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxCacheEntries bounds each vantage's cache; queries for endless made-up
// names must not grow it without limit.
const maxCacheEntries = 1 << 16

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	ans     answer
	fetched time.Time // simulated
	expires time.Time // simulated
}

// cache is one vantage's answer cache, keyed by name and type. Entries live
// for their answer's TTL in simulated time. It is safe for concurrent use.
type cache struct {
	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
}

func newCache() *cache { return &cache{entries: make(map[cacheKey]cacheEntry)} }

// get returns the answer for k at simulated time now: the cached one while
// it is fresh, else a new one from fetch. The records returned are copies
// whose TTLs are lowered by the whole seconds since the answer was fetched.
func (c *cache) get(k cacheKey, now time.Time, fetch func() answer) answer {
	c.mu.Lock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.expires) {
		e = cacheEntry{ans: fetch(), fetched: now}
		e.expires = now.Add(time.Duration(e.ans.ttl) * time.Second)
		if e.ans.ttl > 0 {
			c.store(k, e, now)
		} else if ok {
			delete(c.entries, k)
		}
	}
	c.mu.Unlock()
	return e.ans.aged(uint32(now.Sub(e.fetched) / time.Second))
}

// store adds e, first dropping expired entries (and, if that is not enough,
// arbitrary ones) when the cache is full. c.mu must be held.
func (c *cache) store(k cacheKey, e cacheEntry, now time.Time) {
	if len(c.entries) >= maxCacheEntries {
		for key, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, key)
			}
		}
		for key := range c.entries {
			if len(c.entries) < maxCacheEntries*3/4 {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = e
}

// len returns the number of cached entries.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// aged returns a copy of a with every TTL lowered by elapsed seconds.
func (a answer) aged(elapsed uint32) answer {
	age := func(rr dns.RR) dns.RR {
		rr = dns.Copy(rr)
		h := rr.Header()
		h.Ttl -= min(h.Ttl, elapsed)
		return rr
	}
	out := answer{rcode: a.rcode, ttl: a.ttl - min(a.ttl, elapsed)}
	if len(a.rrs) > 0 {
		out.rrs = make([]dns.RR, len(a.rrs))
		for i, rr := range a.rrs {
			out.rrs[i] = age(rr)
		}
	}
	if a.soa != nil {
		out.soa = age(a.soa)
	}
	return out
}
