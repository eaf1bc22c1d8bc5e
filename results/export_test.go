package results_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/results"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// listing is the listing of every listed verdict of the fixtures: the
// exports list what the listed index holds (Verdict.Listed), not what a
// verdict's kind says.
var listing = &classify.Listing{FirstListed: t0.Add(-time.Hour), LastConfirmed: t0.Add(-time.Minute), ExpiresAt: t0.Add(7 * 24 * time.Hour)}

// verdicts mixes every verdict, out of name order. The listed (flux) ones
// are a-fast.test, double.flux.test, fastflux-b.test and xn--bcher-kva.test.
func verdicts() []classify.Verdict {
	flux := func(domain, verdict string, score float64, addrs, nets int) classify.Verdict {
		return classify.Verdict{Domain: domain, Verdict: verdict, Score: score, Listing: listing,
			Evidence: "many addresses in many networks",
			Features: classify.Features{Probes: 40, Vantages: 4, Rounds: 10, Addresses: addrs, Prefixes24: addrs,
				Prefixes16: nets, Networks: nets, TopNetworkShare: 0.125, MinTTL: 30, MedianTTL: 60, SetChanges: 9,
				ChangeRate: 1, VantageDisagreement: 0.75, NSNames: 2, NSAddresses: 2, NSNetworks: 1, HolzScore: score,
				FirstSeen: t0.Add(-24 * time.Hour), LastSeen: t0.Add(-time.Minute)},
			ClassifiedAt: t0}
	}
	double := flux("double.flux.test", classify.DoubleFlux, 301.5, 60, 20)
	double.Features.NSNames, double.Features.NSAddresses, double.Features.NSNetworks = 6, 12, 5
	return []classify.Verdict{
		flux("fastflux-b.test", classify.SingleFlux, 104.22, 50, 10),
		{Domain: "cdn.example.test", Verdict: classify.Benign, Score: -20.5, Evidence: "addresses concentrated in one network",
			Features: classify.Features{Probes: 40, Vantages: 4, Rounds: 10, Addresses: 30, Networks: 1, MinTTL: 20,
				FirstSeen: t0.Add(-24 * time.Hour), LastSeen: t0.Add(-time.Minute)}, ClassifiedAt: t0},
		double,
		{Domain: "gone.test", Verdict: classify.Unresolvable, Evidence: "no address in 40 probes (nxdomain 40)",
			Features: classify.Features{Probes: 40, Vantages: 4, Errors: map[string]int{"nxdomain": 40}}, ClassifiedAt: t0},
		flux("xn--bcher-kva.test", classify.SingleFlux, 12, 9, 7),
		{Domain: "new.test", Verdict: classify.InsufficientData, Evidence: "not measured yet", ClassifiedAt: t0},
		flux("a-fast.test", classify.SingleFlux, 50.01, 20, 8),
	}
}

// agentVerdicts are verdicts() with what the address formats and the RPZ's
// further triggers read: confidences, agents, name servers and their
// addresses, with duplicates, addresses no list may hold, names that are
// not safe, and a verdict below the default confidence threshold.
func agentVerdicts() []classify.Verdict {
	vs := verdicts()
	for i := range vs {
		v := &vs[i]
		switch v.Domain {
		case "a-fast.test":
			v.Confidence = 0.9
			v.Agents = []string{"10.0.0.1", "127.0.0.1", "192.0.2.10", "198.51.100.7", "2001:db8::10", "fe80::1", "100.64.0.9"}
		case "double.flux.test":
			v.Confidence = 0.95
			v.Agents = []string{"192.0.2.10", "203.0.113.5", "2001:db8::1:0:0:1"}
			v.NameServers = []string{"NS2.Flux-DNS.test.", "bad name.flux-dns.test", "ns1.flux-dns.test", "ns1.flux-dns.test."}
			v.NSAgents = []string{"::ffff:203.0.113.53", "198.51.100.53", "2001:db8::53", "192.168.1.1"}
		case "fastflux-b.test": // below the default threshold
			v.Confidence = 0.5
			v.Agents = []string{"192.0.2.99"}
			v.NameServers = []string{"ns.low.test"}
		case "xn--bcher-kva.test": // at the threshold
			v.Confidence = 0.8
			v.Agents = []string{"2001:db8:0:1::2", "203.0.113.77"}
		case "cdn.example.test": // benign: never exported, however sure
			v.Confidence = 0.99
			v.Agents = []string{"192.0.2.200"}
		}
	}
	return vs
}

// The public addresses of agentVerdicts at the default threshold (0.8),
// the agents of a-fast.test, double.flux.test and xn--bcher-kva.test and
// the name servers' addresses of double.flux.test; and with every listed
// verdict (fastflux-b.test's too).
var (
	wantAgents = []string{"192.0.2.10", "198.51.100.7", "203.0.113.5", "203.0.113.77", "2001:db8::10", "2001:db8::1:0:0:1", "2001:db8:0:1::2"}
	wantNS     = []string{"198.51.100.53", "203.0.113.53", "2001:db8::53"}
	wantAddrs  = []string{"192.0.2.10", "198.51.100.7", "198.51.100.53", "203.0.113.5", "203.0.113.53", "203.0.113.77",
		"2001:db8::10", "2001:db8::53", "2001:db8::1:0:0:1", "2001:db8:0:1::2"}
	wantAllAddrs = []string{"192.0.2.10", "192.0.2.99", "198.51.100.7", "198.51.100.53", "203.0.113.5", "203.0.113.53", "203.0.113.77",
		"2001:db8::10", "2001:db8::53", "2001:db8::1:0:0:1", "2001:db8:0:1::2"}
)

var listedNames = []string{"a-fast.test", "double.flux.test", "fastflux-b.test", "xn--bcher-kva.test"}
var allNames = []string{"a-fast.test", "cdn.example.test", "double.flux.test", "fastflux-b.test", "gone.test", "new.test", "xn--bcher-kva.test"}

// golden compares got with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./results -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (check the change, then go test ./results -update):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// write writes vs in format; a directory format is written with WriteDir
// into a temporary directory and returned as dump shows it.
func write(t *testing.T, format string, vs []classify.Verdict, opts results.Options) []byte {
	t.Helper()
	out, err := tryWrite(t, format, vs, opts)
	if err != nil {
		t.Fatalf("Write(%s): %v", format, err)
	}
	return out
}

// tryWrite is write that returns the error; on an error it checks that
// nothing was written (for a directory format: no directory, no temporary
// one left).
func tryWrite(t testing.TB, format string, vs []classify.Verdict, opts results.Options) ([]byte, error) {
	t.Helper()
	return tryWriteIn(t, t.TempDir(), format, vs, opts)
}

// tryWriteIn is tryWrite that writes a directory format below parent, an
// empty directory.
func tryWriteIn(t testing.TB, parent, format string, vs []classify.Verdict, opts results.Options) ([]byte, error) {
	t.Helper()
	if !results.IsDir(format) {
		var buf bytes.Buffer
		err := results.Write(&buf, format, vs, opts)
		if err != nil && buf.Len() != 0 {
			t.Errorf("Write(%s) failed (%v) but wrote %q", format, err, buf.String())
		}
		return buf.Bytes(), err
	}
	dir := filepath.Join(parent, "out")
	err := results.WriteDir(dir, format, verdictsInOrder(vs), opts)
	if err != nil {
		if entries, _ := os.ReadDir(parent); len(entries) != 0 {
			t.Errorf("WriteDir(%s) failed (%v) but left %v", format, err, entries)
		}
		return nil, err
	}
	return dump(t, dir), nil
}

// verdictsInOrder yields vs in name order, as WriteEach and WriteDir want them.
func verdictsInOrder(vs []classify.Verdict) func(func(classify.Verdict) error) error {
	vs = slices.Clone(vs)
	slices.SortFunc(vs, func(a, b classify.Verdict) int { return strings.Compare(a.Domain, b.Domain) })
	return func(yield func(classify.Verdict) error) error {
		for _, v := range vs {
			if err := yield(v); err != nil {
				return err
			}
		}
		return nil
	}
}

// dump shows a directory of files as one text, for golden files: each
// file, in name order, under a line "== NAME ==".
func dump(t testing.TB, dir string) []byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, e := range entries {
		if !e.Type().IsRegular() {
			t.Errorf("%s: %s is not a regular file", dir, e.Name())
			continue
		}
		content, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "== %s ==\n%s", e.Name(), content)
	}
	return b.Bytes()
}

// undump splits what dump made back into files.
func undump(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	name := ""
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if n, ok := strings.CutPrefix(l, "== "); ok && strings.HasSuffix(n, " ==\n") {
			name = strings.TrimSuffix(n, " ==\n")
			files[name] = []byte{}
			continue
		}
		if name == "" {
			if l != "" {
				t.Fatalf("dump does not start with a file name: %q", l)
			}
			continue
		}
		files[name] = append(files[name], l...)
	}
	return files
}

type goldenCase struct {
	name, format string
	opts         results.Options
}

var goldenCases = []goldenCase{
	{"domains", "domains", results.Options{}},
	{"hosts", "hosts", results.Options{}},
	{"rpz", "rpz", results.Options{Serial: 2026030112}},
	{"rpz_zone", "rpz", results.Options{Zone: "rpz.example.test.", Serial: 7, TTL: 60}},
	{"dnsmasq", "dnsmasq", results.Options{}},
	{"unbound", "unbound", results.Options{}},
	{"adblock", "adblock", results.Options{}},
	{"adblock_updated", "adblock", results.Options{Now: t0.Add(90 * time.Second)}},
	{"stix", "stix", results.Options{}},
	{"stix_serial", "stix", results.Options{Serial: 2026030112, Now: t0.Add(time.Hour), ValidFor: 24 * time.Hour}},
	{"jsonl", "jsonl", results.Options{}},
	{"jsonl_all", "jsonl", results.Options{All: true}},
	{"csv", "csv", results.Options{}},
	{"csv_all", "csv", results.Options{All: true}},
}

// agentGoldenCases are written from agentVerdicts: the formats that read
// confidences, name servers and addresses.
var agentGoldenCases = []goldenCase{
	{"misp", "misp", results.Options{}},
	{"misp_now", "misp", results.Options{Now: t0.Add(time.Hour), Org: "CERT Example"}},
	{"rpz_triggers", "rpz", results.Options{Serial: 3, RPZIPTriggers: true}},
	{"ips", "ips", results.Options{}},
	{"ips_all", "ips", results.Options{MinConfidence: -1}},
	{"nftables", "nftables", results.Options{}},
	{"nftables_names", "nftables", results.Options{Table: "filter_flux", Set4: "bad4", Set6: "bad6", ValidFor: 25*time.Hour + 90*time.Second}},
	{"ipset", "ipset", results.Options{}},
	{"ipset_names", "ipset", results.Options{Set4: "flux-v4", Set6: "flux-v6", ValidFor: 90 * 24 * time.Hour}},
	{"suricata", "suricata", results.Options{}},
}

func TestWriteGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, write(t, tc.format, verdicts(), tc.opts))
		})
	}
	for _, tc := range agentGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, write(t, tc.format, agentVerdicts(), tc.opts))
		})
	}
	all := slices.Concat(goldenCases, agentGoldenCases)
	for _, f := range slices.Concat(results.Formats, results.AddressFormats) {
		if !slices.ContainsFunc(all, func(c goldenCase) bool { return c.format == f }) {
			t.Errorf("format %q has no golden case", f)
		}
	}
}

// The checks below do not trust the golden files: they read the output back.

func TestWriteBlockLists(t *testing.T) {
	for _, all := range []bool{false, true} { // All never puts unlisted names on a block list
		opts := results.Options{All: all}
		if got := lines(write(t, "domains", verdicts(), opts)); !reflect.DeepEqual(got, listedNames) {
			t.Errorf("domains (All=%v):\n got %q\nwant %q", all, got, listedNames)
		}
		var want []string
		for _, n := range listedNames {
			want = append(want, "0.0.0.0 "+n)
		}
		if got := lines(write(t, "hosts", verdicts(), opts)); !reflect.DeepEqual(got, want) {
			t.Errorf("hosts (All=%v):\n got %q\nwant %q", all, got, want)
		}
	}
}

func lines(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestWriteRPZRecords(t *testing.T) {
	tests := []struct {
		opts                 results.Options
		origin               string
		ttl                  uint32
		wantSerial, wantMinT uint32
	}{
		{results.Options{Serial: 2026030112}, "fluxwatch.rpz.", 300, 2026030112, 300},
		{results.Options{Zone: "rpz.example.test", Serial: 1, TTL: 60}, "rpz.example.test.", 60, 1, 60},
		{results.Options{Zone: "rpz.example.test.", Serial: 4294967295, All: true}, "rpz.example.test.", 300, 4294967295, 300},
	}
	for _, tt := range tests {
		out := write(t, "rpz", verdicts(), tt.opts)
		zp := dns.NewZoneParser(bytes.NewReader(out), "", "rpz")
		var soa *dns.SOA
		var ns []string
		cnames := map[string]string{}
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			if rr.Header().Ttl != tt.ttl {
				t.Errorf("%s: TTL %d, want %d", rr.Header().Name, rr.Header().Ttl, tt.ttl)
			}
			switch rr := rr.(type) {
			case *dns.SOA:
				if rr.Hdr.Name != tt.origin {
					t.Errorf("SOA owner %s, want %s", rr.Hdr.Name, tt.origin)
				}
				soa = rr
			case *dns.NS:
				ns = append(ns, rr.Hdr.Name+" "+rr.Ns)
			case *dns.CNAME:
				cnames[rr.Hdr.Name] = rr.Target
			default:
				t.Errorf("unexpected record %s", rr)
			}
		}
		if err := zp.Err(); err != nil {
			t.Fatalf("parsing RPZ: %v\n%s", err, out)
		}
		if soa == nil || soa.Serial != tt.wantSerial || soa.Minttl != tt.wantMinT {
			t.Errorf("SOA %v, want serial %d and minimum %d", soa, tt.wantSerial, tt.wantMinT)
		}
		if want := []string{tt.origin + " localhost."}; !reflect.DeepEqual(ns, want) {
			t.Errorf("NS %q, want %q", ns, want)
		}
		want := map[string]string{}
		for _, n := range listedNames { // NXDOMAIN for the name and everything below it
			want[n+"."+tt.origin] = "."
			want["*."+n+"."+tt.origin] = "."
		}
		if !reflect.DeepEqual(cnames, want) {
			t.Errorf("CNAMEs:\n got %v\nwant %v", cnames, want)
		}
	}
}

func TestWriteJSONLAndCSV(t *testing.T) {
	byName := map[string]classify.Verdict{}
	for _, v := range verdicts() {
		byName[v.Domain] = v
	}
	for _, tt := range []struct {
		all  bool
		want []string
	}{{false, listedNames}, {true, allNames}} {
		var got []string
		dec := json.NewDecoder(bytes.NewReader(write(t, "jsonl", verdicts(), results.Options{All: tt.all})))
		for {
			var v classify.Verdict
			if err := dec.Decode(&v); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, byName[v.Domain]) {
				t.Errorf("jsonl round trip of %s:\n got %+v\nwant %+v", v.Domain, v, byName[v.Domain])
			}
			got = append(got, v.Domain)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("jsonl (All=%v) names %q, want %q", tt.all, got, tt.want)
		}

		rows, err := csv.NewReader(bytes.NewReader(write(t, "csv", verdicts(), results.Options{All: tt.all}))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 || rows[0][0] != "domain" || rows[0][1] != "verdict" {
			t.Fatalf("csv header %q", rows[0])
		}
		got = nil
		for _, r := range rows[1:] {
			if len(r) != len(rows[0]) {
				t.Errorf("csv row %q has %d cells, header %d", r, len(r), len(rows[0]))
			}
			if v := byName[r[0]]; r[1] != v.Verdict {
				t.Errorf("csv %s: verdict %q, want %q", r[0], r[1], v.Verdict)
			}
			got = append(got, r[0])
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("csv (All=%v) names %q, want %q", tt.all, got, tt.want)
		}
	}
}

// A flux verdict whose listing is gone (delisted by hand, allowlisted or
// expired) is not listed: no export holds it but jsonl and csv with All,
// while a benign verdict whose listing still runs is listed.
func TestWriteListedIsTheListing(t *testing.T) {
	var vs []classify.Verdict
	for _, v := range verdicts() {
		switch v.Domain {
		case "a-fast.test", "double.flux.test":
			v.Listing = nil // delisted or expired
		case "cdn.example.test":
			v.Listing = listing // a listing that has not run out
		}
		vs = append(vs, v)
	}
	want := []string{"cdn.example.test", "fastflux-b.test", "xn--bcher-kva.test"}
	for _, f := range []string{"domains", "jsonl", "csv"} {
		for _, all := range []bool{false, true} {
			got := names(t, f, write(t, f, vs, results.Options{All: all}))
			if f == "domains" || !all {
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s (All=%v): %q, want %q", f, all, got, want)
				}
			} else if !reflect.DeepEqual(got, allNames) {
				t.Errorf("%s (All=%v): %q, want %q", f, all, got, allNames)
			}
		}
	}
	// The addresses of a flux verdict that is no longer listed are not
	// exported either.
	vs = agentVerdicts()
	for i := range vs {
		vs[i].Listing = nil
	}
	if out := write(t, "ips", vs, results.Options{MinConfidence: -1}); len(out) != 0 {
		t.Errorf("ips of verdicts not listed: %q", out)
	}
}

// names returns the domain of each line of a domains, jsonl or csv export.
func names(t *testing.T, format string, out []byte) []string {
	t.Helper()
	var got []string
	switch format {
	case "domains":
		got = strings.Fields(string(out))
	case "jsonl":
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var v classify.Verdict
			if err := dec.Decode(&v); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			got = append(got, v.Domain)
		}
	case "csv":
		rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
		if err != nil || len(rows) == 0 {
			t.Fatalf("csv: %v", err)
		}
		for _, r := range rows[1:] {
			got = append(got, r[0])
		}
	}
	return got
}

func TestWriteNothingListed(t *testing.T) {
	benign := []classify.Verdict{{Domain: "ok.test", Verdict: classify.Benign}}
	for _, f := range []string{"domains", "hosts", "dnsmasq", "unbound", "jsonl"} {
		if out := write(t, f, benign, results.Options{}); len(out) != 0 {
			t.Errorf("%s with nothing listed: %q, want nothing", f, out)
		}
	}
	if out := string(write(t, "adblock", benign, results.Options{})); out != "! Title: fluxwatch fast-flux domains\n" {
		t.Errorf("adblock with nothing listed: %q, want the title only", out)
	}
	// STIX forbids empty lists: a bundle with nothing listed has no objects.
	var bundle map[string]any
	if out := write(t, "stix", benign, results.Options{}); json.Unmarshal(out, &bundle) != nil || len(bundle) != 2 || bundle["type"] != "bundle" {
		t.Errorf("stix with nothing listed: %q, want a bundle with a type and an id only", out)
	}
	if out := string(write(t, "csv", nil, results.Options{})); strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "domain,verdict,") {
		t.Errorf("csv with nothing listed: %q, want the header only", out)
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	for _, f := range []string{"xml", "", "RPZ"} {
		var buf bytes.Buffer
		err := results.Write(&buf, f, verdicts(), results.Options{})
		want := `unknown format "` + f + `" (want one of domains, hosts, rpz, dnsmasq, unbound, adblock, stix, misp, jsonl, csv, ips, nftables, ipset, suricata)`
		if err == nil || err.Error() != want {
			t.Errorf("Write(%q) = %v, want %s", f, err, want)
		}
		if buf.Len() != 0 {
			t.Errorf("Write(%q) wrote %q", f, buf.String())
		}
		dir := filepath.Join(t.TempDir(), "out")
		if err := results.WriteDir(dir, f, verdictsInOrder(verdicts()), results.Options{}); err == nil || err.Error() != want {
			t.Errorf("WriteDir(%q) = %v, want %s", f, err, want)
		}
	}
	// A directory format is not one file, and the other way round.
	for _, f := range []string{"misp", "suricata"} {
		var buf bytes.Buffer
		if err := results.Write(&buf, f, verdicts(), results.Options{}); err == nil || !strings.Contains(err.Error(), "WriteDir") || buf.Len() != 0 {
			t.Errorf("Write(%s) = %v, wrote %q; want an error pointing to WriteDir", f, err, buf.String())
		}
	}
	for _, f := range []string{"rpz", "ips"} {
		dir := filepath.Join(t.TempDir(), "out")
		if err := results.WriteDir(dir, f, verdictsInOrder(verdicts()), results.Options{}); err == nil || !strings.Contains(err.Error(), "one file") {
			t.Errorf("WriteDir(%s) = %v, want an error saying it is one file", f, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("WriteDir(%s) made %s (%v)", f, dir, err)
		}
	}
}

// TestWriteRefusesBadNames feeds names that would break out of a line or a
// record: each must fail the whole export with ErrBadName, writing nothing.
func TestWriteRefusesBadNames(t *testing.T) {
	bad := []string{
		"evil.test\nattacker.test CNAME rpz-passthru.",
		"a b.test",
		"x;y.test",
		"UPPER.test",
		"",
		strings.Repeat("a", 64) + ".test",
		"..test",
		"trailing.dot.test.",
		`quote".test`,
		"tab\t.test",
		"star.*.test",
		"@",
		"$include.test",
		strings.Repeat("abcdefghi.", 25) + "test", // 254 octets
	}
	for _, name := range bad {
		for _, format := range slices.Concat(results.Formats, results.AddressFormats) {
			vs := append(agentVerdicts(), classify.Verdict{Domain: name, Verdict: classify.DoubleFlux, Listing: listing, Confidence: 1, Agents: []string{"192.0.2.1"}})
			// tryWrite checks that nothing was written.
			if _, err := tryWrite(t, format, vs, results.Options{}); !errors.Is(err, results.ErrBadName) {
				t.Errorf("Write(%s) with %q = %v, want ErrBadName", format, name, err)
			}
		}
	}
	// With All, jsonl and csv carry every verdict, so an unlisted bad name fails them too.
	for _, format := range []string{"jsonl", "csv"} {
		vs := []classify.Verdict{{Domain: "Benign.test", Verdict: classify.Benign}}
		var buf bytes.Buffer
		if err := results.Write(&buf, format, vs, results.Options{All: true}); !errors.Is(err, results.ErrBadName) || buf.Len() != 0 {
			t.Errorf("Write(%s, All) with an unlisted bad name = %v, wrote %q", format, err, buf.String())
		}
	}
	// A bad RPZ origin is refused the same way.
	for _, zone := range []string{"rpz zone", "rpz\n@ NS evil.", "a..rpz"} {
		var buf bytes.Buffer
		if err := results.Write(&buf, "rpz", verdicts(), results.Options{Zone: zone}); !errors.Is(err, results.ErrBadName) || buf.Len() != 0 {
			t.Errorf("Write(rpz, Zone %q) = %v, wrote %q", zone, err, buf.String())
		}
	}
}

// A name may be valid on its own (up to 253 octets) yet too long once the
// RPZ origin and "*." are added; BIND would then refuse the whole zone.
func TestWriteRPZNameLength(t *testing.T) {
	zone := "fluxwatch.rpz"
	fits := longName(253 - len("*.") - len(".") - len(zone)) // 237 octets
	tooLong := longName(len(fits) + 1)
	listed := func(name string) []classify.Verdict {
		return []classify.Verdict{{Domain: name, Verdict: classify.SingleFlux, Listing: listing}}
	}
	out := write(t, "rpz", listed(fits), results.Options{Serial: 1})
	checkZone(t, zone, out)

	var buf bytes.Buffer
	if err := results.Write(&buf, "rpz", listed(tooLong), results.Options{Serial: 1}); !errors.Is(err, results.ErrBadName) || buf.Len() != 0 {
		t.Errorf("rpz with a %d-octet name = %v, wrote %d bytes; want ErrBadName and nothing", len(tooLong), err, buf.Len())
	}
	// The plain list has no origin to add and takes it.
	if got := string(write(t, "domains", listed(tooLong), results.Options{})); got != tooLong+"\n" {
		t.Errorf("domains with a %d-octet name: %q", len(tooLong), got)
	}
}

// longName returns a valid name of exactly n octets ending in ".test":
// labels of x, a dot after every 63.
func longName(n int) string {
	b := []byte(strings.Repeat("x", n-len(".test")))
	for i := 63; i < len(b); i += 64 {
		b[i] = '.'
	}
	if b[len(b)-1] == '.' {
		panic("longName: no valid name of that length this way")
	}
	return string(b) + ".test"
}

// checkZone runs BIND's named-checkzone over an RPZ. The CI test command
// installs bind9-utils, so there a missing tool is a failure.
func checkZone(t *testing.T, zone string, rpz []byte) {
	t.Helper()
	bin, err := exec.LookPath("named-checkzone")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("named-checkzone not found; CI must install bind9-utils")
		}
		t.Skip("named-checkzone not installed (apt-get install bind9-utils)")
	}
	path := filepath.Join(t.TempDir(), "zone.rpz")
	if err := os.WriteFile(path, rpz, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, zone, path).CombinedOutput()
	if err != nil {
		t.Fatalf("named-checkzone %s: %v\n%s\nzone:\n%s", zone, err, out, rpz)
	}
	if !strings.Contains(string(out), "OK") {
		t.Fatalf("named-checkzone %s: %s", zone, out)
	}
}

func TestRPZLoadsInBIND(t *testing.T) {
	tests := []struct {
		zone string // as named-checkzone takes it
		opts results.Options
	}{
		{"fluxwatch.rpz", results.Options{Serial: 2026030112}},
		{"rpz.example.test", results.Options{Zone: "rpz.example.test.", Serial: 7, TTL: 60}},
		{"fluxwatch.rpz", results.Options{Serial: 1, All: true}},
	}
	for _, tt := range tests {
		t.Run(tt.zone, func(t *testing.T) {
			checkZone(t, tt.zone, write(t, "rpz", verdicts(), tt.opts))
		})
	}
	t.Run("empty", func(t *testing.T) {
		checkZone(t, "fluxwatch.rpz", write(t, "rpz", nil, results.Options{Serial: 3}))
	})
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "list.rpz")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := results.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := io.WriteString(w, "new\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "new\n")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", fi.Mode().Perm(), err)
	}
	assertOnly(t, dir, "list.rpz")

	// A failing write leaves the previous file and no temporary file.
	boom := errors.New("boom")
	err = results.WriteFileAtomic(path, func(w io.Writer) error {
		io.WriteString(w, "half a li")
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFileAtomic with a failing write = %v, want it to wrap the error and name %s", err, path)
	}
	assertFile(t, path, "new\n")
	assertOnly(t, dir, "list.rpz")

	// So does an export that refuses a name.
	bad := append(verdicts(), classify.Verdict{Domain: "evil.test\n@ NS x.", Verdict: classify.SingleFlux, Listing: listing})
	err = results.WriteFileAtomic(path, func(w io.Writer) error { return results.Write(w, "rpz", bad, results.Options{}) })
	if !errors.Is(err, results.ErrBadName) {
		t.Errorf("WriteFileAtomic(Write with a bad name) = %v, want ErrBadName", err)
	}
	assertFile(t, path, "new\n")
	assertOnly(t, dir, "list.rpz")

	// A missing directory is an error, not a file somewhere else.
	missing := filepath.Join(dir, "no", "such", "dir", "list.rpz")
	if err := results.WriteFileAtomic(missing, func(io.Writer) error { return nil }); err == nil {
		t.Error("WriteFileAtomic into a missing directory succeeded")
	}
	assertOnly(t, dir, "list.rpz")
}

func TestWriteFileAtomicRelative(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := results.WriteFileAtomic("hosts.txt", func(w io.Writer) error {
		return results.Write(w, "hosts", verdicts(), results.Options{})
	}); err != nil {
		t.Fatal(err)
	}
	assertFile(t, filepath.Join(dir, "hosts.txt"), "0.0.0.0 "+strings.Join(listedNames, "\n0.0.0.0 ")+"\n")
	assertOnly(t, dir, "hosts.txt")
}

func assertFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

// assertOnly checks that dir holds exactly the named files: no temporary
// ".name.tmp-*" file is left behind.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
