// Package results turns verdicts into the files people load: plain domain
// lists, hosts files, RPZ zones, dnsmasq and Unbound configuration for
// resolvers, adblock filter lists, STIX 2.1 bundles and MISP feeds of
// indicators for threat intelligence platforms, JSON Lines and CSV for
// analysis, and lists of the flux agents' addresses for firewalls and
// intrusion detection (plain, nftables, ipset, Suricata IP reputation).
// Every file is written whole or not at all (WriteFileAtomic), and every
// directory too (WriteDirAtomic), so a resolver or firewall watching it
// never loads half a list.
package results

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
)

// Formats lists the domain formats: each holds the listed domains (jsonl
// and csv optionally every verdict). misp is a directory (WriteDir).
var Formats = []string{"domains", "hosts", "rpz", "dnsmasq", "unbound", "adblock", "stix", "misp", "jsonl", "csv"}

// AddressFormats lists the address formats: each holds the addresses the
// listed domains resolved to (Verdict.Agents) and, for double flux, their
// name servers' addresses (Verdict.NSAgents), of the verdicts at least
// Options.MinConfidence sure. suricata is a directory (WriteDir).
var AddressFormats = []string{"ips", "nftables", "ipset", "suricata"}

// IsAddressFormat reports whether format lists addresses, not domains.
func IsAddressFormat(format string) bool { return slices.Contains(AddressFormats, format) }

// IsDir reports whether format is written into a directory of files
// (WriteDir) rather than into one file (Write, WriteEach).
func IsDir(format string) bool { return format == "misp" || format == "suricata" }

// DefaultMinConfidence is Options.MinConfidence when it is zero.
const DefaultMinConfidence = 0.8

// Options shape an export.
type Options struct {
	// All includes every verdict in jsonl and csv output, not only the
	// listed (flux) domains. Block lists always hold listed domains only.
	All bool
	// Zone is the RPZ origin (default "fluxwatch.rpz").
	Zone string
	// Serial is the RPZ SOA serial; callers take it from storage so it only grows.
	Serial uint32
	// TTL of the RPZ records in seconds (default 300).
	TTL uint32
	// Now is when the export is made: the adblock list's "! Updated:" line
	// (left out when zero) and part of the STIX bundle's id. Exports are
	// deterministic: nothing reads the clock.
	Now time.Time
	// ValidFor is how long a STIX indicator stays valid after its verdict
	// was made, and how long an nftables or ipset element stays in its set
	// after it was loaded unless a newer list is loaded (default 7 days;
	// ipset caps it at 2147483 seconds, about 24.8 days).
	ValidFor time.Duration
	// MinConfidence is the confidence (0 to 1) a listed verdict needs for
	// its addresses to be exported (the address formats, and the RPZ's
	// rpz-ip and rpz-nsip triggers) and for its name servers to become
	// rpz-nsdname triggers: these block more than the listed name itself.
	// Zero means DefaultMinConfidence (0.8); a negative value takes every
	// listed verdict.
	MinConfidence float64
	// RPZIPTriggers adds to the RPZ an rpz-ip trigger for every agent
	// address and an rpz-nsip trigger for every name server address of a
	// double-flux domain (of the verdicts at least MinConfidence sure).
	RPZIPTriggers bool
	// Table is the nftables table (family inet) that holds the sets
	// (default "fluxwatch").
	Table string
	// Set4 and Set6 name the sets of IPv4 and IPv6 addresses: nftables
	// defaults to flux4 and flux6 (inside Table), ipset to fluxwatch4 and
	// fluxwatch6 (ipset names are global).
	Set4, Set6 string
	// Org names the organisation that creates the MISP feed's event
	// (default "fluxwatch"); the event's and the organisation's UUIDs are
	// derived from it, so each export updates the same event. The STIX
	// infrastructure objects of flux networks take their ids from it too.
	Org string
	// Written, if set, is filled in with what the export wrote.
	Written *Written
	// Network, if set, keeps only the verdicts of that flux network
	// (Verdict.Network, the id networks.List gives): one network's block
	// list, or its agents for a firewall.
	Network string
}

// Written counts what an export wrote.
type Written struct {
	// Verdicts is how many verdicts it wrote: the domains of a domain
	// format, the domains whose addresses an address format holds.
	Verdicts int
	// Addresses is how many distinct addresses an address format wrote.
	Addresses int
}

// wroteAddresses records how many addresses an address format wrote.
func (o Options) wroteAddresses(n int) {
	if o.Written != nil {
		o.Written.Addresses = n
	}
}

// minConfidence returns the threshold MinConfidence stands for.
func (o Options) minConfidence() float64 {
	if o.MinConfidence == 0 {
		return DefaultMinConfidence
	}
	return o.MinConfidence
}

// confident reports whether v is listed, by a flux verdict sure enough for
// the exports that block more than its name (see Options.MinConfidence).
func (o Options) confident(v classify.Verdict) bool {
	return v.Listed() && classify.IsFlux(v.Verdict) && v.Confidence >= o.minConfidence()
}

// ErrBadName is returned for a name that cannot be written safely.
var ErrBadName = errors.New("name not safe to export")

// ErrBadAddress is returned for an address that is not a valid IP address:
// nothing malformed may reach a firewall.
var ErrBadAddress = errors.New("address not safe to export")

// Write writes verdicts in format to w, in name order. A name or address
// that cannot be written safely fails the whole write before anything is
// written. Directory formats are written with WriteDir.
func Write(w io.Writer, format string, verdicts []classify.Verdict, opts Options) error {
	var vs []classify.Verdict
	for _, v := range verdicts {
		if !include(format, v, opts) {
			continue
		}
		if err := checkVerdict(format, v, opts); err != nil {
			return err
		}
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b classify.Verdict) int { return strings.Compare(a.Domain, b.Domain) })
	return WriteEach(w, format, func(yield func(classify.Verdict) error) error {
		for _, v := range vs {
			if err := yield(v); err != nil {
				return err
			}
		}
		return nil
	}, opts)
}

// include says whether a verdict belongs in an export of format: listed
// (Verdict.Listed, the listed index) for every format but jsonl and csv
// with All; and of Options.Network when it is set.
func include(format string, v classify.Verdict, opts Options) bool {
	switch {
	case opts.Network != "" && v.Network != opts.Network:
		return false
	case IsAddressFormat(format):
		return opts.confident(v)
	case format == "jsonl" || format == "csv":
		return v.Listed() || opts.All
	}
	return v.Listed()
}

// checkVerdict checks that everything of v an export of format writes is
// safe: its name, and the addresses it exports.
func checkVerdict(format string, v classify.Verdict, opts Options) error {
	if err := checkName(v.Domain); err != nil {
		return err
	}
	if format == "rpz" {
		if err := checkRPZName(v.Domain, rpzZone(opts)); err != nil {
			return err
		}
	}
	if IsAddressFormat(format) || format == "rpz" && opts.RPZIPTriggers && opts.confident(v) {
		return checkAddresses(v)
	}
	return nil
}

// IsBlockList reports whether format lists only the listed domains and
// needs nothing of a verdict but what the short listed records keep (so
// exports can read them). The address formats read full verdicts.
func IsBlockList(format string) bool {
	switch format {
	case "domains", "hosts", "rpz", "dnsmasq", "unbound", "adblock", "stix", "misp":
		return true
	}
	// The listed records keep the agents of the verdict that listed the
	// domain, also while a later verdict finds no flux.
	return IsAddressFormat(format)
}

// errUnknownFormat names the formats there are.
func errUnknownFormat(format string) error {
	return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(slices.Concat(Formats, AddressFormats), ", "))
}

// sink takes the verdicts of one export: add each verdict the format
// includes, in name order, once checkVerdict passed it; end after the last.
type sink struct {
	add func(classify.Verdict) error
	end func() error
}

// WriteEach streams the verdicts that each yields (in name order) to w in
// format, holding none of them: it is how a million verdicts are exported.
// (The address formats and the RPZ's triggers for name servers and
// addresses hold each distinct address or name once, to sort them.) On an
// error part of the output may have been written; WriteFileAtomic makes
// sure no reader sees it.
func WriteEach(w io.Writer, format string, each func(yield func(classify.Verdict) error) error, opts Options) error {
	if IsDir(format) {
		return fmt.Errorf("format %s is a directory of files: write it with WriteDir", format)
	}
	bw := bufio.NewWriter(w)
	s, err := newFileSink(bw, format, opts)
	if err != nil {
		return err
	}
	if err := feed(each, format, opts, s); err != nil {
		return err
	}
	return bw.Flush()
}

// feed passes the verdicts each yields that format includes to s, checked.
func feed(each func(yield func(classify.Verdict) error) error, format string, opts Options, s sink) error {
	n := 0
	err := each(func(v classify.Verdict) error {
		if !include(format, v, opts) {
			return nil
		}
		if err := checkVerdict(format, v, opts); err != nil {
			return err
		}
		n++
		return s.add(v)
	})
	if err != nil {
		return err
	}
	if opts.Written != nil {
		opts.Written.Verdicts = n
	}
	return s.end()
}

// newFileSink returns the sink of a one-file format writing to w.
func newFileSink(w *bufio.Writer, format string, opts Options) (sink, error) {
	line := func(f func(string) string) sink {
		return sink{add: func(v classify.Verdict) error { _, err := w.WriteString(f(v.Domain)); return err }, end: noEnd}
	}
	switch format {
	case "domains":
		return line(func(name string) string { return name + "\n" }), nil
	case "hosts":
		return line(func(name string) string { return "0.0.0.0 " + name + "\n" }), nil
	case "rpz":
		rw, err := newRPZWriter(w, opts)
		if err != nil {
			return sink{}, err
		}
		return sink{rw.add, rw.end}, nil
	case "dnsmasq":
		return line(dnsmasqLine), nil
	case "unbound":
		return line(unboundLine), nil
	case "adblock":
		if err := adblockHeader(w, opts); err != nil {
			return sink{}, err
		}
		return line(adblockLine), nil
	case "stix":
		sw, err := newSTIXWriter(w, opts)
		if err != nil {
			return sink{}, err
		}
		return sink{sw.add, sw.end}, nil
	case "jsonl":
		enc := json.NewEncoder(w)
		return sink{add: func(v classify.Verdict) error { return enc.Encode(v) }, end: noEnd}, nil
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(csvHeader)
		return sink{
			add: func(v classify.Verdict) error { return cw.Write(csvRow(v)) },
			end: func() error { cw.Flush(); return cw.Error() },
		}, nil
	case "ips", "nftables", "ipset":
		return newAddressSink(w, format, opts)
	}
	return sink{}, errUnknownFormat(format)
}

func noEnd() error { return nil }

var csvHeader = []string{"domain", "verdict", "score", "evidence", "addresses", "networks", "asns",
	"prefixes_24", "prefixes_16", "prefixes_48", "min_ttl", "median_ttl", "set_changes", "change_rate",
	"vantage_disagreement", "rounds", "vantages", "ns_names", "ns_addresses", "ns_networks",
	"first_seen", "last_seen", "classified_at", "network"}

func csvRow(v classify.Verdict) []string {
	f := v.Features
	itoa := strconv.Itoa
	ftoa := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	return []string{v.Domain, v.Verdict, ftoa(v.Score), v.Evidence, itoa(f.Addresses), itoa(f.Networks),
		itoa(f.ASNs), itoa(f.Prefixes24), itoa(f.Prefixes16), itoa(f.Prefixes48), itoa(int(f.MinTTL)),
		itoa(int(f.MedianTTL)), itoa(f.SetChanges), ftoa(f.ChangeRate), ftoa(f.VantageDisagreement),
		itoa(f.Rounds), itoa(f.Vantages), itoa(f.NSNames), itoa(f.NSAddresses), itoa(f.NSNetworks),
		timeCell(f.FirstSeen), timeCell(f.LastSeen), timeCell(v.ClassifiedAt), v.Network}
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// checkName accepts only names that are safe in every output format: lower
// case letters, digits, hyphens and underscores in dot-separated labels of
// 1 to 63 octets, 253 octets at most.
func checkName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%w: %q: length", ErrBadName, name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w: %q: label length", ErrBadName, name)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%w: %q: character %q", ErrBadName, name, c)
			}
		}
	}
	return nil
}

// WriteFileAtomic writes a file through a temporary file in the same
// directory, synced and renamed over path: readers see the old file or the
// new one, never a part. On error the old file is left in place.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	syncDir(dir) // make the rename durable; the file is in place either way
	return nil
}
