package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// fluxPairDB writes a database where two domains rotate through one pool
// of 60 agents in 60 networks, a third through a pool of its own, and one
// stays put; then classifies it.
func fluxPairDB(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "fw.db")
	s, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour).Truncate(time.Second)
	names := []string{"one.test", "two.test", "lone.test", "calm.test"}
	if _, err := s.AddDomains(names, "unit", now); err != nil {
		t.Fatal(err)
	}
	var ps []obs.Probe
	for i := range 40 {
		at := now.Add(time.Duration(i) * time.Minute)
		for k, d := range names {
			var addrs []string
			switch d {
			case "one.test", "two.test": // the shared pool: 20.x … 79.x
				for j := range 3 {
					n := 20 + (i*3+j+k*7)%60
					addrs = append(addrs, fmt.Sprintf("%d.%d.0.1", n, n))
				}
			case "lone.test":
				for j := range 3 {
					n := 100 + (i*3+j)%60
					addrs = append(addrs, fmt.Sprintf("%d.%d.0.2", n, n))
				}
			default:
				addrs = []string{"192.0.2.1"}
			}
			var rrs []obs.Record
			for _, a := range addrs {
				rrs = append(rrs, obs.Record{Name: d, Type: dns.TypeA, TTL: 30, Data: a})
			}
			ps = append(ps, obs.Probe{Domain: d, Vantage: "127.0.0.1:53", Start: at, Observations: []obs.Observation{{
				Time: at, Vantage: "127.0.0.1:53", Name: d, QType: dns.TypeA, Flags: obs.FlagRA, Answer: rrs,
			}}})
		}
	}
	if _, err := s.WriteProbes(ps); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, stderr, err := fw(t, "", "classify", "--db", db, "--list-without-ip-tables"); err != nil {
		t.Fatalf("classify: %v\n%s", err, stderr)
	}
	return db
}

// The commands show the flux networks a classification found: the two
// domains that share agents are one network, the lone one another; show
// names a domain's network and siblings; an export can be one network's.
func TestNetworksCommands(t *testing.T) {
	db := fluxPairDB(t)
	stdout, stderr, err := fw(t, "", "networks", "--db", db, "--json")
	if err != nil {
		t.Fatalf("networks --json: %v\n%s", err, stderr)
	}
	type net struct {
		ID      string   `json:"id"`
		Domains []string `json:"domains"`
		Agents  []string `json:"agents"`
	}
	var nets []net
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var n net
		if err := json.Unmarshal([]byte(line), &n); err != nil {
			t.Fatalf("networks --json line %q: %v", line, err)
		}
		nets = append(nets, n)
	}
	if len(nets) != 2 || !slices.Equal(nets[0].Domains, []string{"one.test", "two.test"}) ||
		!slices.Equal(nets[1].Domains, []string{"lone.test"}) || len(nets[0].Agents) != 60 {
		t.Fatalf("networks: %+v; want {one.test two.test} over 60 agents, then {lone.test}", nets)
	}
	pair := nets[0].ID

	if out, _, err := fw(t, "", "networks", "--db", db, "--min-domains", "2"); err != nil ||
		!strings.Contains(out, pair) || strings.Contains(out, nets[1].ID+" ") {
		t.Errorf("networks --min-domains 2: %v\n%s", err, out)
	}
	if out, _, err := fw(t, "", "networks", "show", pair, "--db", db); err != nil ||
		!strings.Contains(out, "network "+pair+": 2 domains, 60 agents") || !strings.Contains(out, "  two.test\n") {
		t.Errorf("networks show: %v\n%s", err, out)
	}
	if _, _, err := fw(t, "", "networks", "show", "net-999", "--db", db); err == nil || !strings.Contains(err.Error(), `no flux network "net-999"`) {
		t.Errorf("networks show of an unknown id: %v", err)
	}
	if out, _, err := fw(t, "", "show", "one.test", "--db", db); err != nil || !strings.Contains(out, "network "+pair+": 2 domains, 60 agents; with two.test") {
		t.Errorf("show: %v\n%s", err, out)
	}
	if out, _, err := fw(t, "", "show", "calm.test", "--db", db); err != nil || strings.Contains(out, "network net-") {
		t.Errorf("show of a domain in no network: %v\n%s", err, out)
	}
	out, _, err := fw(t, "", "export", "--db", db, "--format", "domains", "--network", pair, "--min-confidence", "0")
	if err != nil || strings.Join(strings.Fields(out), " ") != "one.test two.test" {
		t.Errorf("export --network %s: %v\n%q", pair, err, out)
	}
	// A stale id writes nothing: the set it would empty keeps its entries.
	set := filepath.Join(t.TempDir(), "flux.nft")
	os.WriteFile(set, []byte("kept\n"), 0o644)
	if _, _, err := fw(t, "", "export", "--db", db, "--format", "nftables", "--network", "net-999", "-o", set); err == nil || !strings.Contains(err.Error(), `no flux network "net-999"`) {
		t.Errorf("export --network of an unknown id: %v", err)
	}
	if b, _ := os.ReadFile(set); string(b) != "kept\n" {
		t.Errorf("export --network of an unknown id wrote %q", b)
	}
}
