package crawler

import (
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// responses are packed answers of the kinds a crawl gets, and some the
// fast path must leave to the general parser.
func responses(t testing.TB) [][]byte {
	mk := func(name string, qtype uint16, edns bool, rcode int, rrs ...string) []byte {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		m := new(dns.Msg)
		m.SetReply(q)
		m.Rcode = rcode
		m.RecursionAvailable = true
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		if edns {
			m.SetEdns0(1232, false)
		}
		m.Compress = len(m.Answer) != 1 // both ways of writing the owner
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// An OPT record with an option (NSID) in it.
	withNSID := func(pkt []byte) []byte {
		var m dns.Msg
		if err := m.Unpack(pkt); err != nil {
			t.Fatal(err)
		}
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6e7331"})
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return [][]byte{
		withNSID(mk("nsid.test.", dns.TypeA, true, dns.RcodeSuccess, "nsid.test. 60 IN A 192.0.2.2")),
		mk("flux.test.", dns.TypeA, true, dns.RcodeSuccess, "flux.test. 60 IN A 192.0.2.1", "flux.test. 60 IN A 198.51.100.7"),
		mk("Flux.Test.", dns.TypeA, false, dns.RcodeSuccess, "Flux.Test. 0 IN A 192.0.2.1"),
		mk("flux.test.", dns.TypeAAAA, true, dns.RcodeSuccess, "flux.test. 300 IN AAAA 2001:db8::1"),
		mk("flux.test.", dns.TypeNS, true, dns.RcodeSuccess, "flux.test. 300 IN NS ns1.flux.test.", "flux.test. 300 IN NS ns.example."),
		mk("www.flux.test.", dns.TypeA, true, dns.RcodeSuccess, "www.flux.test. 60 IN CNAME flux.test.", "flux.test. 60 IN A 192.0.2.1"),
		mk("gone.test.", dns.TypeA, true, dns.RcodeNameError),
		mk("bad.test.", dns.TypeA, true, dns.RcodeBadVers), // extended rcode in the OPT record
		mk("txt.test.", dns.TypeTXT, true, dns.RcodeSuccess, `txt.test. 60 IN TXT "x"`),
		mk("odd\\ name.test.", dns.TypeA, false, dns.RcodeSuccess, "odd\\ name.test. 60 IN A 192.0.2.9"),
		mk(".", dns.TypeNS, false, dns.RcodeSuccess, ". 60 IN NS a.root-servers.test."),
	}
}

func TestUnpackAnswerMatchesUnpack(t *testing.T) {
	fast := 0
	for _, pkt := range responses(t) {
		var full dns.Msg
		if err := full.Unpack(pkt); err != nil {
			t.Fatal(err)
		}
		m, ok := unpackAnswer(pkt, full.Question[0].Name)
		if !ok {
			continue
		}
		fast++
		if !reflect.DeepEqual(m, &full) {
			t.Errorf("fast path differs:\n%v\nwant\n%v", m, &full)
		}
	}
	// A with an NSID option, A, the case-mixed A, AAAA, NS, NXDOMAIN,
	// BADVERS and the root: the CNAME chain, TXT and the escaped name take
	// the general way.
	if fast != 8 {
		t.Errorf("%d responses took the fast path; want 8", fast)
	}
	// Another question than the one asked never takes it.
	if _, ok := unpackAnswer(responses(t)[1], "other.test."); ok {
		t.Error("fast path took an answer to another question")
	}
	if _, ok := unpackAnswer(responses(t)[1], "flux.test"); ok {
		t.Error("fast path matched a name without its final dot")
	}
	// A name of 256 octets on the wire: Unpack refuses it, so must the
	// fast path, even when it is the name asked.
	long := strings.Repeat(strings.Repeat("a", 63)+".", 4)
	q := make([]byte, 12, 300)
	q[5] = 1 // one question
	for range 4 {
		q = append(q, 63)
		q = append(q, strings.Repeat("a", 63)...)
	}
	q = append(q, 0, 0, 1, 0, 1)
	if _, ok := unpackAnswer(q, long); ok {
		t.Error("fast path took a name over 255 octets")
	}
}

// Whatever the fast path accepts, the general parser reads the same way.
func FuzzUnpackAnswer(f *testing.F) {
	for _, pkt := range responses(f) {
		var m dns.Msg
		if err := m.Unpack(pkt); err != nil {
			f.Fatal(err)
		}
		f.Add(pkt, m.Question[0].Name) // the name asked: the fast path's way in
	}
	f.Fuzz(func(t *testing.T, pkt []byte, asked string) {
		m, ok := unpackAnswer(pkt, asked)
		if !ok {
			return
		}
		var full dns.Msg
		if err := full.Unpack(pkt); err != nil {
			t.Fatalf("fast path took what Unpack refuses (%v): %x", err, pkt)
		}
		if !reflect.DeepEqual(m, &full) {
			t.Fatalf("fast path differs:\n%v\nwant\n%v", m, &full)
		}
		if _, ok := dns.IsDomainName(asked); !ok || !dns.IsFqdn(asked) {
			t.Fatalf("fast path took the name %q", asked)
		}
	})
}
