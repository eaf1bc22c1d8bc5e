package results_test

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/results"
)

// rpzTriggers parses an RPZ and returns its triggers below origin by kind:
// "qname" (owner names as written), "rpz-nsdname" (the name servers'
// names), "rpz-ip" and "rpz-nsip" (the addresses, decoded). Every record
// must be CNAME . and every address trigger in BIND's canonical form.
func rpzTriggers(t *testing.T, zone []byte, origin string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	zp := dns.NewZoneParser(bytes.NewReader(zone), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		cname, isCNAME := rr.(*dns.CNAME)
		if !isCNAME {
			continue // SOA and NS
		}
		if cname.Target != "." {
			t.Errorf("%s: CNAME %s, want .", rr.Header().Name, cname.Target)
		}
		owner, ok := strings.CutSuffix(rr.Header().Name, "."+origin+".")
		if !ok {
			t.Errorf("%s is not below %s", rr.Header().Name, origin)
			continue
		}
		labels := strings.Split(owner, ".")
		switch kind := labels[len(labels)-1]; kind {
		case "rpz-nsdname":
			out[kind] = append(out[kind], strings.Join(labels[:len(labels)-1], "."))
		case "rpz-ip", "rpz-nsip":
			a, err := decodeRPZIP(labels[:len(labels)-1])
			if err != nil {
				t.Errorf("%s: %v", owner, err)
				continue
			}
			out[kind] = append(out[kind], a.String())
		default:
			if strings.HasPrefix(kind, "rpz-") {
				t.Errorf("unexpected trigger %s", owner)
			}
			out["qname"] = append(out["qname"], owner)
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parsing RPZ: %v\n%s", err, zone)
	}
	return out
}

// decodeRPZIP reads the labels of an rpz-ip or rpz-nsip trigger for one
// address (a /32 or /128), as BIND's name2ipkey does, and checks that they
// are in the canonical form BIND writes: the words of RFC 5952's text
// form reversed, its :: written zz.
func decodeRPZIP(labels []string) (netip.Addr, error) {
	bad := func(why string) (netip.Addr, error) {
		return netip.Addr{}, errors.New(strings.Join(labels, ".") + ": " + why)
	}
	if len(labels) == 5 && labels[0] == "32" {
		var b [4]byte
		for i, l := range labels[1:] {
			n, err := strconv.ParseUint(l, 10, 8)
			if err != nil || strconv.FormatUint(n, 10) != l {
				return bad("octet " + l)
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), nil
	}
	if len(labels) < 2 || labels[0] != "128" {
		return bad("prefix length")
	}
	words := slices.Clone(labels[1:])
	slices.Reverse(words)
	zz := slices.Index(words, "zz")
	if zz >= 0 && slices.Index(words[zz+1:], "zz") >= 0 || zz < 0 && len(words) != 8 || len(words) > 8 {
		return bad("words")
	}
	var b [16]byte
	i := 0
	for _, w := range words {
		if w == "zz" {
			i += 2 * (9 - len(words))
			continue
		}
		n, err := strconv.ParseUint(w, 16, 16)
		if err != nil || strconv.FormatUint(n, 16) != w {
			return bad("word " + w)
		}
		b[i], b[i+1] = byte(n>>8), byte(n)
		i += 2
	}
	a := netip.AddrFrom16(b)
	text := strings.Join(words, ":")
	if zz >= 0 {
		text = strings.Replace(text, "zz", "", 1)
		if zz == 0 {
			text = ":" + text
		}
		if zz == len(words)-1 {
			text += ":"
		}
	}
	if a.Is4In6() || a.String() != text {
		return bad("not canonical: " + text + ", want " + a.String())
	}
	return a, nil
}

func TestDecodeRPZIP(t *testing.T) {
	// The examples of BIND's documentation and source.
	for name, want := range map[string]string{
		"32.1.2.0.192":            "192.0.2.1",
		"128.1.zz.db8.2001":       "2001:db8::1",
		"128.1.0.0.1.zz.db8.2001": "2001:db8::1:0:0:1",
		"128.zz.db8.2001":         "2001:db8::",
		"128.1.zz":                "::1",
		"128.0.4.0.3.0.2.0.1":     "1:0:2:0:3:0:4:0",
	} {
		if a, err := decodeRPZIP(strings.Split(name, ".")); err != nil || a.String() != want {
			t.Errorf("decodeRPZIP(%s) = %v, %v; want %s", name, a, err, want)
		}
	}
	for _, name := range []string{"128.1.0.0.1.0.0.db8.2001", "128.1.0.0.zz.1.db8.2001", "128.0001.zz.db8.2001", "32.1.2.0.0192", "24.1.2.0.192", "128.zz.1.zz"} {
		if a, err := decodeRPZIP(strings.Split(name, ".")); err == nil {
			t.Errorf("decodeRPZIP(%s) = %v, want an error", name, a)
		}
	}
}

func TestWriteRPZTriggers(t *testing.T) {
	nsNames := []string{"ns1.flux-dns.test", "ns2.flux-dns.test"} // normalised; "bad name.flux-dns.test" left out
	tests := []struct {
		name                    string
		opts                    results.Options
		nsdname, ip, nsip       []string
		origin, checkzoneOrigin string
	}{
		{"default", results.Options{}, nsNames, nil, nil, "fluxwatch.rpz", "fluxwatch.rpz"},
		{"ip triggers", results.Options{RPZIPTriggers: true}, nsNames, wantAgents, wantNS, "fluxwatch.rpz", "fluxwatch.rpz"},
		{"zone", results.Options{RPZIPTriggers: true, Zone: "rpz.example.test."}, nsNames, wantAgents, wantNS, "rpz.example.test", "rpz.example.test"},
		// fastflux-b.test (0.5) is single flux: its name server never becomes a trigger.
		{"every verdict", results.Options{RPZIPTriggers: true, MinConfidence: -1}, nsNames,
			[]string{"192.0.2.10", "192.0.2.99", "198.51.100.7", "203.0.113.5", "203.0.113.77", "2001:db8::10", "2001:db8::1:0:0:1", "2001:db8:0:1::2"},
			wantNS, "fluxwatch.rpz", "fluxwatch.rpz"},
		{"above every verdict", results.Options{RPZIPTriggers: true, MinConfidence: 0.96}, nil, nil, nil, "fluxwatch.rpz", "fluxwatch.rpz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := write(t, "rpz", agentVerdicts(), tt.opts)
			got := rpzTriggers(t, out, tt.origin)
			var qnames []string
			for _, n := range listedNames {
				qnames = append(qnames, n, "*."+n) // every listed name, whatever its confidence
			}
			for kind, want := range map[string][]string{"qname": qnames, "rpz-nsdname": tt.nsdname, "rpz-ip": tt.ip, "rpz-nsip": tt.nsip} {
				if !slices.Equal(got[kind], want) {
					t.Errorf("%s triggers:\n got %q\nwant %q", kind, got[kind], want)
				}
			}
			checkZone(t, tt.checkzoneOrigin, out)
		})
	}
}

// Names and addresses that come from a flux domain's own DNS answers must
// neither break the zone nor stop it: unsafe name servers are left out.
func TestWriteRPZUnsafeNameServers(t *testing.T) {
	v := classify.Verdict{Domain: "d.test", Verdict: classify.DoubleFlux, Listing: listing, Confidence: 1,
		NameServers: []string{"ok.ns.test", "evil.test\n@ NS attacker.test.", "a b.test", "x;y.test", "*.ns.test", "",
			"..", "ns.test.rpz-ip", longName(250), "UPPER.NS.TEST."}}
	out := write(t, "rpz", []classify.Verdict{v}, results.Options{Serial: 1})
	got := rpzTriggers(t, out, "fluxwatch.rpz")
	// ns.test.rpz-ip stays a name server name: below rpz-nsdname, its last label means nothing.
	if want := []string{"ns.test.rpz-ip", "ok.ns.test", "upper.ns.test"}; !slices.Equal(got["rpz-nsdname"], want) {
		t.Errorf("nsdname triggers %q, want %q", got["rpz-nsdname"], want)
	}
	checkZone(t, "fluxwatch.rpz", out)
}

func TestWriteRPZRefuses(t *testing.T) {
	// A listed name whose last label begins with rpz- would be read as a
	// trigger of another kind (here: block answers holding 127.0.0.1).
	for _, name := range []string{"32.1.0.0.127.rpz-ip", "ns.evil.rpz-nsdname", "x.rpz-client-ip", "rpz-drop"} {
		vs := []classify.Verdict{{Domain: name, Verdict: classify.SingleFlux, Listing: listing}}
		if _, err := tryWrite(t, "rpz", vs, results.Options{}); !errors.Is(err, results.ErrBadName) {
			t.Errorf("rpz with %q = %v, want ErrBadName", name, err)
		}
		if got := string(write(t, "domains", vs, results.Options{})); got != name+"\n" {
			t.Errorf("domains with %q: %q", name, got)
		}
	}
	// rpz-ip triggers need room below the zone's name.
	zone := longName(201)
	if _, err := tryWrite(t, "rpz", agentVerdicts(), results.Options{Zone: zone, RPZIPTriggers: true}); !errors.Is(err, results.ErrBadName) {
		t.Errorf("rpz-ip triggers below a %d-octet zone = %v, want ErrBadName", len(zone), err)
	}
	zone = longName(200)
	out := write(t, "rpz", []classify.Verdict{{Domain: "a.b", Verdict: classify.DoubleFlux, Listing: listing, Confidence: 1,
		Agents: []string{"2a00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, NSAgents: []string{"2a00:ffff:ffff:ffff:ffff:ffff:ffff:fffe"}}},
		results.Options{Zone: zone, RPZIPTriggers: true})
	if got := rpzTriggers(t, out, zone); len(got["rpz-ip"]) != 1 || len(got["rpz-nsip"]) != 1 {
		t.Errorf("the longest address triggers below a %d-octet zone: %v", len(zone), got)
	}
	checkZone(t, zone, out)
}

// Every shape of zero runs in an IPv6 address comes back from its rpz-ip
// trigger, in canonical form.
func TestRPZIPTriggersRoundTrip(t *testing.T) {
	var agents, want []string
	for mask := range 1 << 7 { // which of the last seven words are zero
		b := [16]byte{0x2a, 0x00}
		for w := 1; w < 8; w++ {
			if mask&(1<<(w-1)) != 0 {
				b[2*w], b[2*w+1] = byte(w), 0x0f // a word without leading zeros, and one with
			}
		}
		a := netip.AddrFrom16(b)
		agents = append(agents, a.StringExpanded()) // not the canonical text: the writer must canonicalise
		want = append(want, a.String())
	}
	agents = append(agents, "::ffff:198.51.100.1", "1.2.3.4", "0.0.0.0", "255.255.255.255")
	want = append([]string{"1.2.3.4", "198.51.100.1"}, want...)
	slices.SortFunc(want, func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) })
	v := classify.Verdict{Domain: "d.test", Verdict: classify.DoubleFlux, Listing: listing, Confidence: 1, Agents: agents, NSAgents: agents}
	out := write(t, "rpz", []classify.Verdict{v}, results.Options{RPZIPTriggers: true})
	got := rpzTriggers(t, out, "fluxwatch.rpz")
	if !slices.Equal(got["rpz-ip"], want) || !slices.Equal(got["rpz-nsip"], want) {
		t.Errorf("address triggers:\n got %q\n and %q\nwant %q", got["rpz-ip"], got["rpz-nsip"], want)
	}
	checkZone(t, "fluxwatch.rpz", out)
}

// TestRPZTriggersInBIND loads an RPZ with every kind of trigger into BIND
// (named, on loopback, authoritative for a root zone of its own so that it
// resolves without the internet) and asks it: the listed names, and the
// names whose answers hold a listed agent address, are NXDOMAIN; others
// resolve. BIND logs every trigger it finds invalid or not canonical.
func TestRPZTriggersInBIND(t *testing.T) {
	named := tool(t, "named", "bind9")
	dir := t.TempDir()
	zone := write(t, "rpz", agentVerdicts(), results.Options{Serial: 5, RPZIPTriggers: true})
	root := `$TTL 300
. IN SOA ns.root.test. hostmaster.root.test. 1 3600 600 604800 300
. IN NS ns.root.test.
ns.root.test. IN A 127.0.0.1
a-fast.test. IN A 198.51.100.200
www.a-fast.test. IN A 198.51.100.200
clean.test. IN A 198.51.100.200
agent.test. IN A 192.0.2.10
agent6.test. IN AAAA 2001:db8::1:0:0:1
low.test. IN A 192.0.2.99
private.test. IN A 10.0.0.1
`
	port := freePort(t)
	conf := `options {
	directory "` + dir + `";
	pid-file none;
	session-keyfile none;
	listen-on port ` + strconv.Itoa(port) + ` { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	allow-query { 127.0.0.1; };
	dnssec-validation no;
	response-policy { zone "fluxwatch.rpz"; };
};
controls { };
zone "." { type primary; file "` + dir + `/root.db"; };
zone "fluxwatch.rpz" { type primary; file "` + dir + `/fluxwatch.rpz"; };
`
	for name, content := range map[string]string{"root.db": root, "fluxwatch.rpz": string(zone), "named.conf": conf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log := startNamed(t, named, filepath.Join(dir, "named.conf"))
	for _, tt := range []struct {
		name  string
		qtype uint16
		want  int
	}{
		{"a-fast.test.", dns.TypeA, dns.RcodeNameError},     // qname
		{"www.a-fast.test.", dns.TypeA, dns.RcodeNameError}, // *.qname
		{"agent.test.", dns.TypeA, dns.RcodeNameError},      // rpz-ip 192.0.2.10
		{"agent6.test.", dns.TypeAAAA, dns.RcodeNameError},  // rpz-ip 2001:db8::1:0:0:1
		{"clean.test.", dns.TypeA, dns.RcodeSuccess},        // not listed
		{"low.test.", dns.TypeA, dns.RcodeSuccess},          // an agent below the threshold
		{"private.test.", dns.TypeA, dns.RcodeSuccess},      // a private agent: never a trigger
	} {
		m := new(dns.Msg)
		m.SetQuestion(tt.name, tt.qtype)
		r, err := dns.Exchange(m, "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("asking named for %s: %v\n%s", tt.name, err, log())
		}
		if r.Rcode != tt.want {
			t.Errorf("%s: %s %v, want %s", tt.name, dns.RcodeToString[r.Rcode], r.Answer, dns.RcodeToString[tt.want])
		}
	}
	for _, l := range strings.Split(log(), "\n") {
		if strings.Contains(l, "rpz") && (strings.Contains(l, "invalid") || strings.Contains(l, "canonical") || strings.Contains(l, "fail")) {
			t.Errorf("named: %s", l)
		}
	}
}

// freePort returns a loopback port that was free for UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port")
	return 0
}

// startNamed runs named in the foreground until the test ends, waits until
// it runs and has loaded its response policy zone, and returns a function
// that returns its log.
func startNamed(t *testing.T, named, conf string) func() string {
	t.Helper()
	cmd := exec.Command(named, "-g", "-c", conf)
	var mu sync.Mutex
	var logBuf bytes.Buffer
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	running := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		up, rpz, signalled := false, false, false
		for sc.Scan() {
			mu.Lock()
			logBuf.WriteString(sc.Text() + "\n")
			mu.Unlock()
			up = up || strings.HasSuffix(sc.Text(), " running")
			rpz = rpz || strings.Contains(sc.Text(), "rpz: fluxwatch.rpz: reload done")
			if up && rpz && !signalled {
				signalled = true
				running <- true
			}
		}
		if !signalled {
			running <- false
		}
	}()
	log := func() string { mu.Lock(); defer mu.Unlock(); return logBuf.String() }
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	select {
	case ok := <-running:
		if !ok {
			cmd.Wait()
			t.Fatalf("named exited:\n%s", log())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("named did not start in 20 s:\n%s", log())
	}
	return log
}
