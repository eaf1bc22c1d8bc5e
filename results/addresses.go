package results

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
)

// The address formats list the addresses flux domains resolved to (their
// agents) and the addresses of double-flux domains' name servers, of the
// verdicts at least Options.MinConfidence sure, each address once, sorted
// (IPv4 before IPv6):
//
//	ips       one address a line
//	nftables  an nft script that replaces the sets flux4 and flux6 of table
//	          inet fluxwatch in one transaction (nft -f FILE)
//	ipset     an ipset restore file that fills new sets and swaps them for
//	          fluxwatch4 and fluxwatch6 (ipset restore -file FILE)
//	suricata  a directory: Suricata's IP reputation categories.txt and
//	          reputation.list
//
// Every address goes through net/netip and is written in its canonical
// form: a string that is not an address fails the export (ErrBadAddress).
// Addresses that are not public unicast (loopback, private, link-local,
// shared, multicast, reserved) are left out: a flux domain that points at
// 127.0.0.1 or 10.0.0.1 must not make a firewall block its own network.

// nonPublic are special-purpose blocks that netip's IsGlobalUnicast and
// IsPrivate do not cover and no flux agent can be reached at.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // this network
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved
	netip.MustParsePrefix("100::/64"),      // discard-only
}

// parseAgent parses an address a verdict carries. A string that is not an
// IP address, or has a zone, is an error; an IPv4-mapped IPv6 address is
// its IPv4 address. public is false for an address no list should hold.
func parseAgent(s string) (a netip.Addr, public bool, err error) {
	a, err = netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false, fmt.Errorf("%w: %q is not an IP address", ErrBadAddress, s)
	}
	a = a.Unmap()
	public = a.IsGlobalUnicast() && !a.IsPrivate() &&
		!slices.ContainsFunc(nonPublic, func(p netip.Prefix) bool { return p.Contains(a) })
	return a, public, nil
}

// checkAddresses checks every address a verdict exports.
func checkAddresses(v classify.Verdict) error {
	for _, list := range [][]string{v.Agents, nsAgents(v)} {
		for _, s := range list {
			if _, _, err := parseAgent(s); err != nil {
				return fmt.Errorf("%s: %w", v.Domain, err)
			}
		}
	}
	return nil
}

// nsAgents returns the name server addresses a verdict exports: those of
// double-flux domains only.
func nsAgents(v classify.Verdict) []string {
	if v.Verdict == classify.DoubleFlux {
		return v.NSAgents
	}
	return nil
}

// addrList collects the public addresses of an export, agents apart from
// name server addresses, each with the highest confidence of the verdicts
// that carried it.
type addrList struct {
	agents, ns map[netip.Addr]float64
}

func newAddrList() *addrList {
	return &addrList{agents: map[netip.Addr]float64{}, ns: map[netip.Addr]float64{}}
}

// add takes the addresses of a verdict checkAddresses passed.
func (l *addrList) add(v classify.Verdict) {
	put := func(m map[netip.Addr]float64, list []string) {
		for _, s := range list {
			if a, public, err := parseAgent(s); err == nil && public {
				if c, ok := m[a]; !ok || v.Confidence > c {
					m[a] = v.Confidence
				}
			}
		}
	}
	put(l.agents, v.Agents)
	put(l.ns, nsAgents(v))
}

// all returns every address once, IPv4 then IPv6, each in order.
func (l *addrList) all() []netip.Addr {
	set := maps.Clone(l.agents)
	maps.Copy(set, l.ns)
	return slices.SortedFunc(maps.Keys(set), netip.Addr.Compare)
}

// split divides sorted addresses into IPv4 and IPv6.
func split(addrs []netip.Addr) (v4, v6 []netip.Addr) {
	i, _ := slices.BinarySearchFunc(addrs, true, func(a netip.Addr, _ bool) int {
		if a.Is4() {
			return -1
		}
		return 1
	})
	return addrs[:i], addrs[i:]
}

// newAddressSink returns the sink of a one-file address format: it
// collects the addresses and writes them all at the end.
func newAddressSink(w *bufio.Writer, format string, opts Options) (sink, error) {
	var write func(io.Writer, []netip.Addr) error
	switch format {
	case "ips":
		write = writeIPs
	case "nftables":
		table, s4, s6 := cmp.Or(opts.Table, "fluxwatch"), cmp.Or(opts.Set4, "flux4"), cmp.Or(opts.Set6, "flux6")
		if err := checkSetNames(nftName, "nftables", table, s4, s6); err != nil {
			return sink{}, err
		}
		write = func(w io.Writer, addrs []netip.Addr) error {
			return writeNFT(w, addrs, table, s4, s6, opts)
		}
	case "ipset":
		s4, s6 := cmp.Or(opts.Set4, "fluxwatch4"), cmp.Or(opts.Set6, "fluxwatch6")
		if err := checkSetNames(ipsetName, "ipset", s4, s6); err != nil {
			return sink{}, err
		}
		write = func(w io.Writer, addrs []netip.Addr) error {
			return writeIPSet(w, addrs, s4, s6, opts)
		}
	default:
		return sink{}, errUnknownFormat(format)
	}
	l := newAddrList()
	return sink{
		add: func(v classify.Verdict) error { l.add(v); return nil },
		end: func() error {
			addrs := l.all()
			opts.wroteAddresses(len(addrs))
			return write(w, addrs)
		},
	}, nil
}

// Names of tables and sets: nftables identifiers are a letter and then
// letters, digits and underscores; ipset names may hold hyphens and are
// 31 octets at most, of which "-new" is kept for the set being filled.
var (
	nftName   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)
	ipsetName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,26}$`)
)

func checkSetNames(rule *regexp.Regexp, format string, names ...string) error {
	for _, n := range names {
		if !rule.MatchString(n) {
			return fmt.Errorf("%s: %w: table or set name %q (want %s)", format, ErrBadName, n, rule)
		}
	}
	if names[len(names)-1] == names[len(names)-2] {
		return fmt.Errorf("%s: %w: the IPv4 and IPv6 sets are both named %q", format, ErrBadName, names[len(names)-1])
	}
	return nil
}

func writeIPs(w io.Writer, addrs []netip.Addr) error {
	for _, a := range addrs {
		if _, err := io.WriteString(w, a.String()+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// addrHeader is the comment at the top of the nftables and ipset files.
func addrHeader(w io.Writer, v4, v6 []netip.Addr, opts Options, load string) error {
	_, err := fmt.Fprintf(w, "# fluxwatch: addresses of fast-flux domains (confidence >= %.2f): %d IPv4, %d IPv6\n# load with: %s\n",
		opts.minConfidence(), len(v4), len(v6), load)
	return err
}

// validFor returns how long an element stays in its set.
func validFor(opts Options) time.Duration {
	if opts.ValidFor > 0 {
		return opts.ValidFor
	}
	return DefaultValidFor
}

// writeNFT writes an nft script that creates the table and its two sets if
// they are missing (interval sets whose elements time out), empties them
// and adds every address with a timeout of ValidFor, all in the one
// transaction nft -f makes of a file: a firewall never sees the sets half
// filled. Rules of your own match them: ip daddr @flux4 drop.
func writeNFT(w io.Writer, addrs []netip.Addr, table, s4, s6 string, opts Options) error {
	v4, v6 := split(addrs)
	if err := addrHeader(w, v4, v6, opts, "nft -f FILE"); err != nil {
		return err
	}
	fmt.Fprintf(w, "table inet %s {\n", table)
	fmt.Fprintf(w, "\tset %s {\n\t\ttype ipv4_addr\n\t\tflags interval, timeout\n\t}\n", s4)
	fmt.Fprintf(w, "\tset %s {\n\t\ttype ipv6_addr\n\t\tflags interval, timeout\n\t}\n}\n", s6)
	fmt.Fprintf(w, "flush set inet %s %s\nflush set inet %s %s\n", table, s4, table, s6)
	timeout := nftDuration(validFor(opts))
	for _, set := range []struct {
		name  string
		addrs []netip.Addr
	}{{s4, v4}, {s6, v6}} {
		if len(set.addrs) == 0 {
			continue // nft refuses an empty element list
		}
		fmt.Fprintf(w, "add element inet %s %s {\n", table, set.name)
		for i, a := range set.addrs {
			sep := ","
			if i == len(set.addrs)-1 {
				sep = ""
			}
			if _, err := fmt.Fprintf(w, "\t%s timeout %s%s\n", a, timeout, sep); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "}\n")
	}
	return nil
}

// nftDuration writes a duration as nft reads it: 7d, 1d1h30m, 45s; whole
// seconds, at least one.
func nftDuration(d time.Duration) string {
	s := max(int64(d/time.Second), 1)
	var b strings.Builder
	for _, u := range []struct {
		secs int64
		unit string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if s >= u.secs {
			fmt.Fprintf(&b, "%d%s", s/u.secs, u.unit)
			s %= u.secs
		}
	}
	return b.String()
}

// ipsetMaxTimeout is the longest timeout ipset takes, in seconds.
const ipsetMaxTimeout = 2147483

// ipsetMaxElem is the smallest maxelem of the sets.
const ipsetMaxElem = 1 << 20

// writeIPSet writes an ipset restore file that, for each family, fills a
// new set NAME-new and swaps it for NAME, creating NAME first if it is
// missing: iptables rules that match NAME see the old set or the new one,
// never a half-filled one. The sets are hash:ip with timeout support;
// each address is added with a timeout of ValidFor (at most 2147483
// seconds). A set is created with parameters that do not depend on the
// export (maxelem 2^20, or the next power of two above that for more
// addresses), because ipset's create -exist accepts an existing set only
// if it is the same: a set left behind by a failed restore, or NAME
// itself, is then created again without an error.
func writeIPSet(w io.Writer, addrs []netip.Addr, s4, s6 string, opts Options) error {
	v4, v6 := split(addrs)
	if err := addrHeader(w, v4, v6, opts, "ipset restore -file FILE"); err != nil {
		return err
	}
	timeout := min(max(int64(validFor(opts)/time.Second), 1), ipsetMaxTimeout)
	for _, set := range []struct {
		name, family string
		addrs        []netip.Addr
	}{{s4, "inet", v4}, {s6, "inet6", v6}} {
		maxElem := ipsetMaxElem
		for maxElem < len(set.addrs) {
			maxElem *= 2
		}
		spec := fmt.Sprintf("hash:ip family %s timeout 0 maxelem %d -exist", set.family, maxElem)
		fresh := set.name + "-new"
		fmt.Fprintf(w, "create %s %s\ncreate %s %s\nflush %s\n", set.name, spec, fresh, spec, fresh)
		for _, a := range set.addrs {
			if _, err := fmt.Fprintf(w, "add %s %s timeout %d -exist\n", fresh, a, timeout); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "swap %s %s\ndestroy %s\n", fresh, set.name, fresh)
	}
	return nil
}

// Suricata IP reputation: the categories file names the categories, the
// reputation file scores each address in them.
const (
	suricataCategories = "categories.txt"
	suricataReputation = "reputation.list"
	suricataAgent      = 1 // category of the addresses flux domains resolved to
	suricataNS         = 2 // category of the addresses of double-flux name servers
)

// suricataScore maps a confidence of 0 to 1 onto Suricata's reputation
// score of 1 to 127.
func suricataScore(c float64) int {
	switch {
	case !(c > 0): // and NaN
		return 1
	case c >= 1:
		return 127
	}
	return max(int(math.Round(c*127)), 1)
}

// newSuricataSink writes Suricata's IP reputation files into dir:
// categories.txt (reputation-categories-file) and reputation.list (one of
// reputation-files), with one line <address>,<category>,<score> per
// address and category it is in.
func newSuricataSink(dir string, opts Options) (sink, func(), error) {
	l := newAddrList()
	return sink{
		add: func(v classify.Verdict) error { l.add(v); return nil },
		end: func() error {
			addrs := l.all()
			opts.wroteAddresses(len(addrs))
			if err := writeFile(dir, suricataCategories, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "# fluxwatch: Suricata IP reputation categories (reputation-categories-file)\n"+
					"%d,FastFluxAgent,address a fast-flux domain resolved to\n"+
					"%d,FastFluxNS,address of a name server of a double-flux domain\n", suricataAgent, suricataNS)
				return err
			}); err != nil {
				return err
			}
			return writeFile(dir, suricataReputation, func(w io.Writer) error {
				fmt.Fprintf(w, "# fluxwatch: addresses of fast-flux domains (confidence >= %.2f): address,category,score 1-127\n", opts.minConfidence())
				for _, a := range addrs {
					for _, cat := range []struct {
						id    int
						score map[netip.Addr]float64
					}{{suricataAgent, l.agents}, {suricataNS, l.ns}} {
						if c, ok := cat.score[a]; ok {
							if _, err := fmt.Fprintf(w, "%s,%d,%d\n", a, cat.id, suricataScore(c)); err != nil {
								return err
							}
						}
					}
				}
				return nil
			})
		},
	}, func() {}, nil
}
