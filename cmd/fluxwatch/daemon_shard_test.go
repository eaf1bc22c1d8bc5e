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

	"github.com/fluxwatch/fluxwatch/cluster"
)

// Two daemons, shards 0 and 1 of a cluster, each with its own database
// of listed domains: the feed publisher (shard 0) writes one block list
// holding both shards' names; `cluster status` shows both shards; when
// shard 1 is down, a publisher that starts again keeps its names in the
// feed; and a seed added at shard 0 that shard 1 owns reaches shard 1.
func TestShardedDaemonsPublishOneFeed(t *testing.T) {
	ns := startNATS(t)
	dir := t.TempDir()
	var names [2][]string
	for i := 0; len(names[0]) < 5 || len(names[1]) < 5; i++ {
		n := fmt.Sprintf("flux%d.example", i)
		k := cluster.ShardOf(n, 2)
		names[k] = append(names[k], n)
	}
	hosts := filepath.Join(dir, "feed.hosts")
	// Every shard reads the same seed file and keeps its own names.
	seedList := filepath.Join(dir, "seeds.txt")
	os.WriteFile(seedList, []byte(strings.Join(slices.Concat(names[0], names[1]), "\n")+"\n"), 0o644)
	cfgs := [2]string{}
	for k := range 2 {
		db := filepath.Join(dir, fmt.Sprintf("shard%d.db", k))
		storeListed(t, db, names[k], time.Now().Add(24*time.Hour))
		exports := "[]"
		if k == 0 {
			exports = fmt.Sprintf("[{format: hosts, out: %s}]", hosts)
		}
		cfgs[k] = filepath.Join(dir, fmt.Sprintf("shard%d.yaml", k))
		os.WriteFile(cfgs[k], []byte(idleDaemonYAML(db, fmt.Sprintf(`  seed_files: [%s]
  exports: %s
  nats:
    url: %s
    shard: %d
    shards: 2
`, seedList, exports, ns.ClientURL(), k))), 0o644)
	}
	feed := func() []string {
		b, _ := os.ReadFile(hosts)
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
				out = append(out, f[1])
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	all := slices.Sorted(slices.Values(slices.Concat(names[0], names[1])))

	logs0, stop0 := startDaemon(t, cfgs[0])
	logs1, stop1 := startDaemon(t, cfgs[1])
	feedWaitUntil(t, 30*time.Second, "the publisher's block list to hold both shards' names", func() bool {
		return slices.Equal(feed(), all)
	})

	out, stderr, err := fw(t, "", "cluster", "status", "--json", "--config", cfgs[1])
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, stderr)
	}
	var st cluster.ClusterState
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("cluster status --json: %v\n%s", err, out)
	}
	if st.Map.Shards != 2 || st.Map.Moving() || len(st.Shards) != 2 {
		t.Fatalf("cluster status: %+v", st)
	}
	for k, s := range st.Shards {
		if s.Shard != k || s.Domains != len(names[k]) || s.Listed != len(names[k]) || s.LastPublish.IsZero() {
			t.Errorf("shard %d status %+v; it holds and lists %d domains and has published", k, s, len(names[k]))
		}
	}
	if out, _, err := fw(t, "", "cluster", "status", "--config", cfgs[0]); err != nil || !strings.Contains(out, "cluster: 2 shards") {
		t.Errorf("cluster status: %v\n%s", err, out)
	}

	// A name seeded at shard 0 that shard 1 owns goes to shard 1.
	var seed string
	for i := 0; seed == ""; i++ {
		if n := fmt.Sprintf("new%d.example", i); cluster.ShardOf(n, 2) == 1 {
			seed = n
		}
	}
	seedFile := filepath.Join(dir, "seed.txt")
	os.WriteFile(seedFile, []byte(seed+"\n"), 0o644)
	if out, stderr, err := fw(t, "", "seeds", "add", "--config", cfgs[0], seedFile); err != nil || !strings.Contains(out, "1 for other shards") {
		t.Fatalf("seeds add at shard 0: %v\n%s%s", err, out, stderr)
	}
	feedWaitUntil(t, 20*time.Second, "shard 1 to keep the seed shard 0 handed over", func() bool {
		out, _, err := fw(t, "", "show", "--config", cfgs[1], seed)
		return err == nil && strings.Contains(out, seed)
	})
	if _, _, err := fw(t, "", "show", "--config", cfgs[0], seed); err == nil {
		t.Errorf("shard 0 kept %s, which shard 1 owns", seed)
	}
	// Removed at shard 0, it is removed at shard 1, which owns it.
	if out, stderr, err := fw(t, "", "seeds", "remove", "--config", cfgs[0], seed); err != nil || !strings.Contains(out, "1 handed to other shards") {
		t.Fatalf("seeds remove at shard 0: %v\n%s%s", err, out, stderr)
	}
	feedWaitUntil(t, 20*time.Second, "shard 1 to remove the seed shard 0 handed over", func() bool {
		out, _, err := fw(t, "", "seeds", "list", "--config", cfgs[1])
		return err == nil && !strings.Contains(out, seed)
	})
	if out, _, _ := fw(t, "", "seeds", "list", "--all", "--config", cfgs[1]); !strings.Contains(out, seed) {
		t.Errorf("shard 1 lost the history of %s with its removal:\n%s", seed, out)
	}

	// A classification through a shard's daemon runs (with the daemon's
	// network builder: cluster tests check what it builds); one apart from
	// the daemon is refused.
	if out, stderr, err := fw(t, "", "classify", "--config", cfgs[1]); err != nil {
		t.Errorf("classify through shard 1's daemon: %v\n%s%s", err, out, stderr)
	}

	// Reshard to three: shards 0 and 1 hand shard 2 its domains, which
	// wait in NATS until its daemon starts; the feed keeps every name.
	out, stderr, err = fw(t, "", "cluster", "reshard", "--to", "3", "--wait", "--timeout", "3s", "--config", cfgs[0])
	if err == nil || !strings.Contains(fmt.Sprint(err)+stderr, "start their coordinators") {
		t.Errorf("cluster reshard --wait with shard 2 not running: %v\n%s%s", err, out, stderr)
	}
	cfg2 := filepath.Join(dir, "shard2.yaml")
	b, _ := os.ReadFile(cfgs[1])
	os.WriteFile(cfg2, []byte(strings.NewReplacer("shard1.db", "shard2.db", "shard: 1", "shard: 2", "shards: 2", "shards: 3").Replace(string(b))), 0o644)
	logs2, stop2 := startDaemon(t, cfg2)
	if _, _, err := fw(t, "", "cluster", "reshard", "--to", "4", "--config", cfgs[0]); err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Errorf("a second reshard while the first runs: %v", err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("shard 2:\n%s", logs2.String())
			t.Logf("shard 0:\n%s", logs0.String())
		}
	}()
	status := func() (cluster.ClusterState, bool) {
		var st cluster.ClusterState
		out, _, err := fw(t, "", "cluster", "status", "--json", "--config", cfgs[0])
		return st, err == nil && json.Unmarshal([]byte(out), &st) == nil
	}
	feedWaitUntil(t, 30*time.Second, "the reshard to end", func() bool {
		st, ok := status()
		return ok && !st.Map.Moving() && st.Map.Shards == 3
	})
	// The moved names' listings moved with them: the feed still holds every
	// name, now from three shards' lists.
	feedWaitUntil(t, 20*time.Second, "the feed to hold every name after the reshard", func() bool {
		return slices.Equal(feed(), all)
	})
	want3 := 0
	for _, n := range slices.Concat(names[0], names[1]) { // the seed is removed: not counted
		if cluster.ShardOf(n, 3) == 2 {
			want3++
		}
	}
	feedWaitUntil(t, 20*time.Second, "every shard's status to count its domains", func() bool {
		st, ok := status()
		if !ok || len(st.Shards) != 3 || st.Shards[2].Domains != want3 {
			return false
		}
		total := 0
		for _, s := range st.Shards {
			total += s.Domains
		}
		return total == len(names[0])+len(names[1])
	})
	if want3 == 0 {
		t.Fatal("no domain of the test moves to shard 2: the reshard is not tested")
	}
	if err := stop2(); err != nil {
		t.Fatalf("shard 2: %v\n%s", err, logs2.String())
	}

	// Shard 1 goes down; the publisher starts again and still lists its
	// names, which have not expired.
	if err := stop1(); err != nil {
		t.Fatalf("shard 1: %v\n%s", err, logs1.String())
	}
	if err := stop0(); err != nil {
		t.Fatalf("shard 0: %v\n%s", err, logs0.String())
	}
	if _, stderr, err := fw(t, "", "classify", "--config", cfgs[1]); err == nil || !strings.Contains(fmt.Sprint(err)+stderr, "through its running daemon") {
		t.Errorf("classify of shard 1's database without its daemon: %v\n%s", err, stderr)
	}
	if _, stderr, err := fw(t, "", "classify", "--dry-run", "--config", cfgs[1]); err != nil {
		t.Errorf("classify --dry-run of shard 1's database: %v\n%s", err, stderr)
	}
	os.Remove(hosts)
	logs0, stop0 = startDaemon(t, cfgs[0])
	feedWaitUntil(t, 30*time.Second, "the restarted publisher to write the feed", func() bool { return len(feed()) > 0 })
	if got := feed(); !slices.Equal(got, all) {
		t.Errorf("with shard 1 down the feed holds %v; want %v", got, all)
	}
	if err := stop0(); err != nil {
		t.Fatalf("shard 0: %v\n%s", err, logs0.String())
	}
}
