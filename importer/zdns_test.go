package importer

import (
	"strings"
	"testing"
)

// TestZDNS reads zdns 2 output of the A, AAAA and NS modules (one at a
// time and together), a failed lookup, a SERVFAIL, both --all-nameservers layouts (a
// list of resolvers; per-layer iterative responses, of which the domain's
// own zone is kept), a zdns 1 line, an MX result (skipped) and bad lines.
func TestZDNS(t *testing.T) {
	r := readFile(t, "zdns.jsonl", ZDNS, Options{})
	sameText(t, "probes", render(r.probes), `
		flux.example @127.0.0.1:53 2026-11-27T09:00:01Z
		  flux.example A rcode=0 [] rtt=12.512ms ok: edge.flux.example A 180 198.51.100.7; edge.flux.example A 180 203.0.113.9; flux.example CNAME 180 edge.flux.example
		flux.example @127.0.0.1:53 2026-11-27T09:03:01Z
		  flux.example A rcode=0 [] rtt=3ms ok: flux.example A 180 198.51.100.8
		  flux.example AAAA rcode=0 [] rtt=4ms ok: flux.example AAAA 180 2001:db8::7
		flux.example @127.0.0.1:53 2026-11-27T09:06:01Z
		  flux.example NS rcode=0 [ra] rtt=7.1ms ok: flux.example NS 300 ns1.flux.example; flux.example NS 300 ns2.flux.example
		  ns1.flux.example A rcode=0 [ra] rtt=0s ok: ns1.flux.example A 300 198.51.100.53
		  ns2.flux.example AAAA rcode=0 [ra] rtt=0s ok: ns2.flux.example AAAA 300 2001:db8::53
		nothere.example @127.0.0.1:53 2026-11-27T09:06:02Z
		  nothere.example A rcode=3 [] rtt=30ms nxdomain:
		slow.example @zdns 2026-11-27T09:06:03Z
		  slow.example A rcode=0 [] rtt=15.000012s timeout:
		broken.example @127.0.0.1:53 2026-11-27T09:06:04Z
		  broken.example A rcode=2 [] rtt=50ms servfail:
		flux.example @192.0.2.1:53 2026-11-27T09:09:01Z
		  flux.example A rcode=0 [] rtt=21ms ok: flux.example A 180 198.51.100.9
		flux.example @192.0.2.2:53 2026-11-27T09:09:01Z
		  flux.example A rcode=0 [] rtt=21ms ok: flux.example A 180 203.0.113.10
		flux.example @198.51.100.53:53 2026-11-27T09:12:01Z
		  flux.example NS rcode=0 [] rtt=310ms ok: flux.example NS 300 ns1.flux.example
		  flux.example A rcode=0 [] rtt=310ms ok: flux.example A 180 198.51.100.11
		flux.example @203.0.113.53:53 2026-11-27T09:12:01Z
		  flux.example A rcode=0 [] rtt=310ms ok: flux.example A 180 203.0.113.12
		old.example @8.8.8.8:53 2019-03-04T10:15:00Z
		  old.example A rcode=0 [] rtt=0s ok: old.example A 300 192.0.2.80
		  old.example NS rcode=0 [] rtt=0s ok: old.example NS 53110 ns-cloud-e1.googledomains.com
		  ns-cloud-e1.googledomains.com A rcode=0 [] rtt=0s ok: ns-cloud-e1.googledomains.com A 34563 216.239.32.110
		after-errors.example @127.0.0.1:53 2026-11-27T09:15:03Z
		  after-errors.example A rcode=0 [] rtt=10ms ok: after-errors.example A 60 192.0.2.200
		`)
	sameText(t, "errors", strings.Join(r.errs, "\n")+"\n", `
		zdns.jsonl:11: result A: no "timestamp"
		zdns.jsonl:12: result A: record flux.example A "198.51.100.777": bad data
		zdns.jsonl:13: result A: status "BLACKLIST": no lookup was answered
		zdns.jsonl:14: not JSON: unexpected end of JSON input (at byte 38)
		`)
	if want := (Stats{Lines: 15, Probes: 12, Observations: 18, Errors: 4, Skipped: 1}); r.stats != want {
		t.Errorf("stats %+v; want %+v", r.stats, want)
	}
}

// TestZDNSVantageOption: with --vantage, the responses of one line are one
// probe through that vantage.
func TestZDNSVantageOption(t *testing.T) {
	line := `{"name":"flux.example","results":{"A":{"data":[{"answers":[{"answer":"198.51.100.9","class":"IN","name":"flux.example","ttl":180,"type":"A"}],"resolver":"192.0.2.1:53"},{"answers":[{"answer":"203.0.113.10","class":"IN","name":"flux.example","ttl":180,"type":"A"}],"resolver":"192.0.2.2:53"}],"status":"NOERROR","timestamp":"2026-11-27T09:09:01Z"}}}`
	r := readString(t, line, "x", ZDNS, Options{Vantage: "campus"})
	sameText(t, "probes", render(r.probes), `
		flux.example @campus 2026-11-27T09:09:01Z
		  flux.example A rcode=0 [] rtt=0s ok: flux.example A 180 198.51.100.9
		  flux.example A rcode=0 [] rtt=0s ok: flux.example A 180 203.0.113.10
		`)
}
