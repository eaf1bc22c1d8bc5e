package importer

import (
	"strings"
	"testing"
)

// TestDNSX reads dnsx -json lines: with "all" records (a CNAME chain; an NS
// answer whose glue dnsx also lists under "a"), with lists only (-omit-raw),
// with an older dnsx's "raw" text, a failed lookup, and bad lines.
func TestDNSX(t *testing.T) {
	r := readFile(t, "dnsx.jsonl", DNSX, Options{})
	sameText(t, "probes", render(r.probes), `
		flux.example @127.0.0.1:53 2026-11-27T09:00:01.123456789Z
		  flux.example A rcode=0 [] rtt=0s ok: edge.flux.example A 180 198.51.100.7; edge.flux.example A 179 203.0.113.9; flux.example CNAME 180 edge.flux.example
		flux.example @1.0.0.1:53 2026-11-27T09:03:01.5Z
		  flux.example A rcode=0 [] rtt=0s ok: flux.example A 0 198.51.100.8
		  flux.example AAAA rcode=0 [] rtt=0s ok: flux.example AAAA 0 2001:db8::8
		alias.example @1.0.0.1:53 2026-11-27T09:03:02Z
		  alias.example A rcode=0 [] rtt=0s ok: alias.cdn.example CNAME 300 edge.cdn.example; alias.example CNAME 300 alias.cdn.example; edge.cdn.example A 300 192.0.2.30; edge.cdn.example A 300 192.0.2.31
		flux.example @8.8.8.8:53 2026-11-27T09:06:01Z
		  flux.example NS rcode=0 [] rtt=0s ok: flux.example NS 300 ns1.flux.example; flux.example NS 300 ns2.flux.example
		  ns1.flux.example A rcode=0 [] rtt=0s ok: ns1.flux.example A 300 198.51.100.53
		nothere.example @1.1.1.1:53 2026-11-27T09:06:02Z
		  nothere.example A rcode=3 [] rtt=0s nxdomain:
		www.example @1.1.1.1:53 2026-11-27T09:06:03Z
		  www.example CNAME rcode=0 [] rtt=0s ok: www.example CNAME 3600 web.example
		after-errors.example @9.9.9.9:53 2026-11-27T09:06:07Z
		  after-errors.example A rcode=0 [] rtt=0s ok: after-errors.example A 0 192.0.2.200
		`)
	sameText(t, "errors", strings.Join(r.errs, "\n")+"\n", `
		dnsx.jsonl:7: no "host"
		dnsx.jsonl:8: no "timestamp"
		dnsx.jsonl:9: unknown status_code "WEIRD"
		dnsx.jsonl:10: record flux.example A "not-an-address": bad data
		dnsx.jsonl:11: bad time "yesterday"
		`)
	if want := (Stats{Lines: 12, Probes: 7, Observations: 9, Errors: 5}); r.stats != want {
		t.Errorf("stats %+v; want %+v", r.stats, want)
	}
}
