package results_test

import (
	"bytes"
	"crypto/md5"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/results"
)

// exportable is the rule for names every format can hold, written again
// here so that the fuzz target does not trust checkName to check itself.
var exportable = regexp.MustCompile(`^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$`)

// ruleLines are the lines of the line formats that are not comments or the
// zone's head, the name their first group; an RPZ blocks each name with two
// (its further triggers are read apart).
var ruleLines = map[string][]*regexp.Regexp{
	"domains": {regexp.MustCompile(`^(.*)$`)},
	"hosts":   {regexp.MustCompile(`^0\.0\.0\.0 (.*)$`)},
	"dnsmasq": {regexp.MustCompile(`^address=/(.*)/$`)},
	"unbound": {regexp.MustCompile(`^local-zone: "(.*)\." always_nxdomain$`)},
	"adblock": {regexp.MustCompile(`^\|\|(.*)\^$`)},
	"rpz": {regexp.MustCompile(`^(.*) CNAME \.$`),
		regexp.MustCompile(`^\*\.(.*) CNAME \. ; [a-z-]+ 0\.87$`)},
}

// addrLines are the lines of the address formats that hold an address (the
// first group) and the lines they may hold besides.
var addrLines = map[string]struct{ addr, other *regexp.Regexp }{
	"ips": {regexp.MustCompile(`^(.*)$`), regexp.MustCompile(`^$.`)},
	"nftables": {regexp.MustCompile(`^\t([^ ,]*) timeout 7d,?$`), regexp.MustCompile(`^(# .*|table inet fluxwatch \{|\tset flux[46] \{|` +
		`\t\ttype ipv[46]_addr|\t\tflags interval, timeout|\t?\}|flush set inet fluxwatch flux[46]|add element inet fluxwatch flux[46] \{)$`)},
	"ipset": {regexp.MustCompile(`^add fluxwatch[46]-new (.*) timeout 604800 -exist$`), regexp.MustCompile(
		`^(# .*|create fluxwatch([46]|[46]-new) hash:ip family inet6? timeout 0 maxelem 1048576 -exist|` +
			`(flush|destroy) fluxwatch[46]-new|swap fluxwatch[46]-new fluxwatch[46])$`)},
	"suricata": {regexp.MustCompile(`^(.*),[12],([1-9]|[1-9][0-9]|1[01][0-9]|12[0-7])$`), regexp.MustCompile(
		`^(# .*|== (categories\.txt|reputation\.list) ==|1,FastFluxAgent,[^,]*|2,FastFluxNS,[^,]*)$`)},
}

// FuzzExport writes one verdict of a fuzzed name, kind, name server and
// address (and one benign verdict) in every format. A write fails only
// with ErrBadName or ErrBadAddress, and does fail for a listed name
// outside the rule above, or for an address that is not one where the
// format reads addresses; otherwise it writes nothing. Every output reads
// back as what it claims to be and holds the listed name, name server and
// addresses exactly where it should, and no control character but the
// newline.
func FuzzExport(f *testing.F) {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	for _, name := range []string{
		"flux.example", "xn--bcher-kva.example", "under_score.example", "-lead.example", "a",
		"a\nb.example", "a b.example", "a\"b.example", "a;b.example", `a\b.example`, "a'b.example", "a/b.example",
		"Upper.Example", "b\u00fccher.example", "", ".", "a..b", "trailing.", "a\x00b", "a\rb",
		long, long + "d", long[:240], "\x91", "a.\xff.example", "32.1.0.0.127.rpz-ip", "x.rpz-nsdname",
	} {
		f.Add(name, "ns1.flux.example", "192.0.2.7", uint8(0))
	}
	f.Add("flux.example", "ns1.flux.example", "2001:db8::7", uint8(1))
	f.Add("benign.example", "ns1.flux.example", "192.0.2.7", uint8(2))
	f.Add("a\nb", "ns", "x", uint8(3))
	for _, ns := range []string{"NS.Example.", "a b.example", "x.rpz-ip", "ns\n@ NS evil.", "", long, "*.ns.example"} {
		f.Add("double.example", ns, "198.51.100.9", uint8(1))
	}
	for _, agent := range []string{"2001:DB8::1", "::ffff:192.0.2.9", "10.0.0.1", "127.0.0.1", "fe80::1%eth0", "192.0.2.9\n", "",
		"999.1.1.1", "192.0.2.0/24", "2001:db8:0:0:1:0:0:1", "::", "2a00::", "192.0.2.9,1,127", "192.0.2.9 }"} {
		f.Add("double.example", "ns1.flux.example", agent, uint8(1))
		f.Add("single.example", "ns1.flux.example", agent, uint8(0))
	}
	kinds := []string{classify.SingleFlux, classify.DoubleFlux, classify.Benign, classify.InsufficientData, classify.Unresolvable}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	opts := results.Options{Now: at, Serial: 7, MinConfidence: 0.5, RPZIPTriggers: true}
	// The directory formats sync what they write: on a tmpfs that costs
	// nothing, and the fuzzer runs ten times as fast.
	base := f.TempDir()
	if shm, err := os.MkdirTemp("/dev/shm", "fluxwatch-fuzz-"); err == nil {
		base = shm
		f.Cleanup(func() { os.RemoveAll(shm) })
	}
	f.Fuzz(func(t *testing.T, name, ns, agent string, kind uint8) {
		parent, err := os.MkdirTemp(base, "")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(parent)
		v := classify.Verdict{Domain: name, Verdict: kinds[int(kind)%len(kinds)], Score: 0.87, Confidence: 0.7,
			Evidence: "12 addresses in 9 networks", ClassifiedAt: at,
			Agents: []string{agent, "192.0.2.1"}, NameServers: []string{ns}, NSAgents: []string{agent}}
		listed := classify.IsFlux(v.Verdict)
		if listed {
			v.Listing = listing
		}
		verdicts := []classify.Verdict{v, {Domain: "benign.example", Verdict: classify.Benign, ClassifiedAt: at,
			Confidence: 1, Agents: []string{"192.0.2.200"}}}
		double := v.Verdict == classify.DoubleFlux
		want := 0 // entries of the name in each output
		if listed {
			want = 1
		}
		nameOK := exportable.MatchString(name) && len(name) <= 253
		labels := strings.Split(name, ".")
		rpzNameOK := nameOK && len("*."+name+".fluxwatch.rpz") <= 253 && !strings.HasPrefix(labels[len(labels)-1], "rpz-")
		addr, addrErr := netip.ParseAddr(agent)
		addrOK := addrErr == nil && addr.Zone() == ""
		// The addresses a list may hold: the fuzzed one (if it is public) and 192.0.2.1.
		mayHold := map[string]bool{"192.0.2.1": true}
		if addrOK && addr.Unmap().IsGlobalUnicast() && !addr.Unmap().IsPrivate() {
			mayHold[addr.Unmap().String()] = true
		}
		for _, format := range slices.Concat(results.Formats, results.AddressFormats) {
			readsAddrs := results.IsAddressFormat(format) || format == "rpz"
			wantNameErr := listed && (!nameOK || format == "rpz" && !rpzNameOK)
			wantAddrErr := listed && readsAddrs && !addrOK
			dir := filepath.Join(parent, format)
			os.Mkdir(dir, 0o755)
			b, err := tryWriteIn(t, dir, format, verdicts, opts) // on an error it checks nothing was written
			if err != nil {
				if !(errors.Is(err, results.ErrBadName) && wantNameErr || errors.Is(err, results.ErrBadAddress) && wantAddrErr && !wantNameErr) {
					t.Fatalf("%s: %q (%s) with %q and %q refused: %v", format, name, v.Verdict, ns, agent, err)
				}
				continue
			}
			if wantNameErr || wantAddrErr {
				t.Fatalf("%s: %q (%s) with %q and %q written:\n%s", format, name, v.Verdict, ns, agent, b)
			}
			out := string(b)
			// nft scripts indent with tabs; JSON leaves DEL unescaped, and
			// jsonl carries a verdict's name servers as the answers gave them.
			if i := strings.IndexFunc(out, func(r rune) bool {
				return r < 0x20 && r != '\n' && !(r == '\t' && format == "nftables") || r == 0x7f && format != "jsonl"
			}); i >= 0 {
				t.Fatalf("%s: control character %q at %d:\n%s", format, out[i], i, out)
			}
			if out != "" && !strings.HasSuffix(out, "\n") { // an empty list is an empty file
				t.Fatalf("%s: output does not end in a newline:\n%s", format, out)
			}
			switch format {
			case "jsonl":
				n := 0
				for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
					if l == "" {
						continue
					}
					var got classify.Verdict
					if err := json.Unmarshal([]byte(l), &got); err != nil {
						t.Fatalf("jsonl: line %q: %v", l, err)
					}
					if got.Domain != name || got.Verdict != v.Verdict {
						t.Fatalf("jsonl: line %q is not the verdict of %q", l, name)
					}
					n++
				}
				if n != want {
					t.Fatalf("jsonl: %d lines, want %d:\n%s", n, want, out)
				}
			case "stix":
				var bundle struct {
					Type    string `json:"type"`
					Objects []struct {
						Name    string `json:"name"`
						Pattern string `json:"pattern"`
					} `json:"objects"`
				}
				if err := json.Unmarshal(b, &bundle); err != nil || bundle.Type != "bundle" {
					t.Fatalf("stix: not a bundle (%v):\n%s", err, out)
				}
				if len(bundle.Objects) != want {
					t.Fatalf("stix: %d objects, want %d:\n%s", len(bundle.Objects), want, out)
				}
				for _, o := range bundle.Objects {
					if o.Name != "fast-flux domain "+name || o.Pattern != "[domain-name:value = '"+name+"']" {
						t.Fatalf("stix: indicator %+v is not for %q", o, name)
					}
				}
			case "misp":
				checkMISPFuzz(t, undump(t, b), name, want)
			case "csv":
				rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
				if err != nil {
					t.Fatalf("csv: %v:\n%s", err, out)
				}
				if len(rows) != 1+want || rows[0][0] != "domain" {
					t.Fatalf("csv: %d rows, want a header and %d:\n%s", len(rows), want, out)
				}
				for _, r := range rows[1:] {
					if r[0] != name || r[1] != v.Verdict {
						t.Fatalf("csv: row %q is not the verdict of %q", r, name)
					}
				}
			case "ips", "nftables", "ipset", "suricata":
				rules := addrLines[format]
				var got []netip.Addr
				for _, l := range outputLines(out) {
					if m := rules.addr.FindStringSubmatch(l); m != nil {
						a, err := netip.ParseAddr(m[1])
						if err != nil || a.String() != m[1] || !mayHold[m[1]] {
							t.Fatalf("%s: line %q holds an address it may not (%v):\n%s", format, l, err, out)
						}
						got = append(got, a)
					} else if !rules.other.MatchString(l) {
						t.Fatalf("%s: line %q:\n%s", format, l, out)
					}
				}
				if !slices.IsSortedFunc(got, netip.Addr.Compare) || listed && !slices.Contains(got, netip.MustParseAddr("192.0.2.1")) ||
					!listed && len(got) != 0 {
					t.Fatalf("%s: addresses %v (listed %v):\n%s", format, got, listed, out)
				}
			case "rpz":
				checkRPZFuzz(t, b, name, ns, want, listed && double, mayHold)
			default:
				rules, n := ruleLines[format], 0
				for _, l := range strings.SplitAfter(out, "\n") {
					l, ok := strings.CutSuffix(l, "\n")
					if !ok {
						continue // after the last line
					}
					if format == "adblock" && strings.HasPrefix(l, "!") {
						continue // comments
					}
					if m := rules[n%len(rules)].FindStringSubmatch(l); m == nil || m[1] != name {
						t.Fatalf("%s: line %q is not the rule for %q:\n%s", format, l, name, out)
					}
					n++
				}
				if n != want*len(rules) {
					t.Fatalf("%s: %d rule lines, want %d:\n%s", format, n, want*len(rules), out)
				}
			}
		}
	})
}

// checkRPZFuzz reads a fuzzed RPZ: it parses as a zone; two qname triggers
// for the name; an rpz-nsdname trigger for the name server (normalised)
// of a double-flux domain if it is a safe name; address triggers only for
// addresses a list may hold, in canonical form.
func checkRPZFuzz(t *testing.T, b []byte, name, ns string, want int, double bool, mayHold map[string]bool) {
	t.Helper()
	zp := dns.NewZoneParser(bytes.NewReader(b), "", "")
	for _, ok := zp.Next(); ok; _, ok = zp.Next() {
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("rpz: %v:\n%s", err, b)
	}
	rules := ruleLines["rpz"]
	n := 0
	var nsd []string
	for _, l := range lines(b) {
		if strings.HasPrefix(l, ";") || strings.HasPrefix(l, "$") || strings.HasPrefix(l, "@ ") {
			continue // comments and the zone's head
		}
		owner, isTrigger := strings.CutSuffix(l, " CNAME .")
		switch {
		case isTrigger && strings.HasSuffix(owner, ".rpz-nsdname"):
			nsd = append(nsd, strings.TrimSuffix(owner, ".rpz-nsdname"))
		case isTrigger && (strings.HasSuffix(owner, ".rpz-ip") || strings.HasSuffix(owner, ".rpz-nsip")):
			labels := strings.Split(owner, ".")
			a, err := decodeRPZIP(labels[:len(labels)-1])
			if err != nil || !mayHold[a.String()] || strings.HasSuffix(owner, ".rpz-nsip") && !double {
				t.Fatalf("rpz: trigger %q (%v, double %v):\n%s", l, err, double, b)
			}
		default:
			if m := rules[n%len(rules)].FindStringSubmatch(l); m == nil || m[1] != name {
				t.Fatalf("rpz: line %q is not the rule for %q:\n%s", l, name, b)
			}
			n++
		}
	}
	if n != want*len(rules) {
		t.Fatalf("rpz: %d rule lines, want %d:\n%s", n, want*len(rules), b)
	}
	norm := strings.TrimSuffix(strings.ToLower(ns), ".")
	var wantNSD []string
	if double && exportable.MatchString(norm) && len(norm+".rpz-nsdname.fluxwatch.rpz") <= 253 {
		wantNSD = []string{norm}
	}
	if !slices.Equal(nsd, wantNSD) {
		t.Fatalf("rpz: nsdname triggers %q for name server %q, want %q:\n%s", nsd, ns, wantNSD, b)
	}
}

// checkMISPFuzz reads a fuzzed MISP feed: the manifest names the event
// whose file holds an attribute for the name if it is listed, with its
// md5 in hashes.csv.
func checkMISPFuzz(t *testing.T, files map[string][]byte, name string, want int) {
	t.Helper()
	var manifest map[string]json.RawMessage
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(files) != 3 {
		t.Fatalf("misp: manifest (%v) of %d files: %s", err, len(files), files["manifest.json"])
	}
	for id := range manifest {
		var event struct {
			Event struct {
				UUID      string `json:"uuid"`
				Attribute []struct {
					Value string `json:"value"`
					Type  string `json:"type"`
				} `json:"Attribute"`
			} `json:"Event"`
		}
		if err := json.Unmarshal(files[id+".json"], &event); err != nil || event.Event.UUID != id {
			t.Fatalf("misp: event %s (%v): %s", id, err, files[id+".json"])
		}
		if len(event.Event.Attribute) != want || want == 1 && (event.Event.Attribute[0].Value != name || event.Event.Attribute[0].Type != "domain") {
			t.Fatalf("misp: attributes %+v, want %d for %q", event.Event.Attribute, want, name)
		}
		sum := md5.Sum([]byte(name))
		if hashes := string(files["hashes.csv"]); want == 1 && hashes != hex.EncodeToString(sum[:])+","+id+"\n" || want == 0 && hashes != "" {
			t.Fatalf("misp: hashes.csv %q", hashes)
		}
	}
}

// outputLines splits an output into its lines; an empty output has none.
func outputLines(out string) []string {
	if out == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}
