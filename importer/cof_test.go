package importer

import (
	"strings"
	"testing"
)

// TestCOF reads passive DNS records in the Common Output Format: each
// becomes a passive observation at its first and at its last time (one when
// they are equal), through the sensor as vantage; other types are skipped.
func TestCOF(t *testing.T) {
	r := readFile(t, "cof.jsonl", COF, Options{Source: "dnsdb"})
	sameText(t, "probes", render(r.probes), `
		flux.example @pdns:circl-1 2026-11-27T09:00:01Z
		  flux.example A rcode=0 [passive] rtt=0s ok: flux.example A 0 198.51.100.7; flux.example A 0 203.0.113.9
		flux.example @pdns:circl-1 2026-11-27T10:00:01Z
		  flux.example A rcode=0 [passive] rtt=0s ok: flux.example A 0 198.51.100.7; flux.example A 0 203.0.113.9
		flux.example @pdns:dnsdb 2026-11-27T09:00:01Z
		  flux.example NS rcode=0 [passive] rtt=0s ok: flux.example NS 0 ns1.flux.example
		www.flux.example @pdns:7 2026-11-27T09:01:40Z
		  www.flux.example CNAME rcode=0 [passive] rtt=0s ok: www.flux.example CNAME 0 flux.example
		www.flux.example @pdns:7 2026-11-27T09:03:20Z
		  www.flux.example CNAME rcode=0 [passive] rtt=0s ok: www.flux.example CNAME 0 flux.example
		zone.example @pdns:dnsdb 2026-11-26T13:33:20Z
		  zone.example AAAA rcode=0 [passive] rtt=0s ok: zone.example AAAA 0 2001:db8::1
		after-errors.example @pdns:dnsdb 2026-11-27T10:00:00Z
		  after-errors.example A rcode=0 [passive] rtt=0s ok: after-errors.example A 0 192.0.2.200
		`)
	sameText(t, "errors", strings.Join(r.errs, "\n")+"\n", `
		cof.jsonl:6: rdata "300.1.2.3" is not an A address
		cof.jsonl:7: time_last 2026-11-27T09:00:01Z is before time_first 2026-11-27T10:00:01Z
		cof.jsonl:8: no "rrname"
		cof.jsonl:9: name "*.flux.example": wildcard not allowed
		cof.jsonl:10: no "time_first" or "time_last"
		cof.jsonl:11: bad rdata []: want a string or a list of strings
		`)
	if want := (Stats{Lines: 12, Probes: 7, Observations: 7, Errors: 6, Skipped: 1}); r.stats != want {
		t.Errorf("stats %+v; want %+v", r.stats, want)
	}
	// Without a source, records without a sensor are "pdns:cof"; a
	// vantage given replaces the sensor.
	r = readString(t, `{"rrname":"a.example","rrtype":"A","rdata":"192.0.2.1","time_first":1795770001,"time_last":1795770001}`, "x", COF, Options{})
	if len(r.probes) != 1 || r.probes[0].Vantage != "pdns:cof" {
		t.Errorf("default vantage: %s", render(r.probes))
	}
	r = readString(t, `{"rrname":"a.example","rrtype":"A","rdata":"192.0.2.1","time_first":1795770001,"time_last":1795770001,"sensor_id":"s"}`, "x", COF, Options{Vantage: "pdns:mine"})
	if len(r.probes) != 1 || r.probes[0].Vantage != "pdns:mine" || r.probes[0].Observations[0].Vantage != "pdns:mine" {
		t.Errorf("--vantage: %s", render(r.probes))
	}
}
