// Command responder is the benchmark's stand-in for a recursive resolver
// that is asked about a seed list of mostly dead names. It answers the
// names n000000.ZONE, n000001.ZONE, ... (-names of them) over UDP: a share
// (-dead) it never answers, a share (-slow) it answers after -slow-delay,
// the rest at once, and every answer after -delay more. Which names are
// dead is fixed by -order: "random" spreads them by a hash of the index,
// "dead-first" gives the lowest indexes (the first in name order) to the
// dead ones, then the slow ones.
//
// It also answers what a full probe asks besides: AAAA and NS of every
// name (ns1.ZONE and ns2.ZONE, with A and AAAA), the root's SOA (the
// crawler's canary), the NS of ZONE's parent (ns.PARENT at -listen's
// address) and, to a query without recursion, ZONE's referral with glue.
// Anything else is NXDOMAIN.
//
// It prints "listening ADDR:PORT" on standard output once it is ready and
// runs until it is killed. Benchmarks only: it serves loopback.
package main

import (
	"flag"
	"fmt"
	"hash/fnv"
	"log"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func main() {
	listen := flag.String("listen", "127.0.0.54:0", "loopback `address:port` to serve on (port 0: any free one)")
	zone := flag.String("zone", "mix.test", "zone of the names")
	names := flag.Int("names", 10000, "number of names n000000.ZONE ...")
	dead := flag.Float64("dead", 0.3, "share of names never answered")
	slow := flag.Float64("slow", 0.1, "share of names answered after -slow-delay")
	slowDelay := flag.Duration("slow-delay", 800*time.Millisecond, "delay of the slow names' answers")
	delay := flag.Duration("delay", 0, "delay added to every answer")
	order := flag.String("order", "random", "which names are dead: random or dead-first")
	flag.Parse()
	if *order != "random" && *order != "dead-first" {
		log.Fatalf("-order %q: want random or dead-first", *order)
	}
	ap, err := netip.ParseAddrPort(*listen)
	if err != nil || !ap.Addr().IsLoopback() {
		log.Fatalf("-listen %q: want a loopback address:port", *listen)
	}
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	r := &responder{
		zone: dns.Fqdn(strings.ToLower(*zone)), names: *names, dead: *dead, slow: *slow,
		slowDelay: *slowDelay, delay: *delay, deadFirst: *order == "dead-first", self: ap.Addr().String(),
	}
	r.parent = r.zone[strings.Index(r.zone, ".")+1:]
	fmt.Println("listening", pc.LocalAddr())
	os.Stdout.Sync()
	buf := make([]byte, 4096)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		q := new(dns.Msg)
		if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
			continue
		}
		m, wait, ok := r.answer(q)
		if !ok {
			continue // dead: never answered
		}
		b, err := m.Pack()
		if err != nil {
			continue
		}
		if wait <= 0 {
			pc.WriteTo(b, from)
			continue
		}
		time.AfterFunc(wait, func() { pc.WriteTo(b, from) })
	}
}

type responder struct {
	zone, parent     string // FQDNs, lower case
	names            int
	dead, slow       float64
	slowDelay, delay time.Duration
	deadFirst        bool
	self             string // the address the parent's server has
}

// class says how name number i is answered: 0 at once, 1 slowly, 2 never.
func (r *responder) class(i int) int {
	var x float64
	if r.deadFirst {
		x = float64(i) / float64(r.names)
	} else {
		h := fnv.New64a()
		fmt.Fprint(h, i)
		x = float64(h.Sum64()%1_000_000) / 1_000_000
	}
	switch {
	case x < r.dead:
		return 2
	case x < r.dead+r.slow:
		return 1
	}
	return 0
}

// index returns i of nIIIIII.ZONE, or -1.
func (r *responder) index(name string) int {
	label, rest, ok := strings.Cut(name, ".")
	if !ok || rest != r.zone || len(label) < 2 || label[0] != 'n' {
		return -1
	}
	i, err := strconv.Atoi(label[1:])
	if err != nil || i < 0 || i >= r.names {
		return -1
	}
	return i
}

func (r *responder) answer(q *dns.Msg) (m *dns.Msg, wait time.Duration, ok bool) {
	m = new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = q.RecursionDesired
	qn := strings.ToLower(q.Question[0].Name)
	qt := q.Question[0].Qtype
	rr := func(s string) {
		x, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		m.Answer = append(m.Answer, x)
	}
	wait = r.delay
	switch i := r.index(qn); {
	case i >= 0:
		switch r.class(i) {
		case 2:
			return nil, 0, false
		case 1:
			wait += r.slowDelay
		}
		switch qt {
		case dns.TypeA:
			rr(fmt.Sprintf("%s 300 IN A 10.%d.%d.%d", qn, i>>16&0xff, i>>8&0xff, i&0xff))
		case dns.TypeAAAA:
			rr(fmt.Sprintf("%s 300 IN AAAA 2001:db8::%x", qn, i))
		case dns.TypeNS:
			rr(qn + " 3600 IN NS ns1." + r.zone)
			rr(qn + " 3600 IN NS ns2." + r.zone)
		}
	case qn == "ns1."+r.zone || qn == "ns2."+r.zone:
		k := qn[2] - '0'
		switch qt {
		case dns.TypeA:
			rr(fmt.Sprintf("%s 3600 IN A 10.255.255.%d", qn, k))
		case dns.TypeAAAA:
			rr(fmt.Sprintf("%s 3600 IN AAAA 2001:db8:ffff::%d", qn, k))
		}
	case qn == "." && qt == dns.TypeSOA:
		rr(". 86400 IN SOA a.root.test. hostmaster.test. 1 1800 900 604800 86400")
	case qn == r.parent && qt == dns.TypeNS:
		rr(r.parent + " 86400 IN NS ns." + r.parent)
	case qn == "ns."+r.parent:
		if qt == dns.TypeA {
			rr("ns." + r.parent + " 86400 IN A " + r.self)
		}
	case qn == r.zone && qt == dns.TypeNS && !q.RecursionDesired:
		// The parent's referral: authority and glue, not an answer.
		for k := 1; k <= 2; k++ {
			ns, _ := dns.NewRR(fmt.Sprintf("%s 3600 IN NS ns%d.%s", r.zone, k, r.zone))
			glue, _ := dns.NewRR(fmt.Sprintf("ns%d.%s 3600 IN A 10.255.255.%d", k, r.zone, k))
			m.Ns, m.Extra = append(m.Ns, ns), append(m.Extra, glue)
		}
	case qn == r.zone:
	default:
		m.Rcode = dns.RcodeNameError
	}
	return m, wait, true
}
