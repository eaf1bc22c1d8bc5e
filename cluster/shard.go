package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/crawler"
)

// Sharding. Past what one coordinator ingests and classifies, K
// coordinators share the domains: coordinator k of K (its "shard") owns
// the domains ShardOf assigns to k, each with its own database, due list,
// classify, publish and prune jobs. Agents are shared: every shard's work
// items carry the shard, and an agent publishes an item's observations to
//
//	<prefix>.obs.<shard>.<agent>
//
// which only that shard consumes (shard 0 also takes the unsharded
// <prefix>.obs.<agent>, so K = 1 is one coordinator as before).
//
// The shard count is the cluster's, not any one coordinator's: it lives in
// the key "map" of the key-value bucket <PREFIX>_SHARDS, written by the
// first coordinator that starts (from its daemon.nats.shards) and changed
// only by `fluxwatch cluster reshard`. While a reshard runs the map says
// the count it comes from; every coordinator then hands the domains it
// holds and no longer owns to their owner (mover.go), and the map loses
// its From once every old shard is done. Each coordinator also keeps its
// status under "status.<k>" for `fluxwatch status`.

// ShardKey is what ownership hashes: the registrable domain (public
// suffix plus one label) of name, lower-cased, or name itself when it has
// none. A zone and the names measured under it are judged together
// (classify's zones), so they must live in the same shard.
func ShardKey(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if zone, _, ok := crawler.Zone(name); ok {
		return zone
	}
	return name
}

// ShardOf returns the shard of shards (0 … shards−1) that owns name:
// jump consistent hashing (Lamping and Veach, 2014) of the 64-bit FNV-1a
// hash of its ShardKey. Jump hashing needs no table and, when the count
// goes from K to K+1, moves exactly the 1/(K+1) of the names that the new
// shard takes, every one of them to it: a reshard moves the least history
// it can. (Rendezvous hashing moves as little but costs K hashes a name;
// a plain hash mod K would move almost every name.) Shards are numbered,
// not named, which is what a coordinator's index is.
func ShardOf(name string, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(ShardKey(name)))
	return jump(h.Sum64(), shards)
}

// jump is Lamping and Veach's jump consistent hash of key into buckets.
func jump(key uint64, buckets int) int {
	var b, j int64 = -1, 0
	for j < int64(buckets) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// ShardMap is the cluster's shard count, as the key-value bucket holds it.
type ShardMap struct {
	// Shards is how many coordinators own the domains now.
	Shards int `json:"shards"`
	// From is the count a reshard in progress comes from; 0 when none is.
	From int `json:"from,omitempty"`
	// Epoch counts the reshards; Since is when the map last changed.
	Epoch int64     `json:"epoch"`
	Since time.Time `json:"since"`
}

// Owner returns the shard that owns name under the map.
func (m ShardMap) Owner(name string) int { return ShardOf(name, m.Shards) }

// same reports whether m and o are one map: the same count, reshard and
// epoch, whenever and wherever their times were written (a time.Time
// read back in another zone, or with a monotonic reading, is not ==).
func (m ShardMap) same(o ShardMap) bool {
	return m.Shards == o.Shards && m.From == o.From && m.Epoch == o.Epoch
}

// Moving reports whether a reshard is in progress.
func (m ShardMap) Moving() bool { return m.From > 0 }

// ShardStatus is what a coordinator says of its shard, under "status.<k>"
// in the shards bucket, every few seconds.
type ShardStatus struct {
	Shard  int `json:"shard"`
	Shards int `json:"shards"`
	// Domains and Dark count the shard's active domains and the dark
	// ones among them.
	Domains int `json:"domains"`
	Dark    int `json:"dark"`
	// Lag is how many observations wait in the stream for the shard's
	// consumer (delivered and not yet stored included).
	Lag uint64 `json:"lag"`
	// Stored counts the observations it stored since it started.
	Stored int64 `json:"stored"`
	// LastPublish is when the shard last published its list, Listed how
	// many names that list held.
	LastPublish time.Time `json:"last_publish,omitzero"`
	Listed      int       `json:"listed"`
	// MovedOut and MovedIn count the domains the shard handed to other
	// shards and took from them since it started; MovePending how many it
	// holds that another shard owns.
	MovedOut    int64 `json:"moved_out"`
	MovedIn     int64 `json:"moved_in"`
	MovePending int   `json:"move_pending"`
	// Updated is when the coordinator wrote this status.
	Updated time.Time `json:"updated"`
}

// ErrShard means a shard number is outside the shard count.
var ErrShard = errors.New("shard out of range")

// checkShard checks shard k of shards.
func checkShard(k, shards int) error {
	if shards < 1 || k < 0 || k >= shards {
		return fmt.Errorf("%w: shard %d of %d (shards are 0 to shards-1)", ErrShard, k, shards)
	}
	return nil
}

const (
	mapKey          = "map"
	statusKeyPrefix = "status."
	doneKeyPrefix   = "done."
)

func (n names) shardsBucket() string { return strings.ToUpper(n.prefix) + "_SHARDS" }

// obsShard is the subject of shard k's observations from agent.
func (n names) obsShard(k int, agent string) string {
	return n.prefix + ".obs." + strconv.Itoa(k) + "." + agent
}

// obsFilters are the subjects shard k consumes.
func (n names) obsFilters(k int) []string {
	own := n.prefix + ".obs." + strconv.Itoa(k) + ".*"
	if k == 0 {
		return []string{n.prefix + ".obs.*", own}
	}
	return []string{own}
}

// obsConsumer is the name of shard k's durable consumer: shard 0 keeps
// the name of the one coordinator before sharding.
func obsConsumer(k int) string {
	if k == 0 {
		return coordinatorConsumer
	}
	return coordinatorConsumer + "-" + strconv.Itoa(k)
}

// shardsKV opens (creating if need be) the shards bucket.
func shardsKV(ctx context.Context, js jetstream.JetStream, n names) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      n.shardsBucket(),
		Description: "fluxwatch shards: the shard count and each shard's status",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", n.shardsBucket(), err)
	}
	return kv, nil
}

// decodeMap reads a stored map; one without a shard does not read.
func decodeMap(b []byte) (ShardMap, error) {
	var m ShardMap
	if err := json.Unmarshal(b, &m); err != nil || m.Shards < 1 {
		return ShardMap{}, fmt.Errorf("the shard map %q does not read: %v", b, err)
	}
	return m, nil
}

// readMap reads the map and its revision; ok is false when there is none.
func readMap(ctx context.Context, kv jetstream.KeyValue) (m ShardMap, rev uint64, ok bool, err error) {
	e, err := kv.Get(ctx, mapKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ShardMap{}, 0, false, nil
	}
	if err != nil {
		return ShardMap{}, 0, false, err
	}
	if m, err = decodeMap(e.Value()); err != nil {
		return ShardMap{}, 0, false, err
	}
	return m, e.Revision(), true, nil
}

// ensureMap returns the cluster's map, writing one of shards if there is
// none yet (the first coordinator to start decides).
func ensureMap(ctx context.Context, kv jetstream.KeyValue, shards int, now time.Time) (ShardMap, error) {
	for {
		m, _, ok, err := readMap(ctx, kv)
		if err != nil || ok {
			return m, err
		}
		m = ShardMap{Shards: max(shards, 1), Since: now.UTC()}
		b, _ := json.Marshal(m)
		if _, err := kv.Create(ctx, mapKey, b); err == nil {
			return m, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return ShardMap{}, err
		}
		// Another coordinator wrote it first: read theirs.
	}
}

// Reshard starts moving the cluster from its shard count to shards: the
// map changes, and each coordinator hands over the domains it no longer
// owns. It fails while another reshard is in progress, and when the
// cluster has no map (no coordinator ever started). It returns the new
// map.
func Reshard(ctx context.Context, js jetstream.JetStream, prefix string, shards int, now time.Time) (ShardMap, error) {
	if shards < 1 {
		return ShardMap{}, fmt.Errorf("%w: cannot reshard to %d shards", ErrShard, shards)
	}
	n := names{cmp.Or(prefix, DefaultPrefix)}
	kv, err := shardsKV(ctx, js, n)
	if err != nil {
		return ShardMap{}, err
	}
	m, rev, ok, err := readMap(ctx, kv)
	if err != nil {
		return ShardMap{}, err
	}
	if !ok {
		return ShardMap{}, errors.New("no shard map: no coordinator has started on this NATS server and prefix")
	}
	if m.Moving() {
		return m, fmt.Errorf("a reshard from %d to %d shards is still in progress (since %s)", m.From, m.Shards, m.Since.Format(time.RFC3339))
	}
	if m.Shards == shards {
		return m, nil
	}
	next := ShardMap{Shards: shards, From: m.Shards, Epoch: m.Epoch + 1, Since: now.UTC()}
	b, _ := json.Marshal(next)
	if _, err := kv.Update(ctx, mapKey, b, rev); err != nil {
		return m, fmt.Errorf("writing the shard map: %w", err)
	}
	return next, nil
}

// ClusterState is what `fluxwatch status` and `cluster status` show of a
// sharded cluster: its map and every shard's last status.
type ClusterState struct {
	Map    ShardMap      `json:"map"`
	Shards []ShardStatus `json:"shards"`
}

// LoadClusterState reads the map and the shards' statuses; ok is false
// when the cluster is not sharded (no map).
func LoadClusterState(ctx context.Context, js jetstream.JetStream, prefix string) (st ClusterState, ok bool, err error) {
	n := names{cmp.Or(prefix, DefaultPrefix)}
	kv, err := js.KeyValue(ctx, n.shardsBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return ClusterState{}, false, nil
	}
	if err != nil {
		return ClusterState{}, false, err
	}
	m, _, ok, err := readMap(ctx, kv)
	if err != nil || !ok {
		return ClusterState{}, false, err
	}
	st.Map = m
	for k := range max(m.Shards, m.From) {
		e, err := kv.Get(ctx, statusKeyPrefix+strconv.Itoa(k))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			st.Shards = append(st.Shards, ShardStatus{Shard: k, Shards: m.Shards})
			continue
		}
		if err != nil {
			return st, true, err
		}
		var s ShardStatus
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			return st, true, fmt.Errorf("status of shard %d: %w", k, err)
		}
		st.Shards = append(st.Shards, s)
	}
	return st, true, nil
}

// Connect connects with conn, for a command that runs apart from the
// daemon (`cluster status`, `cluster reshard`); the returned function
// closes the connection. An unreachable server is not an error here: the
// first request fails when its context ends.
func Connect(conn ConnConfig, log *slog.Logger) (jetstream.JetStream, func(), error) {
	if log == nil {
		log = slog.Default()
	}
	nc, err := connect(conn, log)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}
