package importer

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
)

// result is what Read made of one input.
type result struct {
	probes []obs.Probe
	errs   []string
	stats  Stats
}

// readString reads text as the named input.
func readString(t *testing.T, text, name, format string, opts Options) result {
	t.Helper()
	return readFrom(t, strings.NewReader(text), name, format, opts)
}

// readFile reads a file of testdata, named as the tests see it.
func readFile(t *testing.T, file, format string, opts Options) result {
	t.Helper()
	f, err := os.Open("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readFrom(t, f, file, format, opts)
}

func readFrom(t *testing.T, r io.Reader, name, format string, opts Options) result {
	t.Helper()
	var res result
	stats, err := Read(r, name, format, opts, func(p obs.Probe) error {
		res.probes = append(res.probes, p)
		return nil
	}, func(e *LineError) { res.errs = append(res.errs, e.Error()) })
	if err != nil {
		t.Fatalf("Read %s: %v", name, err)
	}
	res.stats = stats
	return res
}

// render prints probes one observation a line, for comparison with the
// expected text of a test:
//
//	domain @vantage start
//	  name QTYPE rcode flags rtt err: name TYPE ttl data; …
func render(ps []obs.Probe) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s @%s %s\n", p.Domain, p.Vantage, p.Start.UTC().Format("2006-01-02T15:04:05.999999999Z"))
		for _, o := range p.Observations {
			if !o.Time.Equal(p.Start) {
				fmt.Fprintf(&b, "  +%s", o.Time.Sub(p.Start))
			}
			if o.Vantage != p.Vantage {
				fmt.Fprintf(&b, "  (vantage %s)", o.Vantage)
			}
			fmt.Fprintf(&b, "  %s %s rcode=%d [%s] rtt=%s %s:", o.Name, typeName(o.QType), o.Rcode, o.Flags, o.RTT, o.Err)
			for i, r := range o.Answer {
				if i > 0 {
					b.WriteByte(';')
				}
				fmt.Fprintf(&b, " %s %s %d %s", r.Name, typeName(r.Type), r.TTL, r.Data)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// sameText compares rendered probes and errors with what a test expects,
// ignoring the indentation of the expected text.
func sameText(t *testing.T, what, got, want string) {
	t.Helper()
	want = dedent(want)
	if got != want {
		t.Errorf("%s:\n--- got\n%s--- want\n%s", what, got, want)
	}
}

func dedent(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimLeft(s, "\n"), "\n") {
		out = append(out, strings.TrimLeft(l, "\t"))
	}
	return strings.Join(out, "\n")
}

func readTestdata(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// checkProbe checks what every probe Read yields must satisfy for storage
// and the classifier: a canonical domain, a vantage, a time, observations
// with names and sorted answers whose addresses parse.
func checkProbe(p obs.Probe) error {
	if p.Domain == "" || p.Domain != canonName(p.Domain) || p.Vantage == "" || p.Start.IsZero() || len(p.Observations) == 0 {
		return fmt.Errorf("incomplete probe %+v", p)
	}
	for _, o := range p.Observations {
		if o.Name == "" || o.Name != canonName(o.Name) || o.Time.IsZero() || o.QType == 0 {
			return fmt.Errorf("incomplete observation %+v", o)
		}
		if !slices.IsSortedFunc(o.Answer, func(a, b obs.Record) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Type, b.Type), strings.Compare(a.Data, b.Data))
		}) {
			return fmt.Errorf("answer not sorted: %+v", o.Answer)
		}
		for _, r := range o.Answer {
			if r.Type == dns.TypeA || r.Type == dns.TypeAAAA {
				if a, err := netip.ParseAddr(r.Data); err != nil || a.String() != r.Data {
					return fmt.Errorf("record %+v: bad address", r)
				}
			}
		}
	}
	return nil
}
