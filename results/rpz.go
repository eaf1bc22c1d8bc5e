package results

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fluxwatch/fluxwatch/classify"
)

// The response policy zone. Its owner names are relative to the origin
// (BIND, Unbound, PowerDNS Recursor and Knot Resolver read the same
// syntax); every record is CNAME ., NXDOMAIN:
//
//	name CNAME .                      the listed name (a qname trigger)
//	*.name CNAME .                    every name below it
//	ns.name.rpz-nsdname CNAME .       names whose name server is ns.name
//	32.4.3.2.1.rpz-ip CNAME .         answers holding 1.2.3.4
//	128.1.zz.db8.2001.rpz-nsip CNAME . names served from 2001:db8::1
//
// The last three block more than the listed names, so they are written
// only for verdicts at least Options.MinConfidence sure: rpz-nsdname for
// the name servers of double-flux domains, and, with
// Options.RPZIPTriggers, rpz-ip for the agents of flux domains and
// rpz-nsip for the name servers' addresses of double-flux domains.

// rpzIPOwnerMax is the longest rpz-ip or rpz-nsip trigger below the
// origin: "128." and eight 4-digit words, then ".rpz-nsip".
const rpzIPOwnerMax = len("128.ffff.ffff.ffff.ffff.ffff.ffff.ffff.ffff.rpz-nsip")

// rpzZone returns the RPZ origin, without its final dot.
func rpzZone(opts Options) string {
	return cmp.Or(strings.TrimSuffix(opts.Zone, "."), "fluxwatch.rpz")
}

// checkRPZName checks that a listed name can be a qname trigger under
// zone: short enough with "*." and the origin added, and not read as
// another kind of trigger (a name whose last label begins with "rpz-",
// such as 32.1.0.0.127.rpz-ip, would become an address trigger).
func checkRPZName(name, zone string) error {
	// A name too long below the origin would make the whole zone fail to load.
	if len("*."+name+"."+zone) > 253 {
		return fmt.Errorf("%w: %q: too long under RPZ zone %s", ErrBadName, name, zone)
	}
	if strings.HasPrefix(name[strings.LastIndexByte(name, '.')+1:], "rpz-") {
		return fmt.Errorf("%w: %q: its last label would make it an RPZ trigger of another kind", ErrBadName, name)
	}
	return nil
}

// rpzWriter streams the zone: the head, two qname triggers per listed
// domain as it comes, and at the end the name server and address triggers,
// each once, sorted.
type rpzWriter struct {
	w                *bufio.Writer
	opts             Options
	zone             string
	nsNames          map[string]bool
	agents, nsAgents map[netip.Addr]bool
}

func newRPZWriter(w *bufio.Writer, opts Options) (*rpzWriter, error) {
	zone, err := rpzHeader(w, opts)
	if err != nil {
		return nil, err
	}
	return &rpzWriter{w: w, opts: opts, zone: zone,
		nsNames: map[string]bool{}, agents: map[netip.Addr]bool{}, nsAgents: map[netip.Addr]bool{}}, nil
}

// rpzHeader writes the zone's origin, SOA and NS, and returns the origin.
func rpzHeader(w io.Writer, opts Options) (string, error) {
	zone := rpzZone(opts)
	if err := checkName(zone); err != nil {
		return "", fmt.Errorf("RPZ zone: %w", err)
	}
	if opts.RPZIPTriggers && len(zone)+1+rpzIPOwnerMax > 253 {
		return "", fmt.Errorf("RPZ zone: %w: %q: too long for rpz-ip triggers below it", ErrBadName, zone)
	}
	ttl := opts.TTL
	if ttl == 0 {
		ttl = 300
	}
	fmt.Fprintf(w, "; fluxwatch response policy zone, serial %d\n", opts.Serial)
	fmt.Fprintf(w, "$ORIGIN %s.\n$TTL %d\n", zone, ttl)
	fmt.Fprintf(w, "@ IN SOA localhost. hostmaster.localhost. ( %d 3600 600 604800 %d )\n", opts.Serial, ttl)
	_, err := fmt.Fprintf(w, "@ IN NS localhost.\n")
	return zone, err
}

// add writes the qname triggers of a listed domain and keeps its name
// servers and addresses for the end.
func (r *rpzWriter) add(v classify.Verdict) error {
	if r.opts.confident(v) {
		if v.Verdict == classify.DoubleFlux {
			for _, ns := range v.NameServers {
				if name, ok := r.nsdname(ns); ok {
					r.nsNames[name] = true
				}
			}
		}
		if r.opts.RPZIPTriggers {
			addPublic(r.agents, v.Agents)
			if v.Verdict == classify.DoubleFlux {
				addPublic(r.nsAgents, v.NSAgents)
			}
		}
	}
	_, err := fmt.Fprintf(r.w, "%s CNAME .\n*.%s CNAME . ; %s %.2f\n", v.Domain, v.Domain, v.Verdict, v.Score)
	return err
}

// nsdname normalises a name server's name for an rpz-nsdname trigger. The
// name comes from the flux domain's own DNS answers, so one that is not a
// safe name (or too long under the zone) is left out rather than failing
// the whole zone: a flux operator must not be able to stop the list.
func (r *rpzWriter) nsdname(ns string) (string, bool) {
	name := strings.TrimSuffix(strings.ToLower(ns), ".")
	if checkName(name) != nil || len(name+".rpz-nsdname."+r.zone) > 253 {
		return "", false
	}
	return name, true
}

func (r *rpzWriter) end() error {
	if len(r.nsNames) > 0 {
		fmt.Fprintf(r.w, "; name servers of double-flux domains\n")
		for _, name := range slices.Sorted(maps.Keys(r.nsNames)) {
			fmt.Fprintf(r.w, "%s.rpz-nsdname CNAME .\n", name)
		}
	}
	for _, t := range []struct {
		set     map[netip.Addr]bool
		trigger string
		what    string
	}{{r.agents, "rpz-ip", "addresses flux domains resolved to"}, {r.nsAgents, "rpz-nsip", "addresses of double-flux name servers"}} {
		if len(t.set) == 0 {
			continue
		}
		fmt.Fprintf(r.w, "; %s\n", t.what)
		for _, a := range slices.SortedFunc(maps.Keys(t.set), netip.Addr.Compare) {
			fmt.Fprintf(r.w, "%s.%s CNAME .\n", rpzIPName(a), t.trigger)
		}
	}
	return nil
}

// addPublic adds the public addresses of a verdict (checked already by
// checkAddresses) to set.
func addPublic(set map[netip.Addr]bool, addrs []string) {
	for _, s := range addrs {
		if a, public, err := parseAgent(s); err == nil && public {
			set[a] = true
		}
	}
}

// rpzIPName returns the labels that name one address (a /32 or /128) in an
// rpz-ip or rpz-nsip trigger: the prefix length, then the address in
// reverse, octets of an IPv4 address or 16-bit words of an IPv6 address
// in hex, its first longest run of two or more zero words written "zz".
// That is the canonical form BIND checks (RFC 5952's choice of the run to
// compress, reversed).
func rpzIPName(a netip.Addr) string {
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("32.%d.%d.%d.%d", b[3], b[2], b[1], b[0])
	}
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	zz, zzLen := -1, 1 // a run must be longer than one word
	for i := 0; i < len(w); {
		j := i
		for j < len(w) && w[j] == 0 {
			j++
		}
		if j-i > zzLen {
			zz, zzLen = i, j-i
		}
		i = max(j, i+1)
	}
	labels := []string{"128"}
	for i := len(w) - 1; i >= 0; i-- {
		switch {
		case zz >= 0 && i == zz:
			labels = append(labels, "zz")
		case zz >= 0 && i > zz && i < zz+zzLen:
		default:
			labels = append(labels, strconv.FormatUint(uint64(w[i]), 16))
		}
	}
	return strings.Join(labels, ".")
}
