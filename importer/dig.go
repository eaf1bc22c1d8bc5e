package importer

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
)

// The dig format is the text dig prints, many runs concatenated as people
// log them (`dig … >> log`), with any line endings. One run is one lookup:
//
//	; <<>> DiG 9.18.18 <<>> flux.example A        the command (name, type, @server)
//	;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 41729
//	;; flags: qr rd ra; QUERY: 1, ANSWER: 3, AUTHORITY: 0, ADDITIONAL: 1
//	;; QUESTION SECTION:                           the question asked
//	;; ANSWER SECTION: / AUTHORITY / ADDITIONAL    one record a line (dns.NewRR)
//	;; Query time: 12 msec                         the RTT
//	;; SERVER: 127.0.0.1#53(127.0.0.1) (UDP)       the vantage
//	;; WHEN: Fri Nov 27 09:00:01 UTC 2026          the time
//	;; MSG SIZE  rcvd: 56                          the end of the run
//
// A run that timed out prints "connection timed out; no servers could be
// reached" (dig 9.18 and later: "communications error to ADDR#53: timed
// out" lines before the command, then "no servers could be reached") and
// no time: it is stamped with the last time the log showed before it, from
// an earlier run's ;; WHEN: or a date(1) line. Lines of date(1) output
// between runs set that time too.

// digRun is one dig run being read.
type digRun struct {
	start    int // line of its first line
	l        lookup
	banner   struct{ name, server string }
	qtype    uint16 // from the banner
	question bool   // a QUESTION SECTION was read
	header   bool   // a ->>HEADER<<- line was read
	when     bool   // a ;; WHEN: line was read
	timedOut bool
	commErr  string // address of the last "communications error to" line
	commNet  bool   // that error was not a timeout (refused, unreachable)
	section  *[]dns.RR
	bad      bool // a line error was reported: the run is dropped
	done     bool // MSG SIZE or "no servers could be reached" was read
}

// digReader holds the state of a dig log between runs.
type digReader struct {
	in      *input
	run     *digRun
	pending *digRun // communications errors printed before a run's command line
	clock   time.Time
}

func readDig(in *input) error {
	d := &digReader{in: in}
	for {
		line, ok := in.lines.next()
		if !ok {
			break
		}
		if in.lines.tooLong {
			in.tooLong()
			if d.run != nil {
				d.run.bad = true
			}
			continue
		}
		if err := d.line(in.lines.num, line); err != nil {
			return err
		}
	}
	return d.flush()
}

// line handles one line of the log.
func (d *digReader) line(num int, b []byte) error {
	s := string(bytes.TrimSpace(b))
	if d.run != nil && d.run.done && s != "" {
		// Nothing more belongs to a run that timed out.
		if err := d.flush(); err != nil {
			return err
		}
	}
	r := d.run
	switch {
	case s == "":
		if r != nil {
			r.section = nil
		}
		return nil
	case strings.HasPrefix(s, "; <<>> DiG") || strings.HasPrefix(s, "; <<>> dig"):
		if err := d.flush(); err != nil {
			return err
		}
		d.begin(num)
		d.run.parseBanner(s)
		return nil
	case strings.HasPrefix(s, ";; communications error to "):
		if r == nil || r.header {
			if err := d.flush(); err != nil {
				return err
			}
			if d.pending == nil {
				d.pending = &digRun{start: num}
			}
			r = d.pending
		}
		r.parseCommError(strings.TrimPrefix(s, ";; communications error to "))
		return nil
	case strings.HasPrefix(s, ";; Got answer:"):
		if r != nil && (r.header || r.done) {
			if err := d.flush(); err != nil {
				return err
			}
		}
		if d.run == nil {
			d.begin(num)
		}
		return nil
	case strings.HasPrefix(s, ";; ->>HEADER<<-"):
		if r != nil && (r.header || r.done) {
			if err := d.flush(); err != nil {
				return err
			}
		}
		if d.run == nil {
			d.begin(num)
		}
		d.run.header = true
		if err := d.run.parseHeader(strings.TrimPrefix(s, ";; ->>HEADER<<-")); err != nil {
			d.fail(num, "%v", err)
		}
		return nil
	}
	if !strings.HasPrefix(s, ";") && (r == nil || r.section == nil) {
		if t, ok := d.timeHint(s); ok {
			// date(1) output: whatever run came before has ended.
			if err := d.flush(); err != nil {
				return err
			}
			d.clock = t
			return nil
		}
	}
	if r == nil {
		if strings.Contains(s, "no servers could be reached") {
			d.pending = nil
			d.in.fail(num, "timed-out lookup without the dig command line: the question is unknown")
			return nil
		}
		if strings.HasPrefix(s, ";") {
			return nil // a comment outside any run
		}
		d.in.fail(num, "not part of a dig output: %q", abbreviate(s))
		return nil
	}
	switch {
	case strings.HasPrefix(s, ";; flags:"):
		r.parseFlags(strings.TrimPrefix(s, ";; flags:"))
	case s == ";; QUESTION SECTION:":
		r.section = nil
		r.question = true
	case s == ";; ANSWER SECTION:":
		r.section = &r.l.answer
	case s == ";; AUTHORITY SECTION:":
		r.section = &r.l.authority
	case s == ";; ADDITIONAL SECTION:":
		r.section = &r.l.additional
	case strings.HasPrefix(s, ";; Query time:"):
		rtt, err := parseQueryTime(strings.TrimPrefix(s, ";; Query time:"))
		if err != nil {
			d.fail(num, "%v", err)
		}
		r.l.rtt = rtt
	case strings.HasPrefix(s, ";; SERVER:"):
		v, err := parseServer(strings.TrimPrefix(s, ";; SERVER:"))
		if err != nil {
			d.fail(num, "%v", err)
		}
		r.l.vantage = v
	case strings.HasPrefix(s, ";; WHEN:"):
		t, err := parseDate(strings.TrimPrefix(s, ";; WHEN:"), d.in.opts.Location)
		if err != nil {
			d.fail(num, "%v", err)
			break
		}
		r.l.time, r.when = t, true
		d.clock = t
	case strings.HasPrefix(s, ";; MSG SIZE"):
		r.done = true
		return d.flush()
	case strings.Contains(s, "no servers could be reached"):
		r.timedOut, r.done = true, true
		if strings.HasPrefix(s, ";; connection timed out") {
			r.commNet = false
		}
	case r.question && r.section == nil && strings.HasPrefix(s, ";") && !strings.HasPrefix(s, ";;") && r.l.qname == "":
		r.parseQuestion(num, s[1:], d)
	case strings.HasPrefix(s, ";"):
		// other comments: global options, OPT pseudosection, warnings
	case r.section != nil:
		if r.bad {
			return nil
		}
		rr, err := parseRR(s)
		if err != nil {
			d.fail(num, "bad record: %v", err)
			return nil
		}
		if rr == nil {
			return nil
		}
		if len(*r.section) >= 4*crawler.DefaultMaxRecords {
			return nil // more than any kept answer needs; the answer is capped anyway
		}
		*r.section = append(*r.section, rr)
	default:
		d.fail(num, "not part of a dig output: %q", abbreviate(s))
	}
	return nil
}

// begin starts a run, taking over communications errors logged before it.
func (d *digReader) begin(num int) {
	d.run = &digRun{start: num}
	if p := d.pending; p != nil {
		d.run.commErr, d.run.commNet = p.commErr, p.commNet
		d.pending = nil
	}
}

// fail reports a line error that drops the current run.
func (d *digReader) fail(num int, format string, args ...any) {
	d.in.fail(num, format, args...)
	if d.run != nil {
		d.run.bad = true
	}
}

// timeHint reads a line of date(1) output, or an RFC 3339 time, which a
// log may hold between runs.
func (d *digReader) timeHint(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if t, err := parseDate(s, d.in.opts.Location); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// flush ends the current run and emits its probe.
func (d *digReader) flush() error {
	r := d.run
	d.run = nil
	if r == nil || r.bad {
		return nil
	}
	l := &r.l
	if l.qname == "" {
		l.qname = r.banner.name
	}
	if l.qtype == 0 {
		l.qtype = r.qtype
	}
	switch {
	case r.header:
	case r.timedOut:
		l.err = obs.Timeout
		if r.commNet {
			l.err = obs.Network
		}
	default:
		d.in.fail(r.start, "incomplete dig output: no ->>HEADER<<- line and no timeout")
		return nil
	}
	if l.qname == "" {
		d.in.fail(r.start, "dig output without a question")
		return nil
	}
	if l.qtype == 0 {
		l.qtype = dns.TypeA
	}
	if !r.when {
		if d.clock.IsZero() {
			d.in.fail(r.start, "dig output without a ;; WHEN: line, and no earlier time in the log")
			return nil
		}
		l.time = d.clock
	}
	switch {
	case d.in.opts.Vantage != "":
		l.vantage = d.in.opts.Vantage
	case l.vantage != "":
	case r.commErr != "":
		l.vantage = r.commErr
	case r.banner.server != "":
		l.vantage = vantageName(r.banner.server)
	default:
		l.vantage = Dig
	}
	p, err := l.probe()
	if err != nil {
		d.in.fail(r.start, "%v", err)
		return nil
	}
	return d.in.emit(p)
}

// parseBanner reads the command line dig echoes:
// "; <<>> DiG 9.18.18 <<>> @192.0.2.53 flux.example A +norec".
func (r *digRun) parseBanner(s string) {
	parts := strings.SplitN(s, "<<>>", 3)
	if len(parts) < 3 {
		return
	}
	args := strings.Fields(parts[2])
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case strings.HasPrefix(a, "@"):
			r.banner.server = a[1:]
		case strings.HasPrefix(a, "+"):
		case a == "-t":
			if t, ok := qtypeOf(next()); ok {
				r.qtype = t
			}
		case a == "-q":
			r.banner.name = next()
		case a == "-c" || a == "-p" || a == "-b" || a == "-k" || a == "-y" || a == "-f":
			next()
		case strings.HasPrefix(a, "-"):
		default:
			if t, ok := qtypeOf(a); ok && r.qtype == 0 && strings.ToUpper(a) == a {
				r.qtype = t
			} else if _, isClass := dns.StringToClass[strings.ToUpper(a)]; isClass {
			} else if r.banner.name == "" {
				r.banner.name = a
			}
		}
	}
}

// parseHeader reads " opcode: QUERY, status: NOERROR, id: 41729".
func (r *digRun) parseHeader(s string) error {
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(f, ":")
		if !ok || strings.TrimSpace(k) != "status" {
			continue
		}
		v = strings.TrimSpace(v)
		rc, ok := dns.StringToRcode[v]
		if !ok {
			return fmt.Errorf("unknown status %q", v)
		}
		r.l.rcode, r.l.err = rc, crawler.RcodeClass(rc)
		return nil
	}
	return fmt.Errorf("header without a status")
}

// parseFlags reads " qr rd ra; QUERY: 1, ANSWER: 3, …".
func (r *digRun) parseFlags(s string) {
	flags, _, _ := strings.Cut(s, ";")
	for _, f := range strings.Fields(flags) {
		switch f {
		case "aa":
			r.l.flags |= obs.FlagAA
		case "tc":
			r.l.flags |= obs.FlagTC
		case "ra":
			r.l.flags |= obs.FlagRA
		}
	}
}

// parseQuestion reads "flux.example.		IN	A" (the leading ';' removed).
func (r *digRun) parseQuestion(num int, s string, d *digReader) {
	f := strings.Fields(s)
	if len(f) < 2 {
		d.fail(num, "bad question %q", abbreviate(s))
		return
	}
	t, ok := qtypeOf(f[len(f)-1])
	if !ok {
		d.fail(num, "bad question type %q", f[len(f)-1])
		return
	}
	r.l.qname, r.l.qtype = f[0], t
}

// parseCommError reads "127.0.0.1#53: timed out".
func (r *digRun) parseCommError(s string) {
	addr, reason, _ := strings.Cut(s, ": ")
	if v, err := parseServerAddr(addr); err == nil {
		r.commErr = v
	}
	r.commNet = !strings.Contains(reason, "timed out")
}

// parseQueryTime reads " 12 msec".
func parseQueryTime(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, fmt.Errorf("bad query time %q", strings.TrimSpace(s))
	}
	n, err := strconv.ParseFloat(f[0], 64)
	var unit time.Duration
	switch f[1] {
	case "msec":
		unit = time.Millisecond
	case "usec":
		unit = time.Microsecond
	case "sec":
		unit = time.Second
	}
	if err != nil || n < 0 || unit == 0 {
		return 0, fmt.Errorf("bad query time %q", strings.TrimSpace(s))
	}
	return time.Duration(n * float64(unit)), nil
}

// parseServer reads " 127.0.0.1#53(127.0.0.1) (UDP)".
func parseServer(s string) (string, error) {
	addr, _, _ := strings.Cut(strings.TrimSpace(s), "(")
	return parseServerAddr(addr)
}

// parseServerAddr reads dig's ADDR#PORT into host:port.
func parseServerAddr(s string) (string, error) {
	host, port, ok := strings.Cut(strings.TrimSpace(s), "#")
	if !ok || net.ParseIP(host) == nil {
		return "", fmt.Errorf("bad server %q", strings.TrimSpace(s))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad server port %q", port)
	}
	return net.JoinHostPort(host, port), nil
}

// abbreviate shortens a line quoted in an error.
func abbreviate(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
