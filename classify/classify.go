// Package classify decides, from a domain's measured history, whether it is
// a fast-flux domain. It computes features over a window (address and
// network diversity, TTLs, how often answers change over time and differ
// between vantages, the name servers' names and addresses) and turns them
// into a verdict with a score and one line of evidence a person can check.
//
// The rules follow the published methods: the Holz et al. flux score
// (NDSS 2008) weighs networks about fourteen times more than addresses, and a
// concentration rule keeps CDNs, whose many addresses sit in one or two
// networks, out. Double flux additionally needs the name servers' addresses
// (or names) to rotate across unrelated networks.
package classify

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
)

// Verdict names.
const (
	SingleFlux       = "single-flux"
	DoubleFlux       = "double-flux"
	Benign           = "benign"
	InsufficientData = "insufficient-data"
	Unresolvable     = "unresolvable"
)

// Listed reports whether a verdict puts a domain on the blocklist.
func Listed(verdict string) bool { return verdict == SingleFlux || verdict == DoubleFlux }

// Verdict is the classifier's conclusion about one domain. Its JSON form is
// what `classify --json` prints and `export --format jsonl` writes.
type Verdict struct {
	Domain       string    `json:"domain"`
	Verdict      string    `json:"verdict"`
	Score        float64   `json:"score"`
	Evidence     string    `json:"evidence"`
	Features     Features  `json:"features"`
	ClassifiedAt time.Time `json:"classified_at"`
	// Truth is the simulated world's class of the domain (demo only).
	Truth string `json:"truth,omitempty"`
}

// Rules are the thresholds of the classifier. DefaultRules documents each.
type Rules struct {
	// MinRounds is how many answered rounds a verdict needs.
	MinRounds int
	// MinAddresses and MinNetworks: flux needs at least this many distinct
	// addresses in this many networks, and a positive Holz score.
	MinAddresses, MinNetworks int
	// MaxTopShare: flux needs no network to hold a larger share of the
	// addresses; above it the answers are concentrated (CDN-like).
	MaxTopShare float64
	// MaxTTL: flux needs answers this short-lived (seconds).
	MaxTTL uint32
	// NS rules for double flux: the name servers' addresses rotate (at
	// least NSMinAddresses addresses in NSMinNetworks networks, changing,
	// with TTLs up to NSMaxTTL), or their names do (at least NSMinNames).
	NSMinAddresses, NSMinNetworks, NSMinNames int
	NSMaxTTL                                  uint32
}

// DefaultRules are the thresholds fluxwatch ships with.
var DefaultRules = Rules{
	MinRounds:      2,
	MinAddresses:   8,
	MinNetworks:    4,
	MaxTopShare:    0.5,
	MaxTTL:         1800,
	NSMinAddresses: 4,
	NSMinNetworks:  3,
	NSMinNames:     4,
	NSMaxTTL:       3600,
}

// Classifier turns histories into verdicts. The zero value uses
// DefaultRules and no ASN table.
type Classifier struct {
	Rules *Rules
	ASN   *ipmeta.DB
}

// Classify decides on one domain from its probes in time order.
func (c *Classifier) Classify(domain string, probes []obs.Probe, now time.Time) Verdict {
	rules := c.Rules
	if rules == nil {
		rules = &DefaultRules
	}
	f := extract(domain, probes, c.ASN)
	v := Verdict{Domain: domain, Features: f, ClassifiedAt: now.UTC(), Score: round2(f.HolzScore)}
	nets := netWord(f)
	switch {
	case f.Probes == 0:
		v.Verdict, v.Score = InsufficientData, 0
		v.Evidence = "not measured yet"
	case f.Rounds == 0:
		v.Verdict, v.Score = Unresolvable, 0
		v.Evidence = fmt.Sprintf("no address in %d probes (%s)", f.Probes, errorSummary(f.Errors))
	case f.Rounds < rules.MinRounds:
		v.Verdict = InsufficientData
		v.Evidence = fmt.Sprintf("%d answered round, %d needed", f.Rounds, rules.MinRounds)
	case !fluxA(f, rules):
		v.Verdict = Benign
		v.Evidence = benignReason(f, rules, nets)
	case fluxNS(f, rules):
		v.Verdict = DoubleFlux
		v.Evidence = fmt.Sprintf("%s; %s", addrEvidence(f, nets), nsEvidence(f))
	default:
		v.Verdict = SingleFlux
		v.Evidence = fmt.Sprintf("%s; %s", addrEvidence(f, nets), nsEvidence(f))
	}
	return v
}

func fluxA(f Features, r *Rules) bool {
	return f.Addresses >= r.MinAddresses && f.Networks >= r.MinNetworks &&
		f.TopNetworkShare <= r.MaxTopShare && f.MinTTL <= r.MaxTTL &&
		(f.SetChanges > 0 || f.VantageDisagreement > 0) && f.HolzScore > 0
}

func fluxNS(f Features, r *Rules) bool {
	rotatingAddrs := f.NSAddresses >= r.NSMinAddresses && f.NSAddrChanges > 0
	rotatingNames := f.NSNames >= r.NSMinNames && f.NSNameChanges > 0
	return (rotatingAddrs || rotatingNames) && f.NSNetworks >= r.NSMinNetworks && f.NSMinTTL <= r.NSMaxTTL
}

func netWord(f Features) string {
	if f.ASNTable {
		return "networks (ASNs)"
	}
	return "networks (/16 and /48 prefixes; no ASN table)"
}

func addrEvidence(f Features, nets string) string {
	return fmt.Sprintf("%d addresses in %d %s over %d rounds via %d vantages, TTL %ds, set changed %d times",
		f.Addresses, f.Networks, nets, f.Rounds, f.Vantages, f.MinTTL, f.SetChanges)
}

func nsEvidence(f Features) string {
	if f.NSNames == 0 {
		return "no NS answer"
	}
	if f.NSAddrChanges == 0 && f.NSNameChanges == 0 {
		return fmt.Sprintf("NS stable (%d names, %d addresses)", f.NSNames, f.NSAddresses)
	}
	return fmt.Sprintf("NS rotate: %d names (changed %d times), %d addresses in %d networks (changed %d times), NS TTL %ds",
		f.NSNames, f.NSNameChanges, f.NSAddresses, f.NSNetworks, f.NSAddrChanges, f.NSMinTTL)
}

func benignReason(f Features, r *Rules, nets string) string {
	base := fmt.Sprintf("%d addresses in %d %s over %d rounds, TTL %ds", f.Addresses, f.Networks, nets, f.Rounds, f.MinTTL)
	switch {
	case f.Addresses >= r.MinAddresses && f.TopNetworkShare > r.MaxTopShare:
		return base + fmt.Sprintf(": concentrated, %.0f%% in one network (CDN-like)", 100*f.TopNetworkShare)
	case f.Addresses >= r.MinAddresses && f.Networks < r.MinNetworks:
		return base + ": too few networks for flux"
	case f.MinTTL > r.MaxTTL:
		return base + ": long TTL"
	case f.SetChanges == 0 && f.VantageDisagreement == 0:
		return base + ": answers stable"
	default:
		return base
	}
}

func errorSummary(errs map[string]int) string {
	if len(errs) == 0 {
		return "empty answers"
	}
	var parts []string
	for _, c := range obs.ErrClasses() {
		if n := errs[c.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	return strings.Join(parts, ", ")
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
