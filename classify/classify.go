// Package classify decides, from a domain's measured history, whether it is
// a fast-flux domain. It computes features over a window (address, prefix,
// ASN and country diversity, TTLs, how often answers change over time and
// differ between vantages, the name servers' names and addresses as the
// vantages and the parent zone give them) and turns them into a verdict
// with a score, a confidence and one line of evidence a person can check.
//
// The rules follow the published methods: the Holz et al. flux score
// (NDSS 2008) weighs networks about fourteen times more than addresses;
// FluxBuster's prefix diversity catches flux confined to a few large
// networks; a concentration rule, a CDN suffix list and an allowlist keep
// CDNs and public pools out. Double flux additionally needs the name
// servers' addresses or names to rotate across unrelated networks.
package classify

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/networks"
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

// Verdicts lists the verdict names.
var Verdicts = []string{SingleFlux, DoubleFlux, Benign, InsufficientData, Unresolvable}

// IsFlux reports whether a verdict name is a flux verdict, which lists a
// domain (see Listing). Whether a domain is listed is another question,
// answered by the listed index alone: see Verdict.Listed.
func IsFlux(verdict string) bool { return verdict == SingleFlux || verdict == DoubleFlux }

// Verdict is the classifier's conclusion about one domain. Its JSON form is
// what `classify --json` prints and `export --format jsonl` writes.
type Verdict struct {
	Domain  string `json:"domain"`
	Verdict string `json:"verdict"`
	// Score rises with the flux evidence from 0 to 1: flux verdicts score
	// at least 0.5, others less (see score). The Holz et al. flux score
	// is the feature holz_score.
	Score float64 `json:"score"`
	// Confidence is how sure the verdict is, from 0 to 1.
	Confidence   float64   `json:"confidence"`
	Evidence     string    `json:"evidence"`
	Features     Features  `json:"features"`
	ClassifiedAt time.Time `json:"classified_at"`
	// Agents are the addresses the domain resolved to in the window, and
	// NameServers and NSAgents its name servers and their addresses (glue
	// included); set for flux verdicts only, sorted, at most MaxAgents each.
	Agents      []string `json:"agents,omitempty"`
	NameServers []string `json:"name_servers,omitempty"`
	NSAgents    []string `json:"ns_agents,omitempty"`
	// Listing is set while the domain is on the block list (see Listing):
	// Run sets it on the verdicts it lists, and Each and Load set it from
	// the listed index, so that it is never stale (see Listed).
	Listing *Listing `json:"listing,omitempty"`
	// Names is set on the verdict of a registrable domain classified from
	// the measurements of several names under it: how many.
	Names int `json:"names,omitempty"`
	// Network is the id of the flux network the domain is in (see package
	// networks): Each and Load set it from the stored networks, as they set
	// Listing from the listed index, so that it is never stale. The
	// verdicts a Run passes on carry it only when association with a known
	// network made them flux (their networks are built after them).
	Network string `json:"network,omitempty"`
	// NetworkAgentsSeen is set on a verdict that association made flux:
	// how many of the domain's addresses are agents of that known network
	// (the evidence says of how many addresses, and how many agents).
	NetworkAgentsSeen int `json:"network_agents_seen,omitempty"`
	// Truth is the simulated world's class of the domain (demo and eval only).
	Truth string `json:"truth,omitempty"`
}

// Rules are the thresholds of the classifier. DefaultRules documents each.
type Rules struct {
	// MinRounds is how many answered rounds a verdict needs.
	MinRounds int
	// Wide flux: at least MinAddresses addresses in MinNetworks networks,
	// no network holding more than MaxTopShare of them, and a positive Holz
	// score.
	MinAddresses, MinNetworks int
	MaxTopShare               float64
	// Narrow flux (a few large networks): at least NarrowMinNetworks
	// networks, NarrowMinAddresses addresses over NarrowMinPrefixes16 /16s,
	// prefix diversity of NarrowMinDiversity over the window or of
	// NarrowMinAnswerDiversity within one answer (FluxBuster's 0.5, applied
	// to the sets it was meant for), and at least NarrowMin24PerAddress
	// /24s per address (CDN edges sit in few /24s).
	NarrowMinNetworks, NarrowMinAddresses, NarrowMinPrefixes16          int
	NarrowMinDiversity, NarrowMinAnswerDiversity, NarrowMin24PerAddress float64
	// MaxTTL: flux needs answers this short-lived (seconds).
	MaxTTL uint32
	// Double flux: the name servers' addresses rotate (at least
	// NSMinAddresses, changing) or their names do (at least NSMinNames,
	// changing), over NSMinNetworks networks, with TTLs up to NSMaxTTL.
	NSMinAddresses, NSMinNetworks, NSMinNames int
	NSMaxTTL                                  uint32
	// Association with a known flux network (see associate): at least
	// AssocMinAgents of the domain's addresses, and AssocMinShare of them,
	// are agents of one network; never for a domain whose own answers are
	// shown stable: StableRounds answered rounds, one answer throughout.
	AssocMinAgents int
	AssocMinShare  float64
	StableRounds   int
}

// DefaultRules are the thresholds fluxwatch ships with.
var DefaultRules = Rules{
	MinRounds:                2,
	MinAddresses:             8,
	MinNetworks:              4,
	MaxTopShare:              0.5,
	NarrowMinNetworks:        3,
	NarrowMinAddresses:       12,
	NarrowMinPrefixes16:      6,
	NarrowMinDiversity:       0.45,
	NarrowMinAnswerDiversity: 0.5,
	NarrowMin24PerAddress:    0.5,
	MaxTTL:                   1800,
	NSMinAddresses:           4,
	NSMinNetworks:            3,
	NSMinNames:               4,
	NSMaxTTL:                 3600,
	// Two agents: one address in common with a network is what a shared
	// host or a reused address gives; two are the least that is not one
	// coincidence, and the safeguards have already taken out the
	// addresses many names share. (Measured on worlds 1–50: no name whose
	// truth is not flux had a single address among the final networks'
	// agents.)
	AssocMinAgents: 2,
	// A majority: "largely among its agents", which keeps a name with
	// many addresses of its own that touches two agents out. Measured on
	// worlds 1–50, a known network's newer domain had a median 0.58 of
	// its first round's addresses among the network's known agents (least
	// 0.14: a network seen for minutes is known by a fraction of its pool,
	// and such a domain waits for its own second round).
	AssocMinShare: 0.5,
	// MinRounds: the two answers the classifier needs anyway to call a
	// name's answers stable are enough to refuse association.
	StableRounds: 2,
}

// Classifier turns histories into verdicts. The zero value uses
// DefaultRules, no IP tables, no allowlist and no CDN suffixes.
type Classifier struct {
	Rules *Rules
	Meta  *ipmeta.DB
	// Allow lists names that are never listed, whatever their features.
	Allow *Allowlist
	// ListWithoutIPTables lets a flux verdict judged without an IP-to-ASN
	// table be listed. By default it is not: networks are then only
	// prefixes, and a CDN's addresses in a handful of /16s pass for flux.
	ListWithoutIPTables bool
	// CDNSuffixes are zones of content delivery networks: a domain whose
	// CNAME chain ends inside one is not flux (see DefaultCDNSuffixes).
	CDNSuffixes []string
	// Fallback, if set, is asked (online) for addresses Meta does not know
	// before Run classifies; Meta must include it (ipmeta.DB.AddFallback).
	Fallback *ipmeta.Cymru
	// Expiry is how long a listing lasts after the last flux verdict
	// (DefaultExpiry if zero).
	Expiry time.Duration
	// DryRun makes Run compute the verdicts and pass them on without
	// storing them or touching any listing: an exploratory run (another
	// window, other tables) replaces nothing. Its verdicts carry no
	// Listing and its counts no listing changes.
	DryRun bool
	// Networks, if set, builds the flux networks in place of Run (see
	// NetworkBuilder): a shard of a cluster builds them with the others.
	Networks NetworkBuilder
}

// Classify decides on one domain from its probes in time order. It knows
// no flux network: Run classifies with the networks stored before it.
func (c *Classifier) Classify(domain string, probes []obs.Probe, now time.Time) Verdict {
	v, _ := c.classify(domain, probes, now, nil)
	return v
}

// classify is Classify with the known networks, which may be nil; it also
// returns the address sets it found.
func (c *Classifier) classify(domain string, probes []obs.Probe, now time.Time, known *networks.Index) (Verdict, agentSets) {
	r := c.rules()
	f, sets := extract(domain, probes, c.Meta, c.CDNSuffixes)
	v := Verdict{Domain: domain, Features: f, ClassifiedAt: now.UTC()}
	fluxKind := fluxA(f, r)
	allowed, allowEntry := c.Allow.Match(domain)
	spatial := fluxKind != "" && f.Vantages >= 3 && f.VantageDisagreement == 1
	if !allowed && (fluxKind == "" || f.Rounds < r.MinRounds && !spatial) {
		if m := associate(domain, f, sets, known, r); m.Network != "" {
			fluxKind = fmt.Sprintf("flux by association: %d of its %d addresses are agents of known network %s (%d agents);",
				m.Seen, f.Addresses, m.Network, m.Agents)
			v.Network, v.NetworkAgentsSeen = m.Network, m.Seen
		}
	}
	switch {
	case f.Probes == 0:
		v.Verdict, v.Evidence = InsufficientData, "not measured yet"
	case f.Rounds == 0:
		v.Verdict, v.Confidence = Unresolvable, confidence(f.Probes, 1)
		v.Evidence = fmt.Sprintf("no address in %d probes (%s)", f.Probes, errorSummary(f.Errors))
	case allowed:
		v.Verdict, v.Confidence = Benign, 1
		v.Evidence = fmt.Sprintf("allowlisted (%s); %s", allowEntry, addrEvidence(f))
	case f.Rounds < r.MinRounds && !spatial && v.Network == "":
		// One round is enough only for a spatial snapshot: three or more
		// vantages, every one seeing its own flux set; or for a domain
		// whose addresses are a known network's agents.
		v.Verdict = InsufficientData
		v.Evidence = fmt.Sprintf("%d answered round, %d needed", f.Rounds, r.MinRounds)
	case f.CDN != "" && fluxKind != "":
		v.Verdict, v.Confidence = Benign, 0.9 // association never takes a CDN's name
		v.Evidence = fmt.Sprintf("CNAME into CDN %s (%s); %s", f.CDN, f.CNAMETarget, addrEvidence(f))
	case fluxKind == "":
		v.Verdict, v.Confidence = Benign, confidence(f.Rounds, 0.6)
		v.Evidence = benignReason(f, r)
	case fluxNS(f, r):
		v.Verdict, v.Confidence = DoubleFlux, confidence(f.Rounds, 0.7)
		v.Evidence = fmt.Sprintf("%s %s; %s", fluxKind, addrEvidence(f), nsEvidence(f))
	default:
		v.Verdict, v.Confidence = SingleFlux, confidence(f.Rounds, 0.7)
		v.Evidence = fmt.Sprintf("%s %s; %s", fluxKind, addrEvidence(f), nsEvidence(f))
	}
	v.Score = score(v.Verdict, f, r, allowed)
	switch v.Verdict {
	case SingleFlux:
		v.Agents = sortedAddrs(sets.addrs)
	case DoubleFlux:
		v.Agents = sortedAddrs(sets.addrs)
		v.NSAgents = sortedAddrs(sets.nsAddrs)
		v.NameServers = slices.Sorted(maps.Keys(sets.nsNames))
		if len(v.NameServers) > MaxAgents {
			v.NameServers = v.NameServers[:MaxAgents]
		}
	}
	return v, sets
}

// associate returns the known network that makes the domain flux by
// association: most of its addresses, at least AssocMinAgents of them,
// are that network's agents (whose addresses the safeguards have sifted
// when the network was stored), and the network is more than the domain
// itself. It never applies to a name behind a CDN's
// CNAME, with TTLs too long for flux, or whose own answers are shown
// stable (StableRounds answered rounds, and neither time nor the vantages
// changed the answer): a name can be flux on its network's evidence only
// before its own says otherwise.
func associate(domain string, f Features, sets agentSets, known *networks.Index, r *Rules) networks.Match {
	if known.Len() == 0 || f.Rounds == 0 || f.CDN != "" || f.MinTTL > r.MaxTTL || r.AssocMinAgents <= 0 {
		return networks.Match{}
	}
	if f.Rounds >= r.StableRounds && f.SetChanges == 0 && f.VantageDisagreement == 0 {
		return networks.Match{}
	}
	m := known.Match(domain, addrList(sets.addrs))
	if m.Seen < r.AssocMinAgents || float64(m.Seen) < r.AssocMinShare*float64(len(sets.addrs)) {
		return networks.Match{}
	}
	return m
}

func addrList(set map[netip.Addr]bool) []netip.Addr {
	return slices.SortedFunc(maps.Keys(set), netip.Addr.Compare)
}

// rules returns the rules in force.
func (c *Classifier) rules() *Rules {
	if c.Rules == nil {
		return &DefaultRules
	}
	return c.Rules
}

// MaxAgents bounds the addresses and name servers a verdict carries, so a
// domain rotating through a botnet cannot make its record unbounded.
const MaxAgents = 1024

func sortedAddrs(set map[netip.Addr]bool) []string {
	as := slices.SortedFunc(maps.Keys(set), func(a, b netip.Addr) int { return a.Compare(b) })
	if len(as) > MaxAgents {
		as = as[:MaxAgents]
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// score maps the flux evidence to a number from 0 to 1 that rises with it
// (the README documents the mapping): single flux scores 0.5 to 0.75,
// double flux 0.75 to 1, a benign verdict under 0.5 (0 when allowlisted),
// a name without answered rounds 0. Within each, the score rises with the
// spread of the addresses: log2 of the networks (saturating at 32) and of
// the addresses (at 256), averaged; a benign name whose answers do not
// rotate within the TTL limit scores half. The Holz f is Features.HolzScore.
func score(verdict string, f Features, r *Rules, allowlisted bool) float64 {
	spread := (min(1, math.Log2(float64(max(f.Networks, 1)))/5) + min(1, math.Log2(float64(max(f.Addresses, 1)))/8)) / 2
	switch {
	case verdict == SingleFlux:
		return round2(0.5 + 0.25*spread)
	case verdict == DoubleFlux:
		return round2(0.75 + 0.25*spread)
	case verdict != Benign || allowlisted:
		return 0
	}
	rotating := f.MinTTL <= r.MaxTTL && (f.SetChanges > 0 || f.VantageDisagreement > 0)
	if !rotating {
		spread /= 2
	}
	return math.Floor(45*spread) / 100 // rounded down: under 0.45, whatever the rounding
}

// confidence grows with the number of rounds from base toward 0.99.
func confidence(rounds int, base float64) float64 {
	return round2(min(0.99, 1-(1-base)*math.Pow(0.8, float64(max(rounds-1, 0)))))
}

// fluxA says whether the addresses rotate like fast flux: "wide flux"
// across many networks, "narrow flux" across a few large ones, or "".
func fluxA(f Features, r *Rules) string {
	rotating := f.MinTTL <= r.MaxTTL && (f.SetChanges > 0 || f.VantageDisagreement > 0)
	if !rotating {
		return ""
	}
	if f.Addresses >= r.MinAddresses && f.Networks >= r.MinNetworks && f.TopNetworkShare <= r.MaxTopShare && f.HolzScore > 0 {
		return "wide flux:"
	}
	if f.Networks >= r.NarrowMinNetworks && f.Addresses >= r.NarrowMinAddresses && f.Prefixes16 >= r.NarrowMinPrefixes16 &&
		(f.Diversity >= r.NarrowMinDiversity || f.AnswerDiversity >= r.NarrowMinAnswerDiversity) &&
		float64(f.Prefixes24) >= r.NarrowMin24PerAddress*float64(f.Addresses) {
		return "narrow flux:"
	}
	return ""
}

func fluxNS(f Features, r *Rules) bool {
	rotatingAddrs := f.NSAddresses+f.GlueAddresses >= r.NSMinAddresses && (f.NSAddrChanges+f.DelegationChanges > 0 || f.NSDisagreement > 0)
	rotatingNames := max(f.NSNames, f.DelegationNSNames) >= r.NSMinNames && f.NSNameChanges+f.DelegationChanges > 0
	ttl := f.NSMinTTL
	if f.DelegationMinTTL != 0 && (ttl == 0 || f.DelegationMinTTL < ttl) {
		ttl = f.DelegationMinTTL
	}
	return (rotatingAddrs || rotatingNames) && f.NSNetworks >= r.NSMinNetworks && ttl <= r.NSMaxTTL
}

func netWord(f Features) string {
	if f.ASNTable {
		return "ASNs"
	}
	return "networks (/16, /48; no ASN table)"
}

func addrEvidence(f Features) string {
	s := fmt.Sprintf("%d addresses in %d %s", f.Addresses, f.Networks, netWord(f))
	if f.Countries > 0 {
		s += fmt.Sprintf(", %d countries", f.Countries)
	}
	s += fmt.Sprintf(", %d /16s (diversity %.2f, %.2f per answer) over %d rounds, %s via %d vantages, TTL %ds, set changed %d times",
		f.Prefixes16, f.Diversity, f.AnswerDiversity, f.Rounds, f.LastSeen.Sub(f.FirstSeen).Round(time.Second), f.Vantages, f.MinTTL, f.SetChanges)
	if len(f.TopNetworks) > 0 {
		s += "; top " + strings.Join(f.TopNetworks, ", ")
	}
	if len(f.Sample) > 0 {
		s += "; e.g. " + strings.Join(f.Sample, " ")
	}
	return s
}

func nsEvidence(f Features) string {
	deleg := ""
	if f.Delegations > 0 {
		deleg = fmt.Sprintf("; parent zone: %d NS names, %d glue addresses, changed %d times in %d looks, TTL %ds",
			f.DelegationNSNames, f.GlueAddresses, f.DelegationChanges, f.Delegations, f.DelegationMinTTL)
	}
	if f.NSNames == 0 && f.Delegations == 0 {
		return "no NS answer"
	}
	if f.NSAddrChanges == 0 && f.NSNameChanges == 0 && f.DelegationChanges == 0 && f.NSDisagreement == 0 {
		return fmt.Sprintf("NS stable (%d names, %d addresses)%s", f.NSNames, f.NSAddresses, deleg)
	}
	return fmt.Sprintf("NS rotate: %d names (changed %d times), %d addresses in %d networks (changed %d times, vantages disagree in %.0f%% of rounds), NS TTL %ds%s",
		f.NSNames, f.NSNameChanges, f.NSAddresses, f.NSNetworks, f.NSAddrChanges, 100*f.NSDisagreement, f.NSMinTTL, deleg)
}

func benignReason(f Features, r *Rules) string {
	base := fmt.Sprintf("%d addresses in %d %s, %d /16s over %d rounds, TTL %ds", f.Addresses, f.Networks, netWord(f), f.Prefixes16, f.Rounds, f.MinTTL)
	switch {
	case f.MinTTL > r.MaxTTL:
		return base + ": long TTL"
	case f.SetChanges == 0 && f.VantageDisagreement == 0:
		return base + ": answers stable"
	case f.Addresses >= r.MinAddresses && f.TopNetworkShare > r.MaxTopShare:
		return base + fmt.Sprintf(": concentrated, %.0f%% in one network (CDN-like)", 100*f.TopNetworkShare)
	case f.Addresses >= r.MinAddresses && f.Networks < r.MinNetworks:
		return base + ": too few networks for flux"
	case f.Addresses < r.MinAddresses:
		return base + ": too few addresses for flux"
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
