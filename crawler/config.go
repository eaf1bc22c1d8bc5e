package crawler

import (
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/obs"
)

// Resolvers returns the vantage resolvers c configures as host:port, each
// once: the list, then the file; DefaultVantages when neither names any.
func Resolvers(c *config.Config) ([]string, error) {
	var addrs []string
	for _, r := range c.Resolvers {
		v, err := obs.ParseVantage(r)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, v)
	}
	if c.ResolversFile != "" {
		more, err := config.ReadResolvers(c.ResolversFile)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, more...)
	}
	if len(addrs) == 0 {
		addrs = DefaultVantages
	}
	seen := map[string]bool{}
	var out []string
	for _, a := range addrs {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// FromConfig returns the query path c configures (release closes it) and
// the crawler, before any rate limit: the scheduler's and the agent's own
// limits wrap them.
func FromConfig(c *config.Config) (q Querier, cr Crawler, release func(), err error) {
	qtypes, err := config.ParseQTypes(c.QTypes)
	if err != nil {
		return nil, Crawler{}, nil, err
	}
	opts := ClientOptions{Timeout: c.Timeout, Retries: ConfigRetries(c.Retries), UDPSize: c.EDNSSize}
	// The vantages' queries are retried by the scheduler's (or agent's)
	// limits, only while the vantage answers others, and each retry pays
	// for its token: the query path itself asks once.
	once := opts
	once.Retries = -1
	release = func() {}
	if c.Engine == "naive" {
		q = NewClient(once)
	} else {
		e, err := NewEngine(EngineOptions{ClientOptions: once, Sockets: c.Sockets, RandomizeCase: c.RandomizeCase})
		if err != nil {
			return nil, Crawler{}, nil, err
		}
		q, release = e, func() { e.Close() }
	}
	cr = Crawler{QTypes: qtypes, NSHosts: c.NSHosts, MaxRecords: c.MaxRecords}
	if c.Delegation {
		opts.NoRecursion = true
		cr.Delegation, cr.Direct, cr.ParentPort = true, NewClient(opts), c.ParentPort
	}
	return q, cr, release, nil
}

// ConfigRetries maps the config's retries (0: none) to ClientOptions'
// (0: the default, -1: none).
func ConfigRetries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
