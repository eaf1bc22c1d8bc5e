package classify

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
)

// Features summarise a domain's history over the classification window.
type Features struct {
	Probes   int `json:"probes"`
	Vantages int `json:"vantages"`
	// Rounds is the largest number of answered probes through one vantage.
	Rounds int `json:"rounds"`

	Addresses  int `json:"addresses"`
	Prefixes24 int `json:"prefixes_24"`
	Prefixes16 int `json:"prefixes_16"`
	Prefixes48 int `json:"prefixes_48"`
	// ASNs is the number of distinct origin ASNs (0 without an ASN table).
	ASNs int `json:"asns"`
	// Networks counts ASNs, with each address the table does not know
	// counted by its /16 (v4) or /48 (v6); without a table, prefixes only.
	Networks int `json:"networks"`
	// TopNetworkShare is the share of addresses in the most common network.
	TopNetworkShare float64 `json:"top_network_share"`

	MinTTL    uint32 `json:"min_ttl"`
	MedianTTL uint32 `json:"median_ttl"`
	// SetChanges counts consecutive probes through the same vantage whose
	// address sets differ; ChangeRate divides by the number of such pairs.
	SetChanges int     `json:"set_changes"`
	ChangeRate float64 `json:"change_rate"`
	// VantageDisagreement is the share of rounds in which vantages that
	// answered saw different address sets.
	VantageDisagreement float64 `json:"vantage_disagreement"`
	CNAMEs              int     `json:"cnames"`

	NSNames       int    `json:"ns_names"`
	NSNameChanges int    `json:"ns_name_changes"`
	NSAddresses   int    `json:"ns_addresses"`
	NSNetworks    int    `json:"ns_networks"`
	NSAddrChanges int    `json:"ns_address_changes"`
	NSMinTTL      uint32 `json:"ns_min_ttl"`

	// Errors counts the domain's own queries that failed, by class.
	Errors map[string]int `json:"errors,omitempty"`
	// HolzScore is f = 1.32·addresses + 18.54·networks − 142.38 (Holz et
	// al., NDSS 2008); above zero suggests flux.
	HolzScore float64 `json:"holz_score"`

	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	ASNTable  bool      `json:"asn_table"`
}

// extract computes the features of one domain's probes (in time order).
func extract(domain string, probes []obs.Probe, asn *ipmeta.DB) Features {
	f := Features{Probes: len(probes), ASNTable: asn.HasASN()}
	addrs := map[netip.Addr]bool{}
	nsNames := map[string]bool{}
	nsAddrs := map[netip.Addr]bool{}
	cnames := map[string]bool{}
	var ttls []uint32
	type seen struct{ addrs, nsNames, nsAddrs []string }
	byVantage := map[string][]seen{}
	var vantages []string
	for _, p := range probes {
		if f.FirstSeen.IsZero() || p.Start.Before(f.FirstSeen) {
			f.FirstSeen = p.Start
		}
		if p.Start.After(f.LastSeen) {
			f.LastSeen = p.Start
		}
		var s seen
		owned := map[string]bool{}
		for _, o := range p.Observations {
			if o.Name == domain && o.QType == dns.TypeNS {
				for _, r := range o.Answer {
					if r.Type == dns.TypeNS && r.Name == domain {
						owned[r.Data] = true
					}
				}
			}
		}
		for _, o := range p.Observations {
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
	f.NSAddresses = len(nsAddrs)
	f.Prefixes24, f.Prefixes16, f.Prefixes48 = prefixes(addrs)
	f.ASNs, f.Networks, f.TopNetworkShare = networks(addrs, asn)
	_, f.NSNetworks, _ = networks(nsAddrs, asn)
	if len(ttls) > 0 {
		slices.Sort(ttls)
		f.MinTTL, f.MedianTTL = ttls[0], ttls[len(ttls)/2]
	}

	// Changes over time, per vantage, and disagreement across vantages
	// within a round (the k-th answered probe of every vantage).
	pairs := 0
	var rounds [][]string
	for _, v := range vantages {
		var prev *seen
		k := 0
		for i := range byVantage[v] {
			s := &byVantage[v][i]
			if len(s.nsNames) > 0 && prev != nil && len(prev.nsNames) > 0 && key(s.nsNames) != key(prev.nsNames) {
				f.NSNameChanges++
			}
			if len(s.nsAddrs) > 0 && prev != nil && len(prev.nsAddrs) > 0 && key(s.nsAddrs) != key(prev.nsAddrs) {
				f.NSAddrChanges++
			}
			if len(s.addrs) == 0 {
				if len(s.nsNames) > 0 || len(s.nsAddrs) > 0 {
					prev = s
				}
				continue
			}
			if prev != nil && len(prev.addrs) > 0 {
				pairs++
				if key(s.addrs) != key(prev.addrs) {
					f.SetChanges++
				}
			}
			if k == len(rounds) {
				rounds = append(rounds, nil)
			}
			rounds[k] = append(rounds[k], key(s.addrs))
			k++
			prev = s
		}
		f.Rounds = max(f.Rounds, k)
	}
	if pairs > 0 {
		f.ChangeRate = float64(f.SetChanges) / float64(pairs)
	}
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
	if multi > 0 {
		f.VantageDisagreement = float64(differ) / float64(multi)
	}
	f.HolzScore = 1.32*float64(f.Addresses) + 18.54*float64(f.Networks) - 142.38
	return f
}

// key is a canonical form of a set of strings.
func key(xs []string) string {
	c := slices.Clone(xs)
	slices.Sort(c)
	return strings.Join(slices.Compact(c), " ")
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

// networks groups addresses by origin ASN, falling back to the /16 (v4) or
// /48 (v6) for addresses the table does not know.
func networks(addrs map[netip.Addr]bool, asn *ipmeta.DB) (asns, nets int, topShare float64) {
	type network struct {
		asn    uint32
		prefix netip.Prefix
	}
	count := map[network]int{}
	asnSet := map[uint32]bool{}
	for a := range addrs {
		if info, ok := asn.Lookup(a); ok {
			asnSet[info.ASN] = true
			count[network{asn: info.ASN}]++
			continue
		}
		bits := 16
		if !a.Is4() {
			bits = 48
		}
		count[network{prefix: netip.PrefixFrom(a, bits).Masked()}]++
	}
	top := 0
	for _, n := range count {
		top = max(top, n)
	}
	if len(addrs) > 0 {
		topShare = float64(top) / float64(len(addrs))
	}
	return len(asnSet), len(count), topShare
}
