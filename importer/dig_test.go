package importer

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
)

// TestDigLog reads a log of dig runs as dig 9.11 to 9.18 print them: a CNAME
// chain, an NS answer with glue, both kinds of timeouts (stamped with the
// date(1) line before them), NXDOMAIN at a CET time, a record that does not
// parse, a line that is no dig output, and an answer with its NS set in
// the authority section through an IPv6 server.
func TestDigLog(t *testing.T) {
	r := readFile(t, "dig.log", Dig, Options{})
	sameText(t, "probes", render(r.probes), `
		flux.example @127.0.0.53:53 2026-11-27T09:00:01Z
		  flux.example A rcode=0 [ra] rtt=12ms ok: edge.flux.example A 179 192.0.2.44; edge.flux.example A 180 198.51.100.7; edge.flux.example A 180 203.0.113.9; flux.example CNAME 180 edge.flux.example
		flux.example @192.0.2.53:53 2026-11-27T09:00:02Z
		  flux.example NS rcode=0 [aa] rtt=0s ok: flux.example NS 300 ns1.flux.example; flux.example NS 300 ns2.flux.example
		  ns1.flux.example A rcode=0 [aa] rtt=0s ok: ns1.flux.example A 300 198.51.100.53
		  ns2.flux.example A rcode=0 [aa] rtt=0s ok: ns2.flux.example A 300 203.0.113.53
		  ns2.flux.example AAAA rcode=0 [aa] rtt=0s ok: ns2.flux.example AAAA 300 2001:db8::53
		flux.example @192.0.2.99:53 2026-11-27T09:03:00Z
		  flux.example A rcode=0 [] rtt=0s timeout:
		flux.example @192.0.2.99:53 2026-11-27T09:03:00Z
		  flux.example AAAA rcode=0 [] rtt=0s network:
		nothere.example @127.0.0.53:53 2026-11-27T09:03:05Z
		  nothere.example A rcode=3 [ra] rtt=31ms nxdomain:
		flux.example @[2001:db8::35]:53 2026-11-27T09:09:01Z
		  flux.example AAAA rcode=0 [ra] rtt=4ms ok: flux.example AAAA 180 2001:db8::7
		  flux.example NS rcode=0 [ra] rtt=0s ok: flux.example NS 300 ns1.flux.example; flux.example NS 300 ns2.flux.example
		  ns1.flux.example A rcode=0 [ra] rtt=0s ok: ns1.flux.example A 300 198.51.100.54
		`)
	sameText(t, "errors", strings.Join(r.errs, "\n")+"\n", `
		dig.log:97: bad record: dns: bad A A: "300.0.113.9"
		dig.log:104: not part of a dig output: "dig: couldn't get address for 'ns.broken.example': not found"
		`)
	if want := (Stats{Lines: 129, Probes: 6, Observations: 11, Errors: 2}); r.stats != want {
		t.Errorf("stats %+v; want %+v", r.stats, want)
	}
}

// TestDigLineEndings reads the same log with CRLF and CR line endings:
// the same probes, and errors on the same line numbers.
func TestDigLineEndings(t *testing.T) {
	lf := readFile(t, "dig.log", Dig, Options{})
	text := readTestdata(t, "dig.log")
	for name, eol := range map[string]string{"crlf": "\r\n", "cr": "\r"} {
		got := readString(t, strings.ReplaceAll(text, "\n", eol), "dig.log", Dig, Options{})
		if render(got.probes) != render(lf.probes) || !slices.Equal(got.errs, lf.errs) || got.stats != lf.stats {
			t.Errorf("%s: got\n%s%v %+v\nwant\n%s%v %+v", name, render(got.probes), got.errs, got.stats,
				render(lf.probes), lf.errs, lf.stats)
		}
	}
}

func TestDigVantageAndZoneOptions(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	run := `; <<>> DiG 9.18.18 <<>> flux.example
;; ->>HEADER<<- opcode: QUERY, status: SERVFAIL, id: 1
;; flags: qr rd ra; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 0
;; SERVER: 127.0.0.1#53(127.0.0.1)
;; WHEN: Thu Jan 15 03:00:00 CST 2026
;; MSG SIZE  rcvd: 30
`
	// CST is US Central or China Standard Time: not guessed.
	r := readString(t, run, "x.log", Dig, Options{})
	sameText(t, "without --tz", strings.Join(r.errs, "\n"), `x.log:5: time zone "CST" in "Thu Jan 15 03:00:00 CST 2026" is unknown or ambiguous: give the log's zone (--tz)`)
	if len(r.probes) != 0 {
		t.Errorf("a run without a time imported: %s", render(r.probes))
	}
	r = readString(t, run, "x.log", Dig, Options{Location: chicago, Vantage: "lab-resolver"})
	sameText(t, "with --tz and --vantage", render(r.probes), `
		flux.example @lab-resolver 2026-01-15T09:00:00Z
		  flux.example A rcode=2 [ra] rtt=0s servfail:
		`)
}

func TestDigRunsThatCannotBeImported(t *testing.T) {
	log := `; <<>> DiG 9.18.18 <<>> @192.0.2.99 flux.example A
;; global options: +cmd
;; no servers could be reached
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1
;; flags: qr rd ra; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 0

;; QUESTION SECTION:
;bad_name!.example.		IN	A

;; WHEN: Fri Nov 27 09:00:01 UTC 2026
;; MSG SIZE  rcvd: 30
;; connection timed out; no servers could be reached
; <<>> DiG 9.18.18 <<>> flux.example A
;; global options: +cmd
` + strings.Repeat("x", 200) + `
; <<>> DiG 9.18.18 <<>> flux.example A
;; global options: +cmd
;; WHEN: Fri Nov 27 09:00:09 UTC 2026
; <<>> DiG 9.18.18 <<>> -t NS ok.example
;; no servers could be reached
`
	r := readString(t, log, "x.log", Dig, Options{MaxLine: 100})
	sameText(t, "errors", strings.Join(r.errs, "\n")+"\n", `
		x.log:1: dig output without a ;; WHEN: line, and no earlier time in the log
		x.log:4: name "bad_name!.example.": invalid character '!'
		x.log:13: timed-out lookup without the dig command line: the question is unknown
		x.log:16: line longer than 100 bytes
		x.log:17: incomplete dig output: no ->>HEADER<<- line and no timeout
		`)
	// The last run timed out after the clock was set by the one before.
	sameText(t, "probes", render(r.probes), `
		ok.example @dig 2026-11-27T09:00:09Z
		  ok.example NS rcode=0 [] rtt=0s timeout:
		`)
}

func TestParseDate(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	for _, c := range []struct {
		in   string
		loc  *time.Location
		want string // UTC, or "error"
	}{
		{"Fri Nov 27 09:00:01 UTC 2026", time.UTC, "2026-11-27T09:00:01Z"},
		{"Fri Nov 27 09:00:01.25 GMT 2026", time.UTC, "2026-11-27T09:00:01.25Z"},
		{"Fri Jul  3 11:00:00 CEST 2026", time.UTC, "2026-07-03T09:00:00Z"},
		{"Fri Jul 3 05:00:00 EDT 2026", time.UTC, "2026-07-03T09:00:00Z"},
		{"Fri Jul 3 18:00:00 JST 2026", time.UTC, "2026-07-03T09:00:00Z"},
		{"Fri Jul 3 12:00:00 +03 2026", time.UTC, "2026-07-03T09:00:00Z"},
		{"Fri Jul 3 04:30:00 -0430 2026", time.UTC, "2026-07-03T09:00:00Z"},
		{"Fri Jul 3 11:00:00 2026", berlin, "2026-07-03T09:00:00Z"},
		{"Thu Jan 15 10:00:00 CET 2026", berlin, "2026-01-15T09:00:00Z"},
		{"Thu Jan 15 11:00:00 CEST 2026", berlin, "2026-01-15T09:00:00Z"}, // loc's other abbreviation
		{"Thu Jan 15 11:00:00 IST 2026", time.UTC, "error"},               // India, Ireland or Israel
		{"Thu Jan 15 11:00:00 XYZ 2026", time.UTC, "error"},
		{"Thu Jan 15 25:00:00 UTC 2026", time.UTC, "error"},
		{"Jan 15 11:00:00 UTC 2026", time.UTC, "error"},
		{"Xyz Jan 15 11:00:00 UTC 2026", time.UTC, "error"},
	} {
		got, err := parseDate(c.in, c.loc)
		s := "error"
		if err == nil {
			s = got.UTC().Format(time.RFC3339Nano)
		}
		if s != c.want {
			t.Errorf("parseDate(%q, %s) = %s (%v); want %s", c.in, c.loc, s, err, c.want)
		}
	}
}

// FuzzDig feeds arbitrary logs to the dig reader: it must not panic, and
// every probe it yields must be one storage accepts.
func FuzzDig(f *testing.F) {
	f.Add(readTestdata(f, "dig.log"))
	f.Add("; <<>> DiG 9 <<>> a.example\n;; no servers could be reached\n")
	f.Fuzz(func(t *testing.T, log string) {
		_, err := Read(strings.NewReader(log), "f", Dig, Options{MaxLine: 1 << 12}, func(p obs.Probe) error {
			return checkProbe(p)
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestDigRefusesZoneDirectives: a record line is parsed as one record,
// never as a zone file directive that would read another file.
func TestDigRefusesZoneDirectives(t *testing.T) {
	log := `; <<>> DiG 9.18.18 <<>> flux.example
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1
;; flags: qr rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0

;; ANSWER SECTION:
$INCLUDE /etc/hostname

;; WHEN: Fri Nov 27 09:00:01 UTC 2026
;; MSG SIZE  rcvd: 30
`
	r := readString(t, log, "x.log", Dig, Options{})
	sameText(t, "errors", strings.Join(r.errs, "\n"), `x.log:6: bad record: zone file directive "$INCLUDE /etc/hostname", not a record`)
	if len(r.probes) != 0 {
		t.Errorf("imported: %s", render(r.probes))
	}
}
