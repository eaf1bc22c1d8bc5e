package crawler

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// Querier sends one query to one vantage resolver and returns its response.
// The response has already been checked against the query: a response whose
// ID or question differs is never returned. Implementations must be safe for
// concurrent use.
type Querier interface {
	Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error)
}

// Errors a Querier returns, besides network and timeout errors.
var (
	// ErrMismatch means every response received answered some other question.
	ErrMismatch = errors.New("response does not match the query")
	// ErrTruncated means the answer was truncated even over TCP.
	ErrTruncated = errors.New("response truncated")
	// ErrMalformed means only unparseable responses arrived.
	ErrMalformed = errors.New("malformed response")
)

// ClientOptions configure Client. The zero value is usable.
type ClientOptions struct {
	Timeout time.Duration // per attempt; default 2s
	Retries int           // extra attempts after a timeout or mismatch; default 1 (negative: none)
	UDPSize uint16        // EDNS0 buffer size; default 1232
	// NoRecursion clears RD: for asking authoritative servers directly.
	NoRecursion bool
}

// Client is a Querier on miekg/dns: UDP with EDNS0, retried over TCP when
// the answer is truncated.
type Client struct {
	opts     ClientOptions
	udp, tcp *dns.Client
}

var _ Querier = (*Client)(nil)

// NewClient returns a Client with opts applied over the defaults.
func NewClient(opts ClientOptions) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Retries == 0 {
		opts.Retries = 1
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.UDPSize == 0 {
		opts.UDPSize = 1232
	}
	return &Client{
		opts: opts,
		udp:  &dns.Client{Net: "udp", Timeout: opts.Timeout, UDPSize: opts.UDPSize},
		tcp:  &dns.Client{Net: "tcp", Timeout: opts.Timeout},
	}
}

// Query implements Querier.
func (c *Client) Query(ctx context.Context, vantage, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	var lastErr error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		m.RecursionDesired = !c.opts.NoRecursion
		m.SetEdns0(c.opts.UDPSize, false)
		r, rtt, err := c.udp.ExchangeContext(ctx, m, vantage)
		if err == nil && !matches(m, r) {
			err = ErrMismatch
		}
		if err == nil && r.Truncated {
			r, rtt, err = c.tcp.ExchangeContext(ctx, m, vantage)
			if err == nil && !matches(m, r) {
				err = ErrMismatch
			}
			if err == nil && r.Truncated {
				err = ErrTruncated
			}
		}
		if err == nil {
			return r, rtt, nil
		}
		lastErr = err
		if ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	return nil, 0, lastErr
}

// matches reports whether r answers q: same ID, a response, and the same
// single question (names compared case-insensitively).
func matches(q, r *dns.Msg) bool {
	if r.Id != q.Id || !r.Response || len(r.Question) != 1 {
		return false
	}
	a, b := q.Question[0], r.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// Retryable reports whether a query that failed with err is worth asking
// again: it timed out, or only mismatched or malformed answers came.
func Retryable(err error) bool { return retryable(err) }

func retryable(err error) bool {
	var ne net.Error
	return errors.Is(err, ErrMismatch) || errors.Is(err, ErrMalformed) || (errors.As(err, &ne) && ne.Timeout())
}

// Classify maps a query error to the class that is stored.
func Classify(err error) obs.ErrClass {
	var ne net.Error
	switch {
	case err == nil:
		return obs.OK
	case errors.Is(err, ErrTruncated):
		return obs.Truncated
	case errors.Is(err, ErrMismatch), errors.Is(err, ErrMalformed):
		return obs.Malformed
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return obs.Timeout
	case errors.As(err, &ne), errors.Is(err, net.ErrClosed):
		return obs.Network
	default:
		// miekg/dns returns unpacking errors as plain errors: the bytes
		// arrived but were not a valid message.
		return obs.Malformed
	}
}

// RcodeClass maps a response code to the stored class.
func RcodeClass(rcode int) obs.ErrClass {
	switch rcode {
	case dns.RcodeSuccess:
		return obs.OK
	case dns.RcodeNameError:
		return obs.NXDomain
	case dns.RcodeServerFailure:
		return obs.ServFail
	case dns.RcodeRefused:
		return obs.Refused
	default:
		return obs.OtherRcode
	}
}

// DefaultVantages are used when no resolver is configured: unfiltered public
// resolvers of five operators, chosen because threat-blocking resolvers
// answer NXDOMAIN for exactly the names fluxwatch measures.
var DefaultVantages = []string{
	"1.1.1.1:53", "1.0.0.1:53", // Cloudflare
	"8.8.8.8:53", "8.8.4.4:53", // Google Public DNS
	"9.9.9.10:53", "149.112.112.10:53", // Quad9, unsecured service
	"94.140.14.140:53", "94.140.14.141:53", // AdGuard DNS, non-filtering
	"76.76.2.0:53", "76.76.10.0:53", // Control D, unfiltered
}
