package classify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/storage"
)

// octetASN answers Cymru questions with AS 64500+second octet.
type octetASN struct{ asked int }

func (o *octetASN) Query(_ context.Context, _, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	o.asked++
	var a, b, c, d int
	fmt.Sscanf(name, "%d.%d.%d.%d.origin", &d, &c, &b, &a)
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	txt := fmt.Sprintf("%d | %d.%d.0.0/16 | DE | ripencc | 2020-01-01", 64500+b, a, b)
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{txt}}}
	return m, 0, nil
}

func TestRunStoresVerdictsAndUsesTheOnlineFallback(t *testing.T) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	store.AddDomains([]string{"x.test"}, "", t0)
	rng := rand.New(rand.NewPCG(31, 32))
	probes := world{rounds: 3, vantages: 3, ttl: 60, addrs: func(int, int) []string { return spread(rng, 30, 5) }}.probes("x.test")
	if _, err := store.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	q := &octetASN{}
	meta := &ipmeta.DB{}
	c := Classifier{Meta: meta, Fallback: &ipmeta.Cymru{Querier: q, Resolver: "127.0.0.1:53"}}
	meta.AddFallback(c.Fallback)
	var vs []Verdict
	counts, err := c.Run(context.Background(), store, time.Hour, t0.Add(time.Hour), func(v Verdict) error { vs = append(vs, v); return nil })
	if err != nil || counts[vs[0].Verdict] != 1 {
		t.Fatal(err, counts)
	}
	if len(vs) != 1 || vs[0].Features.ASNs == 0 || vs[0].Features.ASNs != vs[0].Features.Prefixes16 || vs[0].Features.Countries != 1 {
		t.Fatalf("verdicts %+v", vs)
	}
	if q.asked != vs[0].Features.Prefixes16 {
		t.Errorf("asked %d times for %d prefixes: the cache by prefix is not used", q.asked, vs[0].Features.Prefixes16)
	}
	var stored []Verdict
	err = Each(store, false, func(v Verdict) error { stored = append(stored, v); return nil })
	if err != nil || len(stored) != 1 || stored[0].Verdict != vs[0].Verdict || stored[0].Features.ASNs != vs[0].Features.ASNs {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if info, ok := meta.Lookup(netip.MustParseAddr(probes[0].Observations[0].Answer[0].Data)); !ok || info.ASN < 64500 {
		t.Fatalf("lookup after Run: %+v", info)
	}
}
