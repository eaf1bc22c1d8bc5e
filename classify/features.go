package classify

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
)

// Features summarise a domain's history over the classification window.
// Each is documented in the README; the JSON names are part of the jsonl
// export.
type Features struct {
	Probes   int `json:"probes"`
	Vantages int `json:"vantages"`
	// Rounds is the largest number of answered probes through one vantage.
	Rounds int `json:"rounds"`

	Addresses  int `json:"addresses"`
	Prefixes24 int `json:"prefixes_24"`
	Prefixes16 int `json:"prefixes_16"`
	Prefixes48 int `json:"prefixes_48"`
	// ASNs and Countries count what the IP tables know (0 without them).
	ASNs      int `json:"asns"`
	Countries int `json:"countries"`
	// Networks counts ASNs, with each address the tables do not know
	// counted by its /16 (v4) or /48 (v6); without tables, prefixes only.
	Networks int `json:"networks"`
	// TopNetworkShare is the share of addresses in the most common network.
	TopNetworkShare float64 `json:"top_network_share"`
	// Diversity is FluxBuster's: the entropy of the /16 (v4) and /48 (v6)
	// prefixes divided by log2 of the number of addresses.
	Diversity float64 `json:"diversity"`
	// AnswerDiversity is the same measure over one answer at a time (an A
	// or an AAAA answer): the median over the answers with at least 3
	// addresses. FluxBuster's
	// measure over a whole window falls as a domain piles up addresses
	// in a few large networks (their /16s run out); one answer's does not.
	AnswerDiversity float64 `json:"answer_diversity"`
	ASNsPerAddress  float64 `json:"asns_per_address"`
	// Growth is the number of never-seen addresses per round after the first.
	Growth float64 `json:"growth"`

	MinTTL    uint32 `json:"min_ttl"`
	MedianTTL uint32 `json:"median_ttl"`
	// SetChanges counts consecutive answered probes through the same vantage
	// whose address sets differ; ChangeRate divides by the number of pairs.
	SetChanges int     `json:"set_changes"`
	ChangeRate float64 `json:"change_rate"`
	// VantageDisagreement is the share of rounds in which the vantages that
	// answered saw different address sets (the spatial snapshot).
	VantageDisagreement float64           `json:"vantage_disagreement"`
	PerVantage          []VantageFeatures `json:"per_vantage"`

	CNAMEs      int    `json:"cnames"`
	CNAMETarget string `json:"cname_target,omitempty"` // the end of the chain
	CDN         string `json:"cdn,omitempty"`          // the CDN suffix it ends in

	// Name servers as the vantages resolve them.
	NSNames       int    `json:"ns_names"`
	NSNameChanges int    `json:"ns_name_changes"`
	NSAddresses   int    `json:"ns_addresses"`
	NSAddrChanges int    `json:"ns_address_changes"`
	NSMinTTL      uint32 `json:"ns_min_ttl"`
	// NSDisagreement is the share of rounds in which vantages that resolved
	// the name servers saw different addresses for them.
	NSDisagreement float64 `json:"ns_disagreement"`
	// NSNetworks and NSASNs cover the name servers' addresses from the
	// vantages and the parent zone's glue.
	NSNetworks int `json:"ns_networks"`
	NSASNs     int `json:"ns_asns"`

	// The delegation as the parent zone's servers give it.
	Delegations       int    `json:"delegations"`
	DelegationNSNames int    `json:"delegation_ns_names"`
	DelegationChanges int    `json:"delegation_changes"`
	GlueAddresses     int    `json:"glue_addresses"`
	DelegationMinTTL  uint32 `json:"delegation_min_ttl"`

	// Errors counts the domain's own queries that failed, by class.
	Errors map[string]int `json:"errors,omitempty"`
	// HolzScore is f = 1.32·addresses + 18.54·networks − 142.38 (Holz et
	// al., NDSS 2008); above zero suggests flux.
	HolzScore float64 `json:"holz_score"`

	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	ASNTable  bool      `json:"asn_table"`
	// Sample is a few of the addresses, for evidence; TopNetworks the
	// largest networks ("AS64500 RU" or a prefix) with their address counts.
	Sample      []string `json:"sample,omitempty"`
	TopNetworks []string `json:"top_networks,omitempty"`
}

// VantageFeatures are the per-vantage parts of Features.
type VantageFeatures struct {
	Vantage    string `json:"vantage"`
	Rounds     int    `json:"rounds"`
	Addresses  int    `json:"addresses"`
	SetChanges int    `json:"set_changes"`
}

// seen is what one probe said, reduced to sets.
type seen struct {
	addrs, nsNames, nsAddrs []string
}

// agentSets are the addresses and name servers behind a domain, kept apart
// from Features so that only listed verdicts carry them.
type agentSets struct {
	addrs, nsAddrs map[netip.Addr]bool
	nsNames        map[string]bool
	// latest are the addresses of each vantage's last answer: where the
	// domain is now.
	latest []netip.Addr
}

// extract computes the features of one domain's probes (in time order).
func extract(domain string, probes []obs.Probe, meta *ipmeta.DB, cdnSuffixes []string) (Features, agentSets) {
	f := Features{Probes: len(probes), ASNTable: meta.HasASN()}
	addrs := map[netip.Addr]bool{}
	nsNames := map[string]bool{}
	nsAddrs := map[netip.Addr]bool{}
	cnames := map[string]bool{}
	var ttls []uint32
	byVantage := map[string][]seen{}
	var vantages []string
	deleg := delegations{}
	newPerRound := []int{}
	var answerDiversity []float64
	answer := map[netip.Addr]bool{} // one A or AAAA answer's addresses
	for _, p := range probes {
		if f.FirstSeen.IsZero() || p.Start.Before(f.FirstSeen) {
			f.FirstSeen = p.Start
		}
		if p.Start.After(f.LastSeen) {
			f.LastSeen = p.Start
		}
		var s seen
		owned := ownedNS(domain, p)
		for _, o := range p.Observations {
			if o.Flags&obs.FlagDelegation != 0 {
				deleg.add(o, nsAddrs)
				continue
			}
			own := o.Name == domain
			if o.Err != obs.OK {
				if own {
					if f.Errors == nil {
						f.Errors = map[string]int{}
					}
					f.Errors[o.Err.String()]++
				}
				continue
			}
			clear(answer)
			for _, r := range o.Answer {
				switch {
				case own && r.Type == dns.TypeCNAME:
					cnames[r.Data] = true
				case own && o.QType == dns.TypeNS && r.Type == dns.TypeNS:
					nsNames[r.Data] = true
					s.nsNames = append(s.nsNames, r.Data)
				case r.Type == dns.TypeA || r.Type == dns.TypeAAAA:
					a, err := netip.ParseAddr(r.Data)
					if err != nil {
						continue
					}
					if own {
						addrs[a] = true
						answer[a] = true
						s.addrs = append(s.addrs, r.Data)
						ttls = append(ttls, r.TTL)
					} else if owned[o.Name] {
						nsAddrs[a] = true
						s.nsAddrs = append(s.nsAddrs, r.Data)
						if f.NSMinTTL == 0 || r.TTL < f.NSMinTTL {
							f.NSMinTTL = r.TTL
						}
					}
				}
			}
			// One answer's spread: A and AAAA apart, since /16s and /48s
			// are not one measure.
			if len(answer) >= 3 {
				answerDiversity = append(answerDiversity, diversity(answer))
			}
		}
		if len(byVantage[p.Vantage]) == 0 {
			vantages = append(vantages, p.Vantage)
		}
		byVantage[p.Vantage] = append(byVantage[p.Vantage], s)
	}
	f.Vantages = len(vantages)
	f.Addresses = len(addrs)
	f.CNAMEs = len(cnames)
	f.NSNames = len(nsNames)
	f.NSAddresses = len(nsAddrs) - deleg.glueOnly
	f.Prefixes24, f.Prefixes16, f.Prefixes48 = prefixes(addrs)
	f.Diversity = diversity(addrs)
	if len(answerDiversity) > 0 {
		slices.Sort(answerDiversity)
		f.AnswerDiversity = answerDiversity[len(answerDiversity)/2]
	}
	net := summarizeNetworks(addrs, meta)
	f.ASNs, f.Countries, f.Networks, f.TopNetworkShare, f.TopNetworks = net.asns, net.countries, net.count, net.topShare, net.top
	nsNet := summarizeNetworks(nsAddrs, meta)
	f.NSNetworks, f.NSASNs = nsNet.count, nsNet.asns
	if f.Addresses > 0 {
		f.ASNsPerAddress = float64(f.ASNs) / float64(f.Addresses)
	}
	if len(ttls) > 0 {
		slices.Sort(ttls)
		f.MinTTL, f.MedianTTL = ttls[0], ttls[len(ttls)/2]
	}
	f.Sample = sample(addrs, 6)
	f.CNAMETarget = chainEnd(domain, cnames, probes)
	f.CDN = cdnSuffix(f.CNAMETarget, cdnSuffixes)
	f.Delegations, f.DelegationNSNames, f.DelegationChanges = len(deleg.times), len(deleg.names), deleg.changes
	f.GlueAddresses, f.DelegationMinTTL = len(deleg.glue), deleg.minTTL

	// Over time, per vantage; across vantages within a round (the k-th
	// answered probe of every vantage); and growth of the address set.
	pairs := 0
	var rounds, nsRounds [][]string
	var latest []netip.Addr
	for _, v := range vantages {
		vf := VantageFeatures{Vantage: v}
		vAddrs := map[string]bool{}
		var prev *seen
		for i := range byVantage[v] {
			s := &byVantage[v][i]
			if len(s.nsAddrs) > 0 {
				for len(nsRounds) <= i {
					nsRounds = append(nsRounds, nil)
				}
				nsRounds[i] = append(nsRounds[i], key(s.nsAddrs))
			}
			if prev != nil && len(s.nsNames) > 0 && len(prev.nsNames) > 0 && key(s.nsNames) != key(prev.nsNames) {
				f.NSNameChanges++
			}
			if prev != nil && len(s.nsAddrs) > 0 && len(prev.nsAddrs) > 0 && key(s.nsAddrs) != key(prev.nsAddrs) {
				f.NSAddrChanges++
			}
			if len(s.addrs) == 0 {
				// A failed or empty answer is no evidence of rotation: compare
				// the next answer with the last real one.
				if len(s.nsNames) > 0 || len(s.nsAddrs) > 0 {
					prev = &seen{addrs: prevAddrs(prev), nsNames: s.nsNames, nsAddrs: s.nsAddrs}
				}
				continue
			}
			if prev != nil && len(prev.addrs) > 0 {
				pairs++
				if key(s.addrs) != key(prev.addrs) {
					f.SetChanges++
					vf.SetChanges++
				}
			}
			for _, a := range s.addrs {
				vAddrs[a] = true
			}
			if vf.Rounds == len(rounds) {
				rounds = append(rounds, nil)
				newPerRound = append(newPerRound, 0)
			}
			rounds[vf.Rounds] = append(rounds[vf.Rounds], key(s.addrs))
			vf.Rounds++
			prev = s
		}
		vf.Addresses = len(vAddrs)
		if prev != nil {
			for _, a := range prev.addrs {
				if addr, err := netip.ParseAddr(a); err == nil {
					latest = append(latest, addr)
				}
			}
		}
		f.Rounds = max(f.Rounds, vf.Rounds)
		f.PerVantage = append(f.PerVantage, vf)
	}
	if pairs > 0 {
		f.ChangeRate = float64(f.SetChanges) / float64(pairs)
	}
	f.NSDisagreement = disagreement(nsRounds)
	f.VantageDisagreement = disagreement(rounds)
	known := map[string]bool{}
	for k, r := range rounds {
		for _, set := range r {
			for _, a := range strings.Fields(set) {
				if !known[a] {
					known[a] = true
					newPerRound[k]++
				}
			}
		}
	}
	if len(newPerRound) > 1 {
		added := 0
		for _, n := range newPerRound[1:] {
			added += n
		}
		f.Growth = float64(added) / float64(len(newPerRound)-1)
	}
	f.HolzScore = 1.32*float64(f.Addresses) + 18.54*float64(f.Networks) - 142.38
	for n := range deleg.names {
		nsNames[n] = true
	}
	slices.SortFunc(latest, netip.Addr.Compare)
	return f, agentSets{addrs: addrs, nsAddrs: nsAddrs, nsNames: nsNames, latest: slices.Compact(latest)}
}

// disagreement is the share of rounds, among those with at least two
// answers, whose answers differ.
func disagreement(rounds [][]string) float64 {
	multi, differ := 0, 0
	for _, r := range rounds {
		if len(r) < 2 {
			continue
		}
		multi++
		if slices.ContainsFunc(r[1:], func(k string) bool { return k != r[0] }) {
			differ++
		}
	}
	if multi == 0 {
		return 0
	}
	return round2(float64(differ) / float64(multi))
}

func prevAddrs(p *seen) []string {
	if p == nil {
		return nil
	}
	return p.addrs
}

// ownedNS returns the name servers the probe's NS answer names for domain.
func ownedNS(domain string, p obs.Probe) map[string]bool {
	owned := map[string]bool{}
	for _, o := range p.Observations {
		if o.Name == domain && o.QType == dns.TypeNS && o.Flags&obs.FlagDelegation == 0 {
			for _, r := range o.Answer {
				if r.Type == dns.TypeNS && r.Name == domain {
					owned[r.Data] = true
				}
			}
		}
	}
	return owned
}

// delegations collects the parent zone's referrals. Every vantage's probe
// of a round carries the same referral, so they are told apart by time.
type delegations struct {
	times    map[time.Time]bool
	names    map[string]bool
	glue     map[netip.Addr]bool
	glueOnly int // glue addresses not also seen through the vantages
	last     string
	changes  int
	minTTL   uint32
}

func (d *delegations) add(o obs.Observation, nsAddrs map[netip.Addr]bool) {
	if o.Err != obs.OK || len(o.Answer) == 0 {
		return
	}
	if d.times == nil {
		d.times, d.names, d.glue = map[time.Time]bool{}, map[string]bool{}, map[netip.Addr]bool{}
	}
	if d.times[o.Time] {
		return
	}
	d.times[o.Time] = true
	var set []string
	for _, r := range o.Answer {
		if d.minTTL == 0 || r.TTL < d.minTTL {
			d.minTTL = r.TTL
		}
		switch r.Type {
		case dns.TypeNS:
			d.names[r.Data] = true
			set = append(set, r.Data)
		case dns.TypeA, dns.TypeAAAA:
			if a, err := netip.ParseAddr(r.Data); err == nil {
				d.glue[a] = true
				if !nsAddrs[a] {
					nsAddrs[a] = true
					d.glueOnly++
				}
				set = append(set, r.Data)
			}
		}
	}
	k := key(set)
	if d.last != "" && k != d.last {
		d.changes++
	}
	d.last = k
}

// key is a canonical form of a set of strings.
func key(xs []string) string {
	c := slices.Clone(xs)
	slices.Sort(c)
	return strings.Join(slices.Compact(c), " ")
}

func prefixKey(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 16).Masked()
	}
	return netip.PrefixFrom(a, 48).Masked()
}

func prefixes(addrs map[netip.Addr]bool) (p24, p16, p48 int) {
	s24, s16, s48 := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	for a := range addrs {
		if a.Is4() {
			s24[netip.PrefixFrom(a, 24).Masked()] = true
			s16[netip.PrefixFrom(a, 16).Masked()] = true
		} else {
			s48[netip.PrefixFrom(a, 48).Masked()] = true
		}
	}
	return len(s24), len(s16), len(s48)
}

// diversity is the entropy of the addresses' /16 (or /48) prefixes divided
// by log2 of their number: 0 when all share one prefix, 1 when each has
// its own.
func diversity(addrs map[netip.Addr]bool) float64 {
	if len(addrs) < 2 {
		return 0
	}
	count := map[netip.Prefix]int{}
	for a := range addrs {
		count[prefixKey(a)]++
	}
	n := float64(len(addrs))
	h := 0.0
	for _, c := range count {
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return round2(h / math.Log2(n))
}

type netSummary struct {
	asns, countries, count int
	topShare               float64
	top                    []string
}

// summarizeNetworks groups addresses by origin ASN, falling back to the /16 (v4) or
// /48 (v6) for addresses the tables do not know.
func summarizeNetworks(addrs map[netip.Addr]bool, meta *ipmeta.DB) netSummary {
	type network struct {
		asn     uint32
		country string
		prefix  netip.Prefix
	}
	count := map[network]int{}
	asns := map[uint32]bool{}
	countries := map[string]bool{}
	for a := range addrs {
		info, _ := meta.Lookup(a)
		if info.Country != "" {
			countries[info.Country] = true
		}
		if info.ASN != 0 {
			asns[info.ASN] = true
			count[network{asn: info.ASN, country: info.Country}]++
			continue
		}
		count[network{prefix: prefixKey(a)}]++
	}
	type ranked struct {
		label string
		n     int
	}
	var rs []ranked
	top := 0
	for nw, n := range count {
		top = max(top, n)
		label := nw.prefix.String()
		if nw.asn != 0 {
			label = "AS" + strconv.Itoa(int(nw.asn))
			if nw.country != "" {
				label += " " + nw.country
			}
		}
		rs = append(rs, ranked{label, n})
	}
	slices.SortFunc(rs, func(a, b ranked) int { return cmp.Or(b.n-a.n, strings.Compare(a.label, b.label)) })
	s := netSummary{asns: len(asns), countries: len(countries), count: len(count)}
	if len(addrs) > 0 {
		s.topShare = round2(float64(top) / float64(len(addrs)))
	}
	for _, r := range rs[:min(len(rs), 3)] {
		s.top = append(s.top, r.label+" ×"+strconv.Itoa(r.n))
	}
	return s
}

// sample returns up to n addresses, sorted, for evidence.
func sample(addrs map[netip.Addr]bool, n int) []string {
	all := make([]netip.Addr, 0, len(addrs))
	for a := range addrs {
		all = append(all, a)
	}
	slices.SortFunc(all, netip.Addr.Compare)
	var out []string
	for _, a := range all[:min(n, len(all))] {
		out = append(out, a.String())
	}
	return out
}

// chainEnd returns the last name of the domain's CNAME chain, "" without one.
func chainEnd(domain string, cnames map[string]bool, probes []obs.Probe) string {
	if len(cnames) == 0 {
		return ""
	}
	next := map[string]string{}
	for _, p := range probes {
		for _, o := range p.Observations {
			if o.Name != domain {
				continue
			}
			for _, r := range o.Answer {
				if r.Type == dns.TypeCNAME {
					next[r.Name] = r.Data
				}
			}
		}
	}
	end := domain
	for range len(next) {
		n, ok := next[end]
		if !ok {
			break
		}
		end = n
	}
	if end == domain {
		return ""
	}
	return end
}

// cdnSuffix returns the suffix in suffixes that name ends in, or "".
func cdnSuffix(name string, suffixes []string) string {
	if name == "" {
		return ""
	}
	for _, s := range suffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return s
		}
	}
	return ""
}
