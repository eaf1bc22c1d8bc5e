package classify

import (
	"golang.org/x/time/rate"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/ipmeta"
)

// FromConfig returns the classifier c configures: its IP tables
// (ipmeta.FromConfig), allowlist, CDN suffixes, expiry and, with c.Cymru,
// Team Cymru's DNS service asked through the first vantage for the
// addresses the tables miss.
func FromConfig(c *config.Config) (*Classifier, error) {
	meta, err := ipmeta.FromConfig(c)
	if err != nil {
		return nil, err
	}
	cl := &Classifier{Meta: meta, CDNSuffixes: DefaultCDNSuffixes, Expiry: c.ExpireAfter,
		ListWithoutIPTables: c.ListWithoutIPTables}
	if len(c.Allowlist) > 0 {
		if cl.Allow, err = LoadAllowlist(c.Allowlist...); err != nil {
			return nil, err
		}
	}
	if c.CDNSuffixes != "" {
		if cl.CDNSuffixes, err = LoadSuffixes(c.CDNSuffixes); err != nil {
			return nil, err
		}
	}
	if c.Cymru {
		resolvers, err := crawler.Resolvers(c)
		if err != nil {
			return nil, err
		}
		cl.Fallback = &ipmeta.Cymru{
			Querier:  crawler.NewClient(crawler.ClientOptions{Timeout: c.Timeout, Retries: crawler.ConfigRetries(c.Retries)}),
			Resolver: resolvers[0],
			Limiter:  rate.NewLimiter(rate.Limit(c.CymruQPS), 1),
		}
		meta.AddFallback(cl.Fallback)
	}
	return cl, nil
}
