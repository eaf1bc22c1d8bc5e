package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
)

// queryCounts count the queries that left an agent and how they ended.
type queryCounts struct {
	sent, answered atomic.Int64
	mu             sync.Mutex
	failed         map[obs.ErrClass]int64
}

func (c *queryCounts) record(r *dns.Msg, err error) {
	c.sent.Add(1)
	class := obs.OK
	if err == nil {
		c.answered.Add(1)
		class = crawler.RcodeClass(r.Rcode)
	} else {
		class = crawler.Classify(err)
	}
	if class == obs.OK {
		return
	}
	c.mu.Lock()
	if c.failed == nil {
		c.failed = map[obs.ErrClass]int64{}
	}
	c.failed[class]++
	c.mu.Unlock()
}

func (c *queryCounts) errors() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.failed))
	for k, v := range c.failed {
		out[k.String()] = v
	}
	return out
}

// counted counts the queries through q in counts. The scheduler's rate
// limits wrap it, so it counts queries as they leave.
type counted struct {
	q      crawler.Querier
	counts *queryCounts
}

func (c counted) Query(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	r, rtt, err := c.q.Query(ctx, server, name, qtype)
	c.counts.record(r, err)
	return r, rtt, err
}
