package columnar

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/xitongsys/parquet-go/reader"
	"github.com/xitongsys/parquet-go/source"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// The files are read back with xitongsys/parquet-go, a Parquet
// implementation independent of the writer's, column by column.

// osFile is the reader's file interface over an *os.File.
type osFile struct{ *os.File }

func (f osFile) Open(name string) (source.ParquetFile, error) {
	if name == "" {
		name = f.Name()
	}
	g, err := os.Open(name)
	return osFile{g}, err
}

func (f osFile) Create(name string) (source.ParquetFile, error) {
	g, err := os.Create(name)
	return osFile{g}, err
}

// column holds one column of a file: a value list per row.
type column [][]any

// readFile reads every column of a Parquet file by its name in the file.
func readFile(t *testing.T, path string) (rows int, cols map[string]column, types map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := reader.NewParquetColumnReader(osFile{f}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.ReadStop()
	rows = int(pr.GetNumRows())
	cols, types = map[string]column{}, map[string]string{}
	sh := pr.SchemaHandler
	for i, el := range pr.Footer.Schema {
		if i == 0 {
			continue
		}
		if el.LogicalType != nil && el.LogicalType.TIMESTAMP != nil {
			ts := el.LogicalType.TIMESTAMP
			types[sh.Infos[i].ExName] = fmt.Sprintf("timestamp utc=%v micros=%v", ts.IsAdjustedToUTC, ts.Unit.MICROS != nil)
		} else if el.Type != nil {
			types[sh.Infos[i].ExName] = el.Type.String()
		}
	}
	for _, path := range sh.ValueColumns {
		vals, rls, dls, err := pr.ReadColumnByPath(path, int64(rows)*64+64)
		if err != nil {
			t.Fatalf("column %s: %v", path, err)
		}
		// The column's name as written: its top-level field.
		top := strings.Split(sh.InPathToExPath[path], "\x01")[1]
		var col column
		for i, v := range vals {
			if rls[i] == 0 {
				col = append(col, []any{})
			}
			// A list column's empty list has definition level 0.
			if strings.Contains(path, "\x01List\x01") && dls[i] == 0 {
				continue
			}
			col[len(col)-1] = append(col[len(col)-1], v)
		}
		if len(col) != rows {
			t.Fatalf("column %s: %d rows, file says %d", top, len(col), rows)
		}
		cols[top] = col
	}
	return rows, cols, types
}

// record is one row as the test compares it.
type record struct {
	Time, ProbeStart                    int64
	Domain, Vantage, Name, QType, Error string
	Flags                               string
	Rcode                               int32
	RTTus                               int64
	Answers, Owners                     []string
	TTLs, ASNs                          []int64
}

func records(t *testing.T, dir string) map[string][]record {
	t.Helper()
	out := map[string][]record{}
	parts, _ := filepath.Glob(filepath.Join(dir, "date=*", "*"))
	for _, p := range parts {
		if filepath.Base(p) != "part-0.parquet" {
			t.Errorf("stray file %s", p)
			continue
		}
		day := strings.TrimPrefix(filepath.Base(filepath.Dir(p)), "date=")
		n, cols, types := readFile(t, p)
		for _, ts := range []string{"time", "probe_start"} {
			if types[ts] != "timestamp utc=true micros=true" {
				t.Errorf("%s: column %s is %q, want a UTC microsecond timestamp", p, ts, types[ts])
			}
		}
		for i := range n {
			str := func(c string) string { return cols[c][i][0].(string) }
			i64 := func(c string) int64 { return cols[c][i][0].(int64) }
			strs := func(c string) []string {
				var s []string
				for _, v := range cols[c][i] {
					s = append(s, v.(string))
				}
				return s
			}
			ints := func(c string) []int64 {
				var s []int64
				for _, v := range cols[c][i] {
					s = append(s, v.(int64))
				}
				return s
			}
			out[day] = append(out[day], record{
				Time: i64("time"), ProbeStart: i64("probe_start"), Domain: str("domain"), Vantage: str("vantage"),
				Name: str("name"), QType: str("qtype"), Error: str("error"), Flags: str("flags"), Rcode: cols["rcode"][i][0].(int32),
				RTTus: i64("rtt_us"), Answers: strs("answers"), Owners: strs("owners"), TTLs: ints("ttls"), ASNs: ints("asns"),
			})
		}
	}
	return out
}

// fixture stores probes on both sides of a midnight, of two domains, one
// of them removed since: answers with a CNAME chain, an NS answer, a
// timeout, an NXDOMAIN, a delegation.
func fixture(t *testing.T) (*storage.Store, time.Time) {
	t.Helper()
	s, err := storage.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	midnight := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if _, err := s.AddDomains([]string{"flux.example", "gone.example"}, "t", midnight.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	v := "east/192.0.2.53:53"
	before := midnight.Add(-2 * time.Second)
	probes := []obs.Probe{
		{Domain: "flux.example", Vantage: v, Start: before, Observations: []obs.Observation{
			{Time: before.Add(1500 * time.Microsecond), Name: "flux.example", QType: dns.TypeA, Flags: obs.FlagRA, RTT: 1234 * time.Microsecond,
				Answer: []obs.Record{
					{Name: "edge.cdn.test", Type: dns.TypeA, TTL: 60, Data: "198.51.100.7"},
					{Name: "flux.example", Type: dns.TypeCNAME, TTL: 300, Data: "edge.cdn.test"},
				}},
			{Time: before.Add(1800 * time.Millisecond), Name: "flux.example", QType: dns.TypeAAAA, Err: obs.Timeout, RTT: 0},
			// Its NS lookup lands after midnight: the next day's file.
			{Time: before.Add(2500 * time.Millisecond), Name: "flux.example", QType: dns.TypeNS, Flags: obs.FlagRA | obs.FlagAA, RTT: 800 * time.Microsecond,
				Answer: []obs.Record{{Name: "flux.example", Type: dns.TypeNS, TTL: 3600, Data: "ns1.flux.example"}}},
		}},
		{Domain: "flux.example", Vantage: "192.0.2.54:53", Start: midnight.Add(time.Minute), Observations: []obs.Observation{
			{Time: midnight.Add(time.Minute), Name: "flux.example", QType: dns.TypeNS, Flags: obs.FlagDelegation, RTT: 2 * time.Millisecond,
				Answer: []obs.Record{{Name: "flux.example", Type: dns.TypeNS, TTL: 86400, Data: "ns1.flux.example"},
					{Name: "ns1.flux.example", Type: dns.TypeA, TTL: 86400, Data: "203.0.113.9"}}},
		}},
		{Domain: "gone.example", Vantage: v, Start: midnight.Add(time.Hour), Observations: []obs.Observation{
			{Time: midnight.Add(time.Hour), Name: "gone.example", QType: dns.TypeA, Rcode: dns.RcodeNameError, Err: obs.NXDomain, Flags: obs.FlagRA, RTT: 3 * time.Millisecond},
		}},
	}
	if _, err := s.WriteProbes(probes); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveDomains([]string{"gone.example"}); err != nil {
		t.Fatal(err)
	}
	return s, midnight
}

// expected builds the rows the database holds, straight from its history.
func expected(t *testing.T, s *storage.Store, since time.Time, asn map[string]int64) map[string][]record {
	t.Helper()
	out := map[string][]record{}
	for _, d := range []string{"flux.example", "gone.example"} {
		s.History(d, since, time.Time{}, func(p obs.Probe) error {
			for _, o := range p.Observations {
				r := record{Time: o.Time.UnixMicro(), ProbeStart: p.Start.UnixMicro(), Domain: p.Domain, Vantage: p.Vantage,
					Name: o.Name, QType: dns.TypeToString[o.QType], Error: o.Err.String(), Flags: o.Flags.String(),
					Rcode: int32(o.Rcode), RTTus: o.RTT.Microseconds()}
				for _, a := range o.Answer {
					r.Answers = append(r.Answers, dns.TypeToString[a.Type]+" "+a.Data)
					r.Owners = append(r.Owners, a.Name)
					r.TTLs = append(r.TTLs, int64(a.TTL))
					if asn != nil {
						r.ASNs = append(r.ASNs, asn[a.Data])
					}
				}
				day := o.Time.UTC().Format(time.DateOnly)
				out[day] = append(out[day], r)
			}
			return nil
		})
	}
	return out
}

func TestParquetMatchesTheDatabase(t *testing.T) {
	s, midnight := fixture(t)
	table, err := ipmeta.Load(strings.NewReader("198.51.100.0\t198.51.100.255\t64500\tZZ\tEXAMPLE-NET\n"+
		"203.0.113.0\t203.0.113.255\t4200000001\tZZ\tBIG-ASN\n"), "asn.tsv")
	if err != nil {
		t.Fatal(err)
	}
	meta := &ipmeta.DB{}
	meta.AddASN(table)

	for _, tc := range []struct {
		name  string
		since time.Time
		meta  *ipmeta.DB
		asn   map[string]int64
		days  []string
	}{
		{"everything with ASNs", time.Time{}, meta, map[string]int64{"198.51.100.7": 64500, "203.0.113.9": 4200000001}, []string{"2026-03-01", "2026-03-02"}},
		{"everything without an IP table", time.Time{}, nil, nil, []string{"2026-03-01", "2026-03-02"}},
		{"since midnight", midnight, nil, nil, []string{"2026-03-02"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var res Result
			if tc.meta == nil {
				files, rows, err := WriteParquet(s, dir, tc.since)
				if err != nil {
					t.Fatal(err)
				}
				res = Result{Files: files, Rows: rows}
			} else if res, err = Write(context.Background(), s, dir, Options{Since: tc.since, Meta: tc.meta}); err != nil {
				t.Fatal(err)
			}
			want := expected(t, s, tc.since, tc.asn)
			got := records(t, dir)
			var days []string
			var n int64
			for d, rs := range want {
				days = append(days, d)
				n += int64(len(rs))
			}
			slices.Sort(days)
			if !slices.Equal(days, tc.days) || res.Files != len(days) || res.Rows != n {
				t.Fatalf("wrote %+v; database has days %v with %d rows, want days %v", res, days, n, tc.days)
			}
			for _, d := range days {
				if !reflect.DeepEqual(got[d], want[d]) {
					t.Errorf("day %s:\n got %v\nwant %v", d, got[d], want[d])
				}
			}
			if len(got) != len(want) {
				t.Errorf("files for days %v", got)
			}
		})
	}
}

// TestParquetReplacesFilesWhole exports twice into one directory: the
// second export replaces each day's file, leaves no temporary file, and
// an export that is cancelled leaves the earlier files as they were.
func TestParquetReplacesFilesWhole(t *testing.T) {
	s, midnight := fixture(t)
	dir := t.TempDir()
	if _, _, err := WriteParquet(s, dir, time.Time{}); err != nil {
		t.Fatal(err)
	}
	day2 := filepath.Join(dir, "date=2026-03-02", "part-0.parquet")
	before, err := os.ReadFile(day2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Write(ctx, s, dir, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled export: %v", err)
	}
	after, _ := os.ReadFile(day2)
	if string(after) != string(before) {
		t.Error("a cancelled export changed a file")
	}
	if _, rows, err := WriteParquet(s, dir, midnight); err != nil || rows != 2 {
		t.Fatalf("second export: %d rows, %v", rows, err)
	}
	if n, _, _ := readFile(t, day2); n != 2 {
		t.Errorf("day 2 has %d rows after the second export, want 2 (the probes started since midnight)", n)
	}
	all, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	for _, f := range all {
		if filepath.Base(f) != "part-0.parquet" {
			t.Errorf("left behind: %s", f)
		}
	}
}
