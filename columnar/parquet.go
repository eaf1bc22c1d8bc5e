// Package columnar writes fluxwatch's observation history as Apache
// Parquet, for Spark, DuckDB, ClickHouse and the like: one row per
// observation (one query through one vantage and what came back),
// partitioned by the UTC day of the observation's time in Hive style,
//
//	DIR/date=YYYY-MM-DD/part-0.parquet
//
// Each file is written to a temporary name beside its final one, synced
// and renamed, so a reader sees a whole file or none; exporting again
// replaces the days it covers. Within a file, rows are in domain order
// and each domain's in time order. Columns are compressed with zstd.
//
// Schema (Parquet physical type, logical type):
//
//	time         INT64 TIMESTAMP(MICROS, UTC)  when the query was sent
//	probe_start  INT64 TIMESTAMP(MICROS, UTC)  start of the probe it belongs to (with domain and vantage: the probe's key)
//	domain       BYTE_ARRAY STRING             the measured domain
//	vantage      BYTE_ARRAY STRING             the resolver asked, host:port (an agent's are REGION/host:port)
//	name         BYTE_ARRAY STRING             the name asked: the domain, a CNAME target or a name server host
//	qtype        BYTE_ARRAY STRING             A, AAAA, NS, … (TYPEn without a mnemonic)
//	rcode        INT32                         the response code, 0 when no response came
//	error        BYTE_ARRAY STRING             ok, timeout, network, truncated, refused, servfail, nxdomain, malformed, rcode
//	flags        BYTE_ARRAY STRING             space-separated: aa tc ra delegation capped passive
//	rtt_us       INT64                         round-trip time in microseconds
//	answers      LIST<BYTE_ARRAY STRING>       each answer record as "TYPE DATA", e.g. "A 192.0.2.1", "CNAME edge.cdn.example"
//	owners       LIST<BYTE_ARRAY STRING>       each answer record's owner name, parallel to answers
//	ttls         LIST<INT64>                   each answer record's TTL in seconds, parallel to answers
//	asns         LIST<INT64>                   with an IP table: each answer's origin AS, parallel to answers (0: not an address, or unknown); without one: empty
package columnar

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/miekg/dns"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Row is one observation as a Parquet row; its tags are the schema.
type Row struct {
	Time       int64    `parquet:"time,timestamp(microsecond)"`
	ProbeStart int64    `parquet:"probe_start,timestamp(microsecond)"`
	Domain     string   `parquet:"domain,dict"`
	Vantage    string   `parquet:"vantage,dict"`
	Name       string   `parquet:"name,dict"`
	QType      string   `parquet:"qtype,dict"`
	Rcode      int32    `parquet:"rcode"`
	Error      string   `parquet:"error,dict"`
	Flags      string   `parquet:"flags,dict"`
	RTTus      int64    `parquet:"rtt_us"`
	Answers    []string `parquet:"answers,list"`
	Owners     []string `parquet:"owners,list"`
	TTLs       []int64  `parquet:"ttls,list"`
	ASNs       []int64  `parquet:"asns,list"`
}

// Options shape an export. The zero value exports everything.
type Options struct {
	// Since, if set, leaves out probes that started before it.
	Since time.Time
	// Domains limits the export to these names (nil: every domain,
	// removed ones too).
	Domains []string
	// Meta, if it has an ASN table, fills the asns column.
	Meta *ipmeta.DB
	// RowGroupRows is the most rows in one row group (default 65536).
	// Every day being written holds one row group in memory.
	RowGroupRows int
}

// Result says what an export wrote.
type Result struct {
	Files int
	Rows  int64
	Days  []string // YYYY-MM-DD, sorted
}

// WriteParquet writes the observation history since since (zero: all of
// it) under dir, a file per day; see the package comment.
func WriteParquet(store *storage.Store, dir string, since time.Time) (files int, rows int64, err error) {
	r, err := Write(context.Background(), store, dir, Options{Since: since})
	return r.Files, r.Rows, err
}

// Write is WriteParquet with options. Cancelling ctx stops it between
// domains; the files of an export that fails are not left behind (days
// already renamed before the failure keep their new file).
func Write(ctx context.Context, store *storage.Store, dir string, opts Options) (Result, error) {
	if opts.RowGroupRows <= 0 {
		opts.RowGroupRows = 65536
	}
	domains := opts.Domains
	if domains == nil {
		if err := store.Domains(func(d storage.Domain) error {
			domains = append(domains, d.Name)
			return nil
		}); err != nil {
			return Result{}, fmt.Errorf("listing domains: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	x := &export{dir: dir, opts: opts, days: map[string]*dayFile{}, withASN: opts.Meta.HasASN()}
	defer x.abort()
	for _, d := range domains {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		if err := store.History(d, opts.Since, time.Time{}, x.probe); err != nil {
			return Result{}, fmt.Errorf("exporting %s: %w", d, err)
		}
	}
	return x.finish()
}

// export is one export in progress: a file per day being written.
type export struct {
	dir     string
	opts    Options
	withASN bool
	days    map[string]*dayFile
	rows    int64
}

type dayFile struct {
	tmp, final string
	f          *os.File
	w          *parquet.GenericWriter[Row]
	buf        []Row
}

func (x *export) probe(p obs.Probe) error {
	for _, o := range p.Observations {
		day := o.Time.UTC().Format(time.DateOnly)
		df, err := x.day(day)
		if err != nil {
			return err
		}
		df.buf = append(df.buf, x.row(p, o))
		x.rows++
		if len(df.buf) >= 1024 {
			if err := df.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (x *export) row(p obs.Probe, o obs.Observation) Row {
	r := Row{
		Time: o.Time.UnixMicro(), ProbeStart: p.Start.UnixMicro(), Domain: p.Domain, Vantage: p.Vantage,
		Name: o.Name, QType: typeName(o.QType), Rcode: int32(o.Rcode), Error: o.Err.String(), Flags: o.Flags.String(),
		RTTus:   o.RTT.Microseconds(),
		Answers: make([]string, len(o.Answer)), Owners: make([]string, len(o.Answer)), TTLs: make([]int64, len(o.Answer)),
	}
	if x.withASN {
		r.ASNs = make([]int64, len(o.Answer))
	}
	for i, a := range o.Answer {
		r.Answers[i] = typeName(a.Type) + " " + a.Data
		r.Owners[i] = a.Name
		r.TTLs[i] = int64(a.TTL)
		if x.withASN && (a.Type == dns.TypeA || a.Type == dns.TypeAAAA) {
			if addr, err := netip.ParseAddr(a.Data); err == nil {
				if info, ok := x.opts.Meta.Lookup(addr); ok {
					r.ASNs[i] = int64(info.ASN)
				}
			}
		}
	}
	return r
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// day returns the file of a day, opening it on first use.
func (x *export) day(day string) (*dayFile, error) {
	if df, ok := x.days[day]; ok {
		return df, nil
	}
	dayDir := filepath.Join(x.dir, "date="+day)
	if err := os.MkdirAll(dayDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dayDir, ".part-0.parquet.tmp-*")
	if err != nil {
		return nil, err
	}
	df := &dayFile{tmp: f.Name(), final: filepath.Join(dayDir, "part-0.parquet"), f: f,
		w: parquet.NewGenericWriter[Row](f, parquet.Compression(&zstd.Codec{}), parquet.MaxRowsPerRowGroup(int64(x.opts.RowGroupRows)),
			parquet.CreatedBy("fluxwatch", "", "")),
		buf: make([]Row, 0, 1024)}
	x.days[day] = df
	return df, nil
}

func (df *dayFile) flush() error {
	if len(df.buf) == 0 {
		return nil
	}
	if _, err := df.w.Write(df.buf); err != nil {
		return fmt.Errorf("writing %s: %w", df.final, err)
	}
	clear(df.buf)
	df.buf = df.buf[:0]
	return nil
}

// finish closes, syncs and renames every day's file.
func (x *export) finish() (Result, error) {
	res := Result{Rows: x.rows}
	for day := range x.days {
		res.Days = append(res.Days, day)
	}
	sort.Strings(res.Days)
	for _, day := range res.Days {
		df := x.days[day]
		err := df.flush()
		if err == nil {
			err = df.w.Close()
		}
		if err == nil {
			err = df.f.Sync()
		}
		if cerr := df.f.Close(); err == nil {
			err = cerr
		}
		df.f = nil
		if err == nil {
			err = os.Rename(df.tmp, df.final)
		}
		if err == nil {
			err = syncDir(filepath.Dir(df.final))
		}
		if err != nil {
			return Result{}, fmt.Errorf("writing %s: %w", df.final, err)
		}
		delete(x.days, day)
		res.Files++
	}
	return res, nil
}

// abort removes the temporary files of the days not finished.
func (x *export) abort() {
	for _, df := range x.days {
		if df.f != nil {
			df.f.Close()
		}
		os.Remove(df.tmp)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
