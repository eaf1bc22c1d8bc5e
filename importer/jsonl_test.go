package importer

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
)

// TestJSONL reads hand-written lines of fluxwatch's observation format:
// names and addresses come back canonical and answers sorted; unknown keys,
// flags, classes and malformed records are line errors.
func TestJSONL(t *testing.T) {
	r := readFile(t, "observations.jsonl", JSONL, Options{})
	sameText(t, "probes", render(r.probes), `
		flux.example @127.0.0.1:5301 2026-11-27T09:00:01.000123Z
		  +333µs  flux.example A rcode=0 [ra] rtt=1.234ms ok: flux.example A 180 198.51.100.7; flux.example A 180 203.0.113.9
		  +777µs  flux.example AAAA rcode=0 [ra] rtt=800µs ok:
		  +1.077ms  flux.example NS rcode=0 [ra] rtt=900µs ok: flux.example NS 300 ns1.flux.example
		  +1.377ms  ns1.flux.example A rcode=0 [aa ra] rtt=700µs ok: ns1.flux.example A 300 198.51.100.53
		nothere.example @127.0.0.1:5301 2026-11-27T09:00:01Z
		  +200ms  nothere.example A rcode=3 [] rtt=2ms nxdomain:
		slow.example @[2001:db8::53]:53 2026-11-27T09:00:02Z
		  slow.example HTTPS rcode=0 [] rtt=0s timeout:
		flux.example @pdns:circl 2026-11-27T09:00:01Z
		  flux.example A rcode=0 [passive] rtt=0s ok: flux.example AAAA 0 2001:db8::1
		after-errors.example @v 2026-11-27T09:00:03Z
		  after-errors.example A rcode=23 [] rtt=5µs rcode:
		`)
	sameText(t, "errors", strings.Join(r.errs, "\n")+"\n", `
		observations.jsonl:5: json: unknown field "extra"
		observations.jsonl:6: observation 1: unknown flag "shiny"
		observations.jsonl:7: observation 1: record flux.example: "2001:db8::1" is not an A address
		observations.jsonl:8: no "observations"
		observations.jsonl:9: no "start"
		observations.jsonl:10: observation 1: unknown err "gremlins"
		observations.jsonl:11: name "192.0.2.1": IP address, not a domain name
		`)
}

// TestJSONLRoundTrip encodes what every reader yields and decodes it again:
// the same probes, to the microsecond of storage.
func TestJSONLRoundTrip(t *testing.T) {
	var all []obs.Probe
	for _, c := range []struct{ file, format string }{
		{"dig.log", Dig}, {"zdns.jsonl", ZDNS}, {"dnsx.jsonl", DNSX}, {"cof.jsonl", COF}, {"observations.jsonl", JSONL},
	} {
		all = append(all, readFile(t, c.file, c.format, Options{}).probes...)
	}
	// A flag bit without a name survives too.
	all = append(all, obs.Probe{Domain: "x.example", Vantage: "v", Start: time.Unix(1, 0), Observations: []obs.Observation{
		{Time: time.Unix(1, 0), Vantage: "v", Name: "x.example", QType: 1, Flags: obs.FlagAA | 1<<7}}})
	var buf bytes.Buffer
	for _, p := range all {
		if err := Encode(&buf, p); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(all) {
		t.Fatalf("%d probes encoded as %d lines", len(all), len(lines))
	}
	for i, line := range lines {
		got, err := Decode([]byte(line))
		if err != nil {
			t.Fatalf("line %d: %v\n%s", i+1, err, line)
		}
		if want := storedForm(all[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, render([]obs.Probe{got}), render([]obs.Probe{want}))
		}
	}
}

// storedForm is p as the jsonl format keeps it: times in UTC, RTTs in
// whole microseconds, nil for empty answers.
func storedForm(p obs.Probe) obs.Probe {
	p.Start = p.Start.UTC()
	p.Observations = append([]obs.Observation(nil), p.Observations...)
	for i := range p.Observations {
		o := &p.Observations[i]
		o.Time = o.Time.UTC()
		o.RTT = o.RTT.Truncate(time.Microsecond)
		if len(o.Answer) == 0 {
			o.Answer = nil
		}
	}
	return p
}

// FuzzJSONL: whatever Decode accepts, Encode writes back to a line that
// decodes to the same probe.
func FuzzJSONL(f *testing.F) {
	for _, line := range strings.Split(readTestdata(f, "observations.jsonl"), "\n") {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p, err := Decode([]byte(line))
		if err != nil {
			return
		}
		if err := checkProbe(p); err != nil {
			t.Fatalf("Decode(%q) = %v", line, err)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, p); err != nil {
			t.Fatal(err)
		}
		again, err := Decode(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		if err != nil {
			t.Fatalf("re-decoding %s: %v", buf.Bytes(), err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip of %q:\n%s\n%s", line, render([]obs.Probe{p}), render([]obs.Probe{again}))
		}
	})
}
