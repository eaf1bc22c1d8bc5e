package simnet_test

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/simnet"
)

// fast is a world clock speed at which the longest flux TTL (180 s) passes
// in 0.3 s of real time.
const fast = 600

func TestSingleFluxRotatesOverManyASNs(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 1, Speed: fast})
	d := firstOfKind(t, w, simnet.KindFluxA)
	seen := make(map[netip.Addr]bool)
	prev := make([][]netip.Addr, len(w.Vantages()))
	for round := range 4 {
		for i, v := range w.Vantages() {
			resp := query(t, v, "udp", d.Name, dns.TypeA)
			got := addrs(resp)
			if resp.Rcode != dns.RcodeSuccess || len(got) < 4 || len(got) > 10 {
				t.Fatalf("round %d vantage %d: rcode %s, %d addresses, want 4..10", round, i, dns.RcodeToString[resp.Rcode], len(got))
			}
			if ttl := ttlOf(t, resp); ttl > d.TTL {
				t.Errorf("TTL %d above the domain's %d", ttl, d.TTL)
			}
			if round > 0 && slices.Equal(got, prev[i]) {
				t.Errorf("round %d vantage %d: same addresses as the epoch before: %v", round, i, got)
			}
			prev[i] = got
			for _, a := range got {
				seen[a] = true
			}
		}
		sleep(t, w, seconds(d.TTL+1))
	}
	asns := make(map[uint32]bool)
	table := readASNTable(t, w)
	for a := range seen {
		asn, ok := w.ASNOf(a)
		if !ok {
			t.Fatalf("address %v has no ASN", a)
		}
		if got := table.lookup(a); got != asn {
			t.Errorf("ASN table maps %v to %d, ASNOf to %d", a, got, asn)
		}
		asns[asn] = true
	}
	if len(seen) < 40 || len(asns) < 5 {
		t.Errorf("saw %d addresses in %d ASNs over 4 epochs and %d vantages, want ≥ 40 in ≥ 5", len(seen), len(asns), len(w.Vantages()))
	}
}

func TestCDNStaysInsideTwoASNs(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 2, Speed: fast})
	asns := make(map[uint32]bool)
	seen := make(map[netip.Addr]bool)
	for _, d := range w.Domains() {
		if d.Kind != simnet.KindCDN {
			continue
		}
		for range 3 {
			for _, v := range w.Vantages() {
				resp := query(t, v, "udp", d.Name, dns.TypeA)
				cname, ok := resp.Answer[0].(*dns.CNAME)
				if !ok || !strings.Contains(cname.Target, ".edge.") {
					t.Fatalf("%s: answer does not start with a CNAME into a CDN edge zone:\n%v", d.Name, resp)
				}
				got := addrs(resp)
				if len(got) == 0 || len(got) != len(resp.Answer)-1 {
					t.Fatalf("%s: want the CNAME then A records:\n%v", d.Name, resp)
				}
				for _, rr := range resp.Answer[1:] {
					if rr.Header().Name != cname.Target {
						t.Errorf("A record owned by %s, want the CNAME target %s", rr.Header().Name, cname.Target)
					}
				}
				domainASNs := make(map[uint32]bool)
				for _, a := range got {
					asn, _ := w.ASNOf(a)
					domainASNs[asn], asns[asn], seen[a] = true, true, true
				}
				if len(domainASNs) > 2 {
					t.Errorf("%s: addresses in %d ASNs, want ≤ 2", d.Name, len(domainASNs))
				}
			}
			sleep(t, w, 21*time.Second)
		}
	}
	if len(seen) < 10 {
		t.Errorf("CDN names gave only %d distinct addresses", len(seen))
	}
	if d := firstOfKind(t, w, simnet.KindCDN); d.ASNs > 2 || d.TTL != 20 {
		t.Errorf("truth %+v: want ≤ 2 ASNs and TTL 20", d)
	}
}

func TestRoundRobinKeepsItsSet(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 3, Speed: fast})
	d := firstOfKind(t, w, simnet.KindRoundRobin)
	var want []netip.Addr
	for range 2 {
		for _, v := range w.Vantages() {
			got := addrs(query(t, v, "udp", d.Name, dns.TypeA))
			if want == nil {
				want = got
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: got %v, want the same set %v", d.Name, got, want)
			}
		}
		sleep(t, w, seconds(d.TTL+1))
	}
	if len(want) < 3 || len(want) > 5 {
		t.Errorf("%s has %d addresses, want 3..5", d.Name, len(want))
	}
}

func TestBrokenDomains(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 4})
	v := w.Vantages()[0]
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		soa   bool
	}{
		{firstOfKind(t, w, simnet.KindNXDomain).Name, dns.TypeA, dns.RcodeNameError, true},
		{"www." + firstOfKind(t, w, simnet.KindNXDomain).Name, dns.TypeA, dns.RcodeNameError, true},
		{firstOfKind(t, w, simnet.KindServfail).Name, dns.TypeA, dns.RcodeServerFailure, false},
		{firstOfKind(t, w, simnet.KindServfail).Name, dns.TypeNS, dns.RcodeServerFailure, false},
		{firstOfKind(t, w, simnet.KindNoData).Name, dns.TypeA, dns.RcodeSuccess, true},
		{firstOfKind(t, w, simnet.KindNoData).Name, dns.TypeAAAA, dns.RcodeSuccess, true},
		{"no-such-name.test", dns.TypeA, dns.RcodeNameError, true},
		{firstOfKind(t, w, simnet.KindStable).Name, dns.TypeMX, dns.RcodeSuccess, true},
	} {
		resp := query(t, v, "udp", tc.name, tc.qtype)
		if resp.Rcode != tc.rcode || len(resp.Answer) != 0 {
			t.Errorf("%s %s: rcode %s with %d answers, want %s and none", tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[resp.Rcode], len(resp.Answer), dns.RcodeToString[tc.rcode])
		}
		if gotSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA; gotSOA != tc.soa {
			t.Errorf("%s %s: authority %v, want SOA %v", tc.name, dns.TypeToString[tc.qtype], resp.Ns, tc.soa)
		}
	}
	if resp := query(t, v, "udp", firstOfKind(t, w, simnet.KindNoData).Name, dns.TypeNS); len(resp.Answer) != 2 {
		t.Errorf("nodata domain: want its 2 NS records, got %v", resp.Answer)
	}
}

func TestDoubleFluxNameServersRotate(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 5, Speed: fast})
	v := w.Vantages()[0]

	addrDomain := firstOfKind(t, w, simnet.KindFluxNSAddr)
	ns := query(t, v, "udp", addrDomain.Name, dns.TypeNS)
	if len(ns.Answer) != 4 {
		t.Fatalf("%s: want 4 NS records, got %v", addrDomain.Name, ns.Answer)
	}
	host := ns.Answer[0].(*dns.NS).Ns
	if !strings.HasSuffix(host, "."+addrDomain.Name+".") {
		t.Errorf("NS host %s is not under %s", host, addrDomain.Name)
	}

	nameDomain := firstOfKind(t, w, simnet.KindFluxNSName)
	hostAddrs := make(map[netip.Addr]bool)
	nsNames := make(map[string]bool)
	var prevHost []netip.Addr
	var prevNS []string
	changedHost, changedNS := 0, 0
	for round := range 4 {
		resp := query(t, v, "udp", host, dns.TypeA)
		got := addrs(resp)
		if len(got) == 0 {
			t.Fatalf("NS host %s has no address", host)
		}
		if round > 0 && !slices.Equal(got, prevHost) {
			changedHost++
		}
		prevHost = got
		for _, a := range got {
			hostAddrs[a] = true
		}

		var names []string
		for _, rr := range query(t, v, "udp", nameDomain.Name, dns.TypeNS).Answer {
			names = append(names, rr.(*dns.NS).Ns)
			nsNames[rr.(*dns.NS).Ns] = true
		}
		if len(names) < 2 || len(names) > 4 || names[0] == "" {
			t.Fatalf("%s: want 2..4 NS records, got %v", nameDomain.Name, names)
		}
		if round > 0 && !slices.Equal(names, prevNS) {
			changedNS++
		}
		prevNS = names
		sleep(t, w, 301*time.Second) // beyond the NS TTL and every host TTL
	}
	if changedHost < 2 || len(hostAddrs) < 4 {
		t.Errorf("%s: addresses changed %d times in 3 epochs, %d distinct", host, changedHost, len(hostAddrs))
	}
	if changedNS < 2 || len(nsNames) < 5 {
		t.Errorf("%s: NS set changed %d times in 3 epochs, %d distinct names", nameDomain.Name, changedNS, len(nsNames))
	}
	for h := range nsNames {
		if resp := query(t, v, "tcp", h, dns.TypeA); len(addrs(resp)) == 0 {
			t.Errorf("rotating NS host %s does not resolve", h)
		}
	}
}

func TestCacheServesUntilTTLExpires(t *testing.T) {
	t.Parallel()
	const speed = 120
	w := start(t, simnet.Config{Seed: 6, Speed: speed})
	d := firstOfKind(t, w, simnet.KindFluxA)
	v := w.Vantages()[1]
	ttl := seconds(d.TTL)

	// Fetch 3 simulated seconds before the rotation epoch ends, so the
	// second query falls in the next epoch but within the cached TTL.
	now := w.Now()
	wait := now.Truncate(ttl).Add(ttl).Sub(now) - 3*time.Second
	if wait < 0 {
		wait += ttl
	}
	sleep(t, w, wait)
	first := query(t, v, "udp", d.Name, dns.TypeA)
	if got := ttlOf(t, first); got != d.TTL {
		t.Errorf("fresh answer TTL %d, want the full %d", got, d.TTL)
	}
	sleep(t, w, 8*time.Second)
	second := query(t, v, "udp", d.Name, dns.TypeA)
	if !slices.Equal(addrs(first), addrs(second)) {
		t.Errorf("within the TTL the vantage answered %v, then %v", addrs(first), addrs(second))
	}
	if t1, t2 := ttlOf(t, first), ttlOf(t, second); t2 > t1-7 || t2 == 0 {
		t.Errorf("TTL went from %d to %d after 8 s, want it to drop by about 8", t1, t2)
	}
	sleep(t, w, ttl)
	third := query(t, v, "udp", d.Name, dns.TypeA)
	if slices.Equal(addrs(first), addrs(third)) {
		t.Errorf("after the TTL expired the vantage still answered %v", addrs(third))
	}
}

func TestResponsesAreWellFormed(t *testing.T) {
	t.Parallel()
	w := start(t, simnet.Config{Seed: 7})
	d := firstOfKind(t, w, simnet.KindStable)
	for _, network := range []string{"udp", "tcp"} {
		for _, edns := range []bool{false, true} {
			m := new(dns.Msg)
			m.SetQuestion(strings.ToUpper(d.Name)+".", dns.TypeA)
			if edns {
				m.SetEdns0(4096, true)
			}
			c := &dns.Client{Net: network, Timeout: 3 * time.Second}
			resp, _, err := c.Exchange(m, w.Vantages()[2])
			if err != nil {
				t.Fatalf("%s edns=%v: %v", network, edns, err)
			}
			if resp.Id != m.Id || !resp.Response || !resp.RecursionAvailable || !resp.RecursionDesired {
				t.Errorf("%s edns=%v: bad header %+v", network, edns, resp.MsgHdr)
			}
			if len(resp.Question) != 1 || resp.Question[0] != m.Question[0] {
				t.Errorf("%s edns=%v: question %v, want %v", network, edns, resp.Question, m.Question)
			}
			if len(resp.Answer) == 0 || resp.Answer[0].Header().Name != m.Question[0].Name {
				t.Errorf("%s edns=%v: answer %v not owned by the name as asked", network, edns, resp.Answer)
			}
			opt := resp.IsEdns0()
			if edns != (opt != nil) || (opt != nil && opt.UDPSize() != 1232) {
				t.Errorf("%s edns=%v: OPT %v, want one with size 1232 exactly when asked", network, edns, opt)
			}
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(d.Name+".", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	resp, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, w.Vantages()[0])
	if err != nil || resp.Rcode != dns.RcodeBadVers {
		t.Errorf("EDNS version 1: rcode %v, err %v; want BADVERS", resp, err)
	}
	if q := w.Queries(); q[2] != 4 || q[0] != 1 {
		t.Errorf("query counters %v, want 4 on vantage 2 and 1 on vantage 0", q)
	}
}

func TestContextEndsTheWorld(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	w, err := simnet.Start(ctx, simnet.Config{Seed: 8, Vantages: 1})
	if err != nil {
		t.Fatal(err)
	}
	addr := w.Vantages()[0]
	parent := "127.0.0.1:" + strconv.Itoa(w.ParentPort())
	cancel()
	if err := w.Close(); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	m := new(dns.Msg)
	m.SetQuestion("example.", dns.TypeSOA)
	for _, server := range []string{addr, parent} {
		if _, _, err := (&dns.Client{Net: "tcp", Timeout: 200 * time.Millisecond}).Exchange(m, server); err == nil {
			t.Errorf("%s still answers after Close", server)
		}
	}
	if err := w.Sleep(ctx, time.Hour); err == nil {
		t.Errorf("Sleep with a cancelled context returned nil")
	}
}

func TestServfailDelay(t *testing.T) {
	t.Parallel()
	const delay = 150 * time.Millisecond
	w := start(t, simnet.Config{Seed: 15, Vantages: 1, ServfailDelay: delay})
	name := firstOfKind(t, w, simnet.KindServfail).Name
	began := time.Now()
	if resp := query(t, w.Vantages()[0], "udp", name, dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if took := time.Since(began); took < delay {
		t.Errorf("SERVFAIL came after %v, want at least %v", took, delay)
	}
	if resp := query(t, w.Vantages()[0], "tcp", "www."+name, dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("name below a SERVFAIL domain: rcode %s", dns.RcodeToString[resp.Rcode])
	}

	// A delayed answer must not hold up Close.
	slow, err := simnet.Start(t.Context(), simnet.Config{Seed: 15, Vantages: 1, ServfailDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		m := new(dns.Msg)
		m.SetQuestion(name+".", dns.TypeA)
		(&dns.Client{Timeout: time.Second}).Exchange(m, slow.Vantages()[0])
	}()
	for deadline := time.Now().Add(3 * time.Second); slow.Queries()[0] == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the query never arrived")
		}
	}
	began = time.Now()
	if err := slow.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Close took %v with a delayed answer pending", took)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []simnet.Config{
		{Listen: "0.0.0.0"},
		{Listen: "192.0.2.1"},
		{Listen: "localhost"},
		{Speed: -1},
		{Speed: 2 * simnet.MaxSpeed},
		{Vantages: -1},
		{ServfailDelay: -time.Second},
		{Port: -1},
		{Port: 65533}, // the registry fits, the vantages do not
	} {
		if w, err := simnet.Start(t.Context(), cfg); err == nil {
			w.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}
