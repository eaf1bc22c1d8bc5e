package results_test

import (
	"bufio"
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/storage"
)

// historyStore opens a store in a temporary directory holding flux.test
// (two probes through two vantages) and quiet.test (never measured).
func historyStore(t *testing.T) *storage.Store {
	t.Helper()
	s, err := storage.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		s.Close()
	})
	if _, err := s.AddDomains([]string{"flux.test", "quiet.test"}, "unit", t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	a := func(name string, ttl uint32, addrs ...string) []obs.Record {
		var rs []obs.Record
		for _, ad := range addrs {
			rs = append(rs, obs.Record{Name: name, Type: dns.TypeA, TTL: ttl, Data: ad})
		}
		return rs
	}
	probe := func(vantage string, at time.Time, answer []obs.Record) obs.Probe {
		obs.Sort(answer)
		return obs.Probe{Domain: "flux.test", Vantage: vantage, Start: at, Observations: []obs.Observation{
			{Time: at.Add(2 * time.Millisecond), Vantage: vantage, Name: "flux.test", QType: dns.TypeA, Flags: obs.FlagRA,
				RTT: 1500 * time.Microsecond, Answer: answer},
			{Time: at.Add(3 * time.Millisecond), Vantage: vantage, Name: "flux.test", QType: dns.TypeAAAA,
				Rcode: dns.RcodeServerFailure, Err: obs.ServFail},
			{Time: at.Add(4 * time.Millisecond), Vantage: vantage, Name: "flux.test", QType: dns.TypeNS, Flags: obs.FlagRA,
				Answer: []obs.Record{{Name: "flux.test", Type: dns.TypeNS, TTL: 3600, Data: "ns1.host.test"}}},
			{Time: at.Add(5 * time.Millisecond), Vantage: vantage, Name: "ns1.host.test", QType: dns.TypeA, Flags: obs.FlagRA | obs.FlagAA,
				Answer: a("ns1.host.test", 300, "192.0.2.53")},
			{Time: at.Add(6 * time.Millisecond), Vantage: vantage, Name: "ns1.host.test", QType: dns.TypeAAAA, Flags: obs.FlagRA},
		}}
	}
	cname := append([]obs.Record{{Name: "flux.test", Type: dns.TypeCNAME, TTL: 120, Data: "edge.cdn.test"}},
		a("edge.cdn.test", 20, "203.0.113.7", "198.51.100.9")...)
	probes := []obs.Probe{
		probe("127.0.0.1:5301", t0, a("flux.test", 60, "198.51.100.1", "203.0.113.5", "192.0.2.10")),
		probe("[::1]:5302", t0.Add(90*time.Second), cname),
	}
	if _, err := s.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWriteHistoryText(t *testing.T) {
	s := historyStore(t)
	verdict := &classify.Verdict{Domain: "flux.test", Verdict: classify.SingleFlux, Score: 0.62, Evidence: "5 addresses in 4 networks"}
	var buf bytes.Buffer
	if err := results.WriteHistory(&buf, s, "flux.test", time.Time{}, verdict, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	golden(t, "history", buf.Bytes())
	for _, want := range []string{
		"flux.test  first seen 2026-03-01T11:00:00Z  sources unit\n",
		"verdict: single-flux (score 0.62) 5 addresses in 4 networks\n",
		"  via 127.0.0.1:5301\n",
		"  via [::1]:5302\n",
		"  A     192.0.2.10 198.51.100.1 203.0.113.5 ttl 60s\n",
		"  AAAA  servfail\n",
		"  NS    ns1.host.test ttl 3600s\n",
		"  ns1.host.test A     192.0.2.53 ttl 300s\n",
		"  ns1.host.test AAAA  (no records)\n",
		// A CNAME answer shows both RRsets with their own TTLs.
		"flux.test CNAME edge.cdn.test ttl 120s",
		"198.51.100.9 203.0.113.7 ttl 20s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "127.0.0.1:5301"), strings.Index(out, "[::1]:5302"); i > j {
		t.Errorf("probes not in time order:\n%s", out)
	}

	// from selects by start time; without a verdict there is no verdict line.
	buf.Reset()
	if err := results.WriteHistory(&buf, s, "flux.test", t0.Add(time.Minute), nil, false); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); strings.Contains(out, "127.0.0.1:5301") || !strings.Contains(out, "[::1]:5302") || strings.Contains(out, "verdict:") {
		t.Errorf("history from t0+1m:\n%s", out)
	}

	buf.Reset()
	if err := results.WriteHistory(&buf, s, "quiet.test", time.Time{}, nil, false); err != nil {
		t.Fatal(err)
	}
	if want := "quiet.test  first seen 2026-03-01T11:00:00Z  sources unit\nno measurements yet\n"; buf.String() != want {
		t.Errorf("history of an unmeasured domain:\n%q\nwant\n%q", buf.String(), want)
	}
}

// show --json writes the probes in the one JSON form of observations,
// the one `import --format jsonl` reads: each line decodes to the probe
// as stored.
func TestWriteHistoryJSON(t *testing.T) {
	s := historyStore(t)
	var buf bytes.Buffer
	if err := results.WriteHistory(&buf, s, "flux.test", time.Time{}, &classify.Verdict{Verdict: classify.Benign}, true); err != nil {
		t.Fatal(err)
	}
	golden(t, "history_jsonl", buf.Bytes())

	var stored []obs.Probe
	if err := s.History("flux.test", time.Time{}, time.Time{}, func(p obs.Probe) error { stored = append(stored, p); return nil }); err != nil {
		t.Fatal(err)
	}
	var read []obs.Probe
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		p, err := importer.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		read = append(read, p)
	}
	if len(read) != 2 || !reflect.DeepEqual(read, stored) {
		t.Errorf("show --json read back:\n%+v\nwant the stored probes:\n%+v", read, stored)
	}
}

func TestWriteHistoryUnknownDomain(t *testing.T) {
	s := historyStore(t)
	for _, asJSON := range []bool{false, true} {
		var buf bytes.Buffer
		err := results.WriteHistory(&buf, s, "nope.test", time.Time{}, nil, asJSON)
		if err == nil || err.Error() != "nope.test is not a seeded domain" {
			t.Errorf("WriteHistory(unknown, json=%v) = %v", asJSON, err)
		}
		if buf.Len() != 0 {
			t.Errorf("WriteHistory(unknown, json=%v) wrote %q", asJSON, buf.String())
		}
	}
}
