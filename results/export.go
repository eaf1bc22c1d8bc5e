// Package results turns verdicts into the files people load: plain domain
// lists, hosts files, RPZ zones, dnsmasq and Unbound configuration for
// resolvers, adblock filter lists, STIX 2.1 bundles of indicators for threat
// intelligence platforms, and JSON Lines and CSV for analysis. Every file is
// written whole or not at all (WriteFileAtomic), so a resolver watching it
// never loads half a list.
package results

import (
	"bufio"
	"cmp"
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

// Formats lists the values --format accepts.
var Formats = []string{"domains", "hosts", "rpz", "dnsmasq", "unbound", "adblock", "stix", "jsonl", "csv"}

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
	// was made (default 7 days).
	ValidFor time.Duration
}

// ErrBadName is returned for a name that cannot be written safely.
var ErrBadName = errors.New("name not safe to export")

// Write writes verdicts in format to w, in name order. A name that cannot
// be written safely fails the whole write before anything is written.
func Write(w io.Writer, format string, verdicts []classify.Verdict, opts Options) error {
	var vs []classify.Verdict
	for _, v := range verdicts {
		if !include(format, v, opts) {
			continue
		}
		if err := checkName(v.Domain); err != nil {
			return err
		}
		if zone := cmp.Or(strings.TrimSuffix(opts.Zone, "."), "fluxwatch.rpz"); format == "rpz" && len("*."+v.Domain+"."+zone) > 253 {
			return fmt.Errorf("%w: %q: too long under RPZ zone %s", ErrBadName, v.Domain, zone)
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

// include says whether a verdict belongs in an export of format.
func include(format string, v classify.Verdict, opts Options) bool {
	return classify.Listed(v.Verdict) || opts.All && (format == "jsonl" || format == "csv")
}

// IsBlockList reports whether format lists only the listed domains and
// needs no features (so exports can read the short listed records).
func IsBlockList(format string) bool {
	switch format {
	case "domains", "hosts", "rpz", "dnsmasq", "unbound", "adblock", "stix":
		return true
	}
	return false
}

// WriteEach streams the verdicts that each yields (in name order) to w in
// format, holding none of them: it is how a million verdicts are exported.
// On an error part of the output may have been written; WriteFileAtomic
// makes sure no reader sees it.
func WriteEach(w io.Writer, format string, each func(yield func(classify.Verdict) error) error, opts Options) error {
	bw := bufio.NewWriter(w)
	var add func(classify.Verdict) error
	end := func() error { return nil }
	switch format {
	case "domains":
		add = func(v classify.Verdict) error { _, err := bw.WriteString(v.Domain + "\n"); return err }
	case "hosts":
		add = func(v classify.Verdict) error { _, err := bw.WriteString("0.0.0.0 " + v.Domain + "\n"); return err }
	case "rpz":
		zone, err := rpzHeader(bw, opts)
		if err != nil {
			return err
		}
		add = func(v classify.Verdict) error {
			// A name too long below the origin would make the whole zone fail to load.
			if len("*."+v.Domain+"."+zone) > 253 {
				return fmt.Errorf("%w: %q: too long under RPZ zone %s", ErrBadName, v.Domain, zone)
			}
			_, err := fmt.Fprintf(bw, "%s CNAME .\n*.%s CNAME . ; %s %.2f\n", v.Domain, v.Domain, v.Verdict, v.Score)
			return err
		}
	case "dnsmasq":
		add = func(v classify.Verdict) error { _, err := bw.WriteString(dnsmasqLine(v.Domain)); return err }
	case "unbound":
		add = func(v classify.Verdict) error { _, err := bw.WriteString(unboundLine(v.Domain)); return err }
	case "adblock":
		if err := adblockHeader(bw, opts); err != nil {
			return err
		}
		add = func(v classify.Verdict) error { _, err := bw.WriteString(adblockLine(v.Domain)); return err }
	case "stix":
		sw, err := newSTIXWriter(bw, opts)
		if err != nil {
			return err
		}
		add, end = sw.add, sw.end
	case "jsonl":
		enc := json.NewEncoder(bw)
		add = func(v classify.Verdict) error { return enc.Encode(v) }
	case "csv":
		cw := csv.NewWriter(bw)
		cw.Write(csvHeader)
		add = func(v classify.Verdict) error { return cw.Write(csvRow(v)) }
		end = func() error { cw.Flush(); return cw.Error() }
	default:
		return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
	}
	err := each(func(v classify.Verdict) error {
		if !include(format, v, opts) {
			return nil
		}
		if err := checkName(v.Domain); err != nil {
			return err
		}
		return add(v)
	})
	if err == nil {
		err = end()
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// rpzHeader writes the zone's origin, SOA and NS, and returns the origin.
func rpzHeader(w io.Writer, opts Options) (string, error) {
	zone := strings.TrimSuffix(opts.Zone, ".")
	if zone == "" {
		zone = "fluxwatch.rpz"
	}
	if err := checkName(zone); err != nil {
		return "", fmt.Errorf("RPZ zone: %w", err)
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

var csvHeader = []string{"domain", "verdict", "score", "evidence", "addresses", "networks", "asns",
	"prefixes_24", "prefixes_16", "prefixes_48", "min_ttl", "median_ttl", "set_changes", "change_rate",
	"vantage_disagreement", "rounds", "vantages", "ns_names", "ns_addresses", "ns_networks",
	"first_seen", "last_seen", "classified_at"}

func csvRow(v classify.Verdict) []string {
	f := v.Features
	itoa := strconv.Itoa
	ftoa := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	return []string{v.Domain, v.Verdict, ftoa(v.Score), v.Evidence, itoa(f.Addresses), itoa(f.Networks),
		itoa(f.ASNs), itoa(f.Prefixes24), itoa(f.Prefixes16), itoa(f.Prefixes48), itoa(int(f.MinTTL)),
		itoa(int(f.MedianTTL)), itoa(f.SetChanges), ftoa(f.ChangeRate), ftoa(f.VantageDisagreement),
		itoa(f.Rounds), itoa(f.Vantages), itoa(f.NSNames), itoa(f.NSAddresses), itoa(f.NSNetworks),
		timeCell(f.FirstSeen), timeCell(f.LastSeen), timeCell(v.ClassifiedAt)}
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
	if d, derr := os.Open(dir); derr == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	return nil
}
