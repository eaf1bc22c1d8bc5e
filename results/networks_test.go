package results_test

import (
	"bytes"
	"crypto/md5"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/results"
)

// networkVerdicts are agentVerdicts in flux networks: a-fast.test and
// xn--bcher-kva.test in net-1, double.flux.test in net-2, fastflux-b.test
// (listed) in none.
func networkVerdicts() []classify.Verdict {
	vs := agentVerdicts()
	for i := range vs {
		switch vs[i].Domain {
		case "a-fast.test", "xn--bcher-kva.test":
			vs[i].Network = "net-1"
		case "double.flux.test":
			vs[i].Network = "net-2"
		}
	}
	return vs
}

var networkGoldenCases = []goldenCase{
	{"jsonl_networks", "jsonl", results.Options{}},
	{"csv_networks", "csv", results.Options{}},
	{"stix_networks", "stix", results.Options{}},
	{"misp_networks", "misp", results.Options{}},
	{"ips_network", "ips", results.Options{Network: "net-1"}},
	{"domains_network", "domains", results.Options{Network: "net-1"}},
}

func TestWriteNetworksGolden(t *testing.T) {
	for _, tc := range networkGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, write(t, tc.format, networkVerdicts(), tc.opts))
		})
	}
}

// jsonl carries each verdict's network under "network", csv in the column
// "network"; both read back.
func TestNetworkInJSONLAndCSV(t *testing.T) {
	want := map[string]string{"a-fast.test": "net-1", "xn--bcher-kva.test": "net-1", "double.flux.test": "net-2", "fastflux-b.test": ""}
	dec := json.NewDecoder(bytes.NewReader(write(t, "jsonl", networkVerdicts(), results.Options{})))
	n := 0
	for {
		var v map[string]any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		got, _ := v["network"].(string)
		if name := v["domain"].(string); got != want[name] {
			t.Errorf("jsonl %s: network %q, want %q", name, got, want[name])
		}
	}
	rows, err := csv.NewReader(bytes.NewReader(write(t, "csv", networkVerdicts(), results.Options{}))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(rows[0], "network")
	if col < 0 || n != len(want) || len(rows) != len(want)+1 {
		t.Fatalf("csv header %q, %d rows; %d jsonl lines", rows[0], len(rows), n)
	}
	for _, r := range rows[1:] {
		if r[col] != want[r[0]] {
			t.Errorf("csv %s: network %q, want %q", r[0], r[col], want[r[0]])
		}
	}
}

// STIX: one infrastructure object (type botnet) per network, each of its
// listed domains' indicators related to it by "indicates"; a domain in no
// network has no relationship.
func TestSTIXGroupsNetworks(t *testing.T) {
	var b struct {
		Objects []map[string]any `json:"objects"`
	}
	out := write(t, "stix", networkVerdicts(), results.Options{})
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	indicators, infras := map[string]string{}, map[string]map[string]any{} // id → domain; id → object
	var rels []map[string]any
	for _, o := range b.Objects {
		switch o["type"] {
		case "indicator":
			m := domainPat.FindStringSubmatch(o["pattern"].(string))
			indicators[o["id"].(string)] = m[1]
		case "infrastructure":
			infras[o["id"].(string)] = o
		case "relationship":
			rels = append(rels, o)
		default:
			t.Errorf("object of type %v", o["type"])
		}
	}
	if len(infras) != 2 {
		t.Fatalf("%d infrastructure objects, want 2 (net-1, net-2)", len(infras))
	}
	members := map[string][]string{} // infrastructure name → its domains
	for _, r := range rels {
		src, dst := r["source_ref"].(string), r["target_ref"].(string)
		domain, ok1 := indicators[src]
		infra, ok2 := infras[dst]
		if !ok1 || !ok2 || r["relationship_type"] != "indicates" || r["spec_version"] != "2.1" {
			t.Errorf("relationship %v: source or target not in the bundle, or not indicates", r)
			continue
		}
		members[infra["name"].(string)] = append(members[infra["name"].(string)], domain)
	}
	if got := members["flux network net-1"]; !slices.Equal(got, []string{"a-fast.test", "xn--bcher-kva.test"}) {
		t.Errorf("net-1 indicates %v", got)
	}
	if got := members["flux network net-2"]; !slices.Equal(got, []string{"double.flux.test"}) {
		t.Errorf("net-2 indicates %v", got)
	}
	for _, o := range infras {
		types, _ := o["infrastructure_types"].([]any)
		if len(types) != 1 || types[0] != "botnet" || o["spec_version"] != "2.1" || !stixStamp.MatchString(o["created"].(string)) ||
			!stixStamp.MatchString(o["first_seen"].(string)) {
			t.Errorf("infrastructure %v", o)
		}
	}
	// The same network keeps its infrastructure id from export to export,
	// whatever else the export holds.
	infraIDs := func(out []byte) map[string]string {
		var b struct {
			Objects []map[string]any `json:"objects"`
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatal(err)
		}
		ids := map[string]string{}
		for _, o := range b.Objects {
			if o["type"] == "infrastructure" {
				ids[o["name"].(string)] = o["id"].(string)
			}
		}
		return ids
	}
	var only2 []classify.Verdict
	for _, v := range networkVerdicts() {
		if v.Network != "net-1" {
			only2 = append(only2, v)
		}
	}
	first, second := infraIDs(out), infraIDs(write(t, "stix", only2, results.Options{}))
	if len(second) != 1 || second["flux network net-2"] != first["flux network net-2"] {
		t.Errorf("net-2's infrastructure id: %v, then %v", first, second)
	}
}

// MISP: the feed's event of every listed domain, and one event per network
// holding its listed domains; manifest and hashes name them all.
func TestMISPEventPerNetwork(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "feed")
	if err := results.WriteDir(dir, "misp", verdictsInOrder(networkVerdicts()), results.Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]mispMeta
	if err := json.Unmarshal(b, &manifest); err != nil || len(manifest) != 3 {
		t.Fatalf("manifest: %v, %d events, want 3", err, len(manifest))
	}
	byInfo := map[string][]string{} // event info → its attributes' values
	for id, m := range manifest {
		if !uuidV5.MatchString(id) {
			t.Errorf("event UUID %q", id)
		}
		eb, err := os.ReadFile(filepath.Join(dir, id+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var event struct {
			Event *mispMeta `json:"Event"`
		}
		if err := json.Unmarshal(eb, &event); err != nil || event.Event == nil || event.Event.UUID != id || event.Event.Info != m.Info {
			t.Fatalf("event %s: %v\n%s", id, err, eb)
		}
		for _, a := range event.Event.Attribute {
			if a.Type != "domain" || !uuidV5.MatchString(a.UUID) {
				t.Errorf("event %s: attribute %+v", m.Info, a)
			}
			byInfo[m.Info] = append(byInfo[m.Info], a.Value)
		}
	}
	if got := byInfo["fluxwatch flux network net-1: 2 domains"]; !slices.Equal(got, []string{"a-fast.test", "xn--bcher-kva.test"}) {
		t.Errorf("net-1's event: %v (events %v)", got, byInfo)
	}
	if got := byInfo["fluxwatch flux network net-2: 1 domain"]; !slices.Equal(got, []string{"double.flux.test"}) {
		t.Errorf("net-2's event: %v", got)
	}
	if got := byInfo["fluxwatch fast-flux domains"]; !slices.Equal(got, listedNames) {
		t.Errorf("the event of every listed domain: %v", got)
	}
	hb, err := os.ReadFile(filepath.Join(dir, "hashes.csv"))
	if err != nil {
		t.Fatal(err)
	}
	hashes := lines(hb)
	for info, values := range byInfo {
		var id string
		for k, m := range manifest {
			if m.Info == info {
				id = k
			}
		}
		for _, v := range values {
			sum := md5.Sum([]byte(v))
			if !slices.Contains(hashes, hex.EncodeToString(sum[:])+","+id) {
				t.Errorf("hashes.csv lacks %s of event %s", v, info)
			}
		}
	}
}

// The address formats (and the domain ones) written for one network hold
// that network's verdicts only.
func TestAddressesPerNetwork(t *testing.T) {
	got := strings.Fields(string(write(t, "ips", networkVerdicts(), results.Options{Network: "net-1"})))
	// a-fast.test's and xn--bcher-kva.test's public agents.
	want := []string{"192.0.2.10", "198.51.100.7", "203.0.113.77", "2001:db8::10", "2001:db8:0:1::2"}
	if !slices.Equal(got, want) {
		t.Errorf("ips of net-1: %v, want %v", got, want)
	}
	got = strings.Fields(string(write(t, "ips", networkVerdicts(), results.Options{Network: "net-2"})))
	want = []string{"192.0.2.10", "198.51.100.53", "203.0.113.5", "203.0.113.53", "2001:db8::53", "2001:db8::1:0:0:1"}
	if !slices.Equal(got, want) {
		t.Errorf("ips of net-2: %v, want %v", got, want)
	}
	if out := write(t, "ips", networkVerdicts(), results.Options{Network: "net-404"}); len(out) != 0 {
		t.Errorf("ips of an unknown network: %q", out)
	}
	dir := filepath.Join(t.TempDir(), "suricata")
	if err := results.WriteDir(dir, "suricata", verdictsInOrder(networkVerdicts()), results.Options{Network: "net-1"}); err != nil {
		t.Fatal(err)
	}
	rep, err := os.ReadFile(filepath.Join(dir, "reputation.list"))
	if err != nil || strings.Contains(string(rep), "203.0.113.5,") || !strings.Contains(string(rep), "203.0.113.77,") {
		t.Errorf("suricata of net-1: %v\n%s", err, rep)
	}
	for _, format := range []string{"nftables", "ipset"} {
		out := string(write(t, format, networkVerdicts(), results.Options{Network: "net-1"}))
		if strings.Contains(out, "203.0.113.5 ") || !strings.Contains(out, "203.0.113.77") {
			t.Errorf("%s of net-1:\n%s", format, out)
		}
	}
}
