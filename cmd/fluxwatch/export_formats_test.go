package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/storage"
)

// storeVerdicts writes verdicts to a new database the way classify does:
// a flux verdict is listed (its Listing set), its record stored in full and
// in the listed index, and returns the database's path.
func storeVerdicts(t *testing.T, vs []classify.Verdict) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "fw.db")
	store, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	var records []storage.VerdictRecord
	for _, v := range vs {
		listed := classify.IsFlux(v.Verdict)
		if listed {
			v.Listing = &classify.Listing{FirstListed: v.ClassifiedAt, LastConfirmed: v.ClassifiedAt, ExpiresAt: v.ClassifiedAt.Add(classify.DefaultExpiry)}
		}
		full, _ := json.Marshal(v)
		r := storage.VerdictRecord{Domain: v.Domain, Full: full}
		if listed {
			r.Listed = full
		}
		records = append(records, r)
	}
	if err := store.PutVerdicts(records); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return db
}

func exportVerdicts() []classify.Verdict {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := classify.Features{Rounds: 10, Addresses: 30, Networks: 9}
	return []classify.Verdict{
		{Domain: "a.test", Verdict: classify.SingleFlux, Confidence: 0.9, Score: 80, Features: f, ClassifiedAt: at,
			Agents: []string{"192.0.2.10", "2001:db8::10", "127.0.0.1"}},
		{Domain: "b.test", Verdict: classify.DoubleFlux, Confidence: 0.95, Score: 120, Features: f, ClassifiedAt: at,
			Agents: []string{"203.0.113.5"}, NameServers: []string{"ns1.b-dns.test"}, NSAgents: []string{"198.51.100.53"}},
		{Domain: "c.test", Verdict: classify.SingleFlux, Confidence: 0.5, Score: 20, Features: f, ClassifiedAt: at,
			Agents: []string{"192.0.2.99"}},
		{Domain: "d.test", Verdict: classify.Benign, Confidence: 0.99, Features: f, ClassifiedAt: at,
			Agents: []string{"192.0.2.200"}},
	}
}

// TestExportFormatDirectories exports a MISP feed and Suricata's IP
// reputation files into directories, twice, as the daemon would publish.
func TestExportFormatDirectories(t *testing.T) {
	db := storeVerdicts(t, exportVerdicts())
	parent := t.TempDir()
	feed := filepath.Join(parent, "misp")
	for range 2 {
		out, stderr, err := fw(t, "", "export", "--db", db, "--format", "misp", "--out", feed, "--org", "CERT Test")
		if err != nil || out != "export: 3 listed domains written to "+feed+" (misp)\n" {
			t.Fatalf("export misp: %v %q\n%s", err, out, stderr)
		}
	}
	entries, _ := os.ReadDir(feed)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 || !slices.Contains(names, "manifest.json") || !slices.Contains(names, "hashes.csv") {
		t.Fatalf("MISP feed holds %q", names)
	}
	var manifest map[string]struct {
		Orgc struct{ Name string } `json:"Orgc"`
	}
	b, _ := os.ReadFile(filepath.Join(feed, "manifest.json"))
	if err := json.Unmarshal(b, &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v %s", err, b)
	}
	for id, m := range manifest {
		if m.Orgc.Name != "CERT Test" {
			t.Errorf("organisation %q", m.Orgc.Name)
		}
		var event struct {
			Event struct {
				Attribute []struct{ Value string }
			}
		}
		b, _ := os.ReadFile(filepath.Join(feed, id+".json"))
		if err := json.Unmarshal(b, &event); err != nil {
			t.Fatalf("event file: %v %s", err, b)
		}
		var values []string
		for _, a := range event.Event.Attribute {
			values = append(values, a.Value)
		}
		if want := []string{"a.test", "b.test", "c.test"}; !slices.Equal(values, want) { // every listed domain
			t.Errorf("MISP attributes %q, want %q", values, want)
		}
	}
	if _, err := os.Stat(filepath.Join(parent, ".misp.prev", "manifest.json")); err != nil {
		t.Errorf("the previous feed is not kept beside the new one: %v", err)
	}

	iprep := filepath.Join(parent, "iprep")
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"192.0.2.10,1,114", "203.0.113.5,1,121", "198.51.100.53,2,121", "2001:db8::10,1,114"}},
		{[]string{"--min-confidence", "0.4"}, []string{"192.0.2.10,1,114", "192.0.2.99,1,64", "203.0.113.5,1,121", "198.51.100.53,2,121", "2001:db8::10,1,114"}},
		{[]string{"--min-confidence", "0"}, []string{"192.0.2.10,1,114", "192.0.2.99,1,64", "203.0.113.5,1,121", "198.51.100.53,2,121", "2001:db8::10,1,114"}},
	} {
		args := append([]string{"export", "--db", db, "--format", "suricata", "--out", iprep}, tt.args...)
		if out, stderr, err := fw(t, "", args...); err != nil || !strings.Contains(out, "written to "+iprep+" (suricata)") {
			t.Fatalf("export suricata %v: %v %q\n%s", tt.args, err, out, stderr)
		}
		b, err := os.ReadFile(filepath.Join(iprep, "reputation.list"))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if !strings.HasPrefix(l, "#") {
				got = append(got, l)
			}
		}
		slices.Sort(got)
		slices.Sort(tt.want)
		if !slices.Equal(got, tt.want) {
			t.Errorf("reputation.list with %v:\n got %q\nwant %q", tt.args, got, tt.want)
		}
		if _, err := os.Stat(filepath.Join(iprep, "categories.txt")); err != nil {
			t.Error(err)
		}
	}
}

// TestExportFormatAddresses exports the address lists to stdout and to a
// file, and checks the command line refuses what cannot work.
func TestExportFormatAddresses(t *testing.T) {
	db := storeVerdicts(t, exportVerdicts())
	out, stderr, err := fw(t, "", "export", "--db", db, "--format", "ips")
	if want := "192.0.2.10\n198.51.100.53\n203.0.113.5\n2001:db8::10\n"; err != nil || out != want {
		t.Errorf("export ips: %v\n got %q\nwant %q\n%s", err, out, want, stderr)
	}
	nft := filepath.Join(t.TempDir(), "flux.nft")
	if _, stderr, err := fw(t, "", "export", "--db", db, "--format", "nftables", "--out", nft, "--table", "fw", "--set4", "bad4", "--set6", "bad6"); err != nil {
		t.Fatalf("export nftables: %v\n%s", err, stderr)
	}
	b, _ := os.ReadFile(nft)
	for _, want := range []string{"table inet fw {\n", "add element inet fw bad4 {\n\t192.0.2.10 timeout 7d,\n\t198.51.100.53 timeout 7d,\n\t203.0.113.5 timeout 7d\n}\n",
		"add element inet fw bad6 {\n\t2001:db8::10 timeout 7d\n}\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("nftables export lacks %q:\n%s", want, b)
		}
	}
	// The RPZ reads the short listed records: they carry the name servers and addresses.
	rpz := filepath.Join(t.TempDir(), "flux.rpz")
	if _, stderr, err := fw(t, "", "export", "--db", db, "--format", "rpz", "--rpz-ip", "--out", rpz); err != nil {
		t.Fatalf("export rpz: %v\n%s", err, stderr)
	}
	b, _ = os.ReadFile(rpz)
	for _, want := range []string{"\nns1.b-dns.test.rpz-nsdname CNAME .\n", "\n32.5.113.0.203.rpz-ip CNAME .\n", "\n128.10.zz.db8.2001.rpz-ip CNAME .\n",
		"\n32.53.100.51.198.rpz-nsip CNAME .\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("rpz export lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "99.2.0.192") {
		t.Errorf("rpz export has a trigger for c.test's agent, below the confidence threshold:\n%s", b)
	}
	checkZone(t, rpz)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "misp"}, "give --out DIR"},
		{[]string{"--format", "suricata", "--out", "-"}, "give --out DIR"},
		{[]string{"--format", "iptables"}, "ips, nftables, ipset, suricata"},
	} {
		_, _, err := fw(t, "", append([]string{"export", "--db", db}, tt.args...)...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("export %v: %v, want a usage error saying %q", tt.args, err, tt.want)
		}
	}
	// Names a firewall would misread are refused, and no file is written.
	bad := filepath.Join(t.TempDir(), "bad.ipset")
	if _, _, err := fw(t, "", "export", "--db", db, "--format", "ipset", "--set4", "x\ndestroy", "--out", bad); err == nil {
		t.Error("export ipset with a bad set name succeeded")
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused export left %s (%v)", bad, err)
	}
}
