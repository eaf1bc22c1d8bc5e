package cluster

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/networks"
	"github.com/fluxwatch/fluxwatch/storage"
)

// ShardNetworks builds the flux networks of a cluster whose domains are
// sharded over several databases, each classified by its own run: it is
// the classify.NetworkBuilder of one shard. A network is built over the
// flux verdicts of every shard, so that a network whose domains live on
// several shards is one network, the one a single machine holding every
// domain would find.
//
// At the end of its run each shard puts what the run found (its flux
// members and the safeguards' address stats) in the object store
// <PREFIX>_NETS as the object "members-<shard>". The builder shard merges
// the latest run of every shard (the stats add up to those one machine
// would count), groups the members into networks that continue the ones
// it stored last, so that ids stay and rise as on one machine, stores
// them and puts them as the object "networks". Every other shard installs
// that table in its database before its next run associates with it, and
// after putting its own run.
//
// A round begins with each run of the builder. Without Watch, the builder
// builds at once, with each shard's latest run: the networks are one
// machine's when every other shard ran before the builder in the round. A
// builder that watches waits, before it builds, for the shards that have
// not run since the last round (they run after it), so that the order of
// the runs in a round does not matter. A run as of more than half a round
// (the time between the builder's last two runs) after the builder's is
// the next round's: the shard missed the round, which is built without
// waiting further. A shard is waited for one round only: one that does
// not come (a dead one) is built with its last run, or without, until it
// runs again. Rebuild builds a round again, with every shard's latest run;
// a network the first build numbered keeps its number from being handed
// out again, so the rebuilt ids may differ from one machine's.
//
// One ShardNetworks serves one shard's database; its methods are safe for
// concurrent use (Watch and the shard's runs).
type ShardNetworks struct {
	JS jetstream.JetStream
	// Prefix names the object store, upper-cased (default "fluxwatch").
	Prefix string
	// Shard is this shard's number, from 0 to Shards−1 (Shards 0 means 1).
	Shard, Shards int
	// ShardsNow, if set, gives the shard count in place of Shards, read at
	// each use: a reshard changes it while the shard runs.
	ShardsNow func() int
	// Builder is the number of the shard that builds the networks (0 by
	// default); every shard must name the same.
	Builder int
	// Meta names the agents' ASNs and countries in the networks built.
	Meta *ipmeta.DB
	// Now is the clock of a Rebuild before the builder's first run since
	// it started; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger

	mu     sync.Mutex
	bucket jetstream.ObjectStore
	// installed is the NUID of the "networks" object the database holds
	// (installed or built here): a Prepare with nothing newer writes
	// nothing.
	installed string
	// The builder's round: its own run, what the round started from, the
	// NUID of each other shard's latest run it has counted, the shards it
	// waits for and those it no longer waits for (they did not come in the
	// round they were waited for), and whether Watch is running.
	own      *shardRun
	round    *round
	seen     map[int]string
	pending  map[int]bool
	gaveUp   map[int]bool
	watching bool
}

// round is one round of the builder: the networks stored before it, their
// id sequence, the time of the builder's run, the latest time of a run
// that is the round's (zero: any), and whether its networks were built.
type round struct {
	nets  []networks.Network
	seq   uint64
	now   time.Time
	until time.Time
	built bool
}

var _ classify.NetworkBuilder = (*ShardNetworks)(nil)

// ErrNotBuilder means a shard other than the builder was asked to build.
var ErrNotBuilder = errors.New("cluster: this shard does not build the flux networks")

// Object names in the <PREFIX>_NETS store, and the metadata key of a
// members object that holds its run's time.
const (
	membersObject  = "members-" // + the shard's number
	networksObject = "networks"
	runTimeKey     = "run"
)

// statsSpare is the share a shard adds when it sizes its stats for the
// cluster: with its domains a little under its share of the cluster's, its
// stats are still at least as wide as one machine's, to which the builder
// folds them exactly.
const statsSpare = 8 // one eighth

func (s *ShardNetworks) shards() int {
	if s.ShardsNow != nil {
		return max(s.ShardsNow(), 1)
	}
	return max(s.Shards, 1)
}

func (s *ShardNetworks) builds() bool { return s.Shard == s.Builder }

func (s *ShardNetworks) log() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *ShardNetworks) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *ShardNetworks) check() error {
	switch n := s.shards(); {
	case s.JS == nil:
		return errors.New("cluster: flux networks without a JetStream connection")
	case s.Shard < 0 || s.Shard >= n:
		return fmt.Errorf("cluster: shard %d of %d", s.Shard, n)
	case s.Builder < 0 || s.Builder >= n:
		return fmt.Errorf("cluster: builder shard %d of %d", s.Builder, n)
	}
	return checkName("prefix", cmp.Or(s.Prefix, DefaultPrefix))
}

// store returns the object store, created on first use (an existing one
// is left as it is: see objectStore).
func (s *ShardNetworks) store(ctx context.Context) (jetstream.ObjectStore, error) {
	if s.bucket != nil {
		return s.bucket, nil
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	b, err := objectStore(ctx, s.JS, names{cmp.Or(s.Prefix, DefaultPrefix)}.netsStore(),
		"fluxwatch flux networks: each shard's flux members, and the networks built over them", true)
	if err != nil {
		return nil, err
	}
	s.bucket = b
	return b, nil
}

// Prepare installs in store the networks the builder put last, unless the
// store holds them already.
func (s *ShardNetworks) Prepare(ctx context.Context, store *storage.Store) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.install(ctx, store, false)
	return err
}

// StatsSize sizes a shard's stats for the whole cluster (and an eighth
// more), so that the builder merges every shard's without folding, or
// folds them to exactly one machine's width.
func (s *ShardNetworks) StatsSize(active int) int {
	n := active * s.shards()
	return n + n/statsSpare
}

// Build puts this shard's run in the object store. The builder then starts
// a round and builds its networks, unless it waits for shards (see
// Watch); another shard installs the latest networks the builder put. It
// returns how many networks the database holds.
func (s *ShardNetworks) Build(ctx context.Context, store *storage.Store, run classify.NetworkRun) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.store(ctx)
	if err != nil {
		return 0, err
	}
	r := &shardRun{head: runHead{Version: runFormat, Shard: s.Shard, Shards: s.shards(), Now: run.Now.UTC(), Active: run.Active},
		members: run.Members, stats: run.Stats}
	data, err := r.encode()
	if err != nil {
		return 0, err
	}
	// The run's time is in the object's metadata too, for Watch.
	name := membersObject + strconv.Itoa(s.Shard)
	meta := jetstream.ObjectMeta{Name: name, Metadata: map[string]string{runTimeKey: run.Now.UTC().Format(time.RFC3339Nano)}}
	if _, err := b.Put(ctx, meta, bytes.NewReader(data)); err != nil {
		return 0, fmt.Errorf("putting %s: %w", name, err)
	}
	if !s.builds() {
		return s.install(ctx, store, true)
	}
	s.own = r
	if err := s.startRound(ctx, store, run.Now); err != nil {
		return 0, err
	}
	if s.watching && len(s.pending) > 0 {
		s.log().Info("building the flux networks once the shards that have not run this round have", "shards", slices.Sorted(maps.Keys(s.pending)))
		return count(store)
	}
	return s.build(ctx, store)
}

// startRound starts a round at now from the stored networks: it waits for
// the shards that have not run since the last round began (or since their
// run the last round waited for), unless a round waited for them in vain
// and they have not run since.
func (s *ShardNetworks) startRound(ctx context.Context, store *storage.Store, now time.Time) error {
	nets, err := networks.List(store)
	if err != nil {
		return err
	}
	seq, err := store.NetworkSequence()
	if err != nil {
		return err
	}
	b, err := s.store(ctx)
	if err != nil {
		return err
	}
	latest := map[int]string{}
	for k := range s.shards() {
		if k == s.Shard {
			continue
		}
		name := membersObject + strconv.Itoa(k)
		info, err := b.GetInfo(ctx, name)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("getting %s: %w", name, err)
		}
		latest[k] = info.NUID
	}
	pending, gaveUp := map[int]bool{}, map[int]bool{}
	for k := range s.shards() {
		switch {
		case k == s.Shard || latest[k] != s.seen[k]: // it has run since
		case s.pending[k] || s.gaveUp[k]:
			gaveUp[k] = true // waited for in vain: not again until it runs
		default:
			pending[k] = true
		}
	}
	r := &round{nets: nets, seq: seq, now: now.UTC()}
	if s.round != nil && r.now.After(s.round.now) {
		// A run more than half a round after the builder's is the next
		// round's: the shard missed this one.
		r.until = r.now.Add(r.now.Sub(s.round.now) / 2)
	}
	s.round = r
	s.seen, s.pending, s.gaveUp = latest, pending, gaveUp
	return nil
}

// Rebuild builds the round's networks now, with every shard's latest run,
// against the networks the round started from and as of the builder's run:
// the round waits for no shard any longer. Before the builder's first run
// since it started, it starts a round from the stored networks, as of Now.
func (s *ShardNetworks) Rebuild(ctx context.Context, store *storage.Store) (int, error) {
	if !s.builds() {
		return 0, ErrNotBuilder
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.round == nil {
		if err := s.startRound(ctx, store, s.now()); err != nil {
			return 0, err
		}
	}
	return s.build(ctx, store)
}

// arrived counts the run info announces, and reports whether the round
// waited for it alone. A run of a shard the round waits for is the
// round's, unless it is too late to be: then the shard missed the round,
// and its run counts as run since for the next.
func (s *ShardNetworks) arrived(info *jetstream.ObjectInfo) bool {
	if info == nil || !strings.HasPrefix(info.Name, membersObject) {
		return false
	}
	k, err := strconv.Atoi(strings.TrimPrefix(info.Name, membersObject))
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pending[k] || info.NUID == s.seen[k] {
		return false
	}
	delete(s.pending, k)
	at, err := time.Parse(time.RFC3339Nano, info.Metadata[runTimeKey])
	if err != nil || s.round.until.IsZero() || !at.After(s.round.until) {
		s.seen[k] = info.NUID
	}
	return len(s.pending) == 0 && !s.round.built
}

// Watch makes the builder wait for the shards that run after it in a
// round (see ShardNetworks) and builds the round's networks when the last
// of them has run, until ctx ends. It is for the builder only; it logs the
// builds that fail rather than stopping.
func (s *ShardNetworks) Watch(ctx context.Context, store *storage.Store) error {
	if !s.builds() {
		return ErrNotBuilder
	}
	s.mu.Lock()
	b, err := s.store(ctx)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	// Not only updates: the latest run of each shard first, in case one
	// arrived since the builder's run.
	w, err := b.Watch(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watching the flux members: %w", err)
	}
	defer w.Stop()
	s.mu.Lock()
	s.watching = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.watching = false
		s.mu.Unlock()
	}()
	for {
		var info *jetstream.ObjectInfo
		ok := true
		select {
		case <-ctx.Done():
			return nil
		case info, ok = <-w.Updates():
		}
		if !ok { // the connection closed
			if ctx.Err() != nil {
				return nil
			}
			return errors.New("cluster: the watch of the flux members ended")
		}
		if !s.arrived(info) {
			continue
		}
		n, err := s.Rebuild(ctx, store)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log().Error("building the flux networks", "err", err)
			continue
		}
		s.log().Info("built the flux networks with the shards that ran after the builder", "networks", n)
	}
}

// install stores the latest networks the builder put, unless they are
// those store holds already, and returns how many networks store holds
// (counted, when nothing was installed, only if counted is asked for).
func (s *ShardNetworks) install(ctx context.Context, store *storage.Store, counted bool) (int, error) {
	b, err := s.store(ctx)
	if err != nil {
		return 0, err
	}
	// The object's info first: its chunks are fetched only when it is
	// not the table installed already (a shard looks every few seconds).
	info, err := b.GetInfo(ctx, networksObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) || err == nil && info.NUID == s.installed {
		if !counted { // none built yet, or nothing new
			return 0, nil
		}
		return count(store)
	}
	if err != nil {
		return 0, fmt.Errorf("getting the flux networks: %w", err)
	}
	res, err := b.Get(ctx, networksObject)
	if err != nil {
		return 0, fmt.Errorf("getting the flux networks: %w", err)
	}
	defer res.Close()
	if info, err = res.Info(); err != nil {
		return 0, fmt.Errorf("getting the flux networks: %w", err)
	}
	data, err := io.ReadAll(res)
	if err != nil {
		return 0, fmt.Errorf("getting the flux networks: %w", err)
	}
	t, err := decodeTable(data)
	if err != nil {
		return 0, fmt.Errorf("flux networks %s: %w", info.NUID, err)
	}
	if err := networks.Install(store, t.Networks, t.Seq); err != nil {
		return 0, err
	}
	s.installed = info.NUID
	return len(t.Networks), nil
}

func count(store *storage.Store) (int, error) {
	nets, err := networks.List(store)
	return len(nets), err
}

// build groups the latest run of every shard into networks that continue
// the round's starting networks, as of the round's time, stores them in
// store and puts them.
func (s *ShardNetworks) build(ctx context.Context, store *storage.Store) (int, error) {
	b, err := s.store(ctx)
	if err != nil {
		return 0, err
	}
	if s.own == nil { // restarted since its last run
		if s.own, err = loadRun(ctx, b, s.Shard); err != nil {
			return 0, err
		}
	}
	// One run at a time: the builder holds every shard's members, but
	// only the merged stats.
	var all merger
	var missing []int
	for k := range s.shards() {
		r := s.own
		if k != s.Shard {
			if r, err = loadRun(ctx, b, k); err != nil {
				return 0, err
			}
		}
		if r == nil {
			missing = append(missing, k)
			continue
		}
		all.add(r)
	}
	if len(missing) > 0 {
		s.log().Warn("building the flux networks without the shards that have not run yet", "shards", missing)
	}
	members, stats, from := all.result()
	// A build of the round before (Rebuild) may have numbered new
	// networks: their ids are not handed out again.
	seq, err := store.NetworkSequence()
	if err != nil {
		return 0, err
	}
	r := s.round
	nets, seq := networks.Build(r.nets, max(seq, r.seq), members, stats, r.now, networks.Options{Meta: s.Meta})
	if err := networks.Install(store, nets, seq); err != nil {
		return 0, err
	}
	data, err := encodeTable(builtTable{Version: tableFormat, Now: r.now, Seq: seq, From: from, Networks: nets})
	if err != nil {
		return 0, err
	}
	info, err := b.PutBytes(ctx, networksObject, data)
	if err != nil {
		return 0, fmt.Errorf("putting the flux networks: %w", err)
	}
	s.installed, r.built = info.NUID, true
	return len(nets), nil
}

// merger gathers the members of shards' runs and merges their stats. A
// domain in two runs (moved between shards) counts once, as the run that
// saw it last has it.
type merger struct {
	members []networks.Member
	where   map[string]int // domain → index in members
	stats   networks.AddrStats
	active  int
	from    []builtFrom
}

func (m *merger) add(r *shardRun) {
	if m.where == nil {
		m.where = map[string]int{}
	}
	m.from = append(m.from, builtFrom{Shard: r.head.Shard, Now: r.head.Now, Members: len(r.members)})
	m.active += r.head.Active
	m.stats.Merge(r.stats)
	for _, mb := range r.members {
		i, seen := m.where[mb.Domain]
		switch {
		case !seen:
			m.where[mb.Domain] = len(m.members)
			m.members = append(m.members, mb)
		case mb.LastSeen.After(m.members[i].LastSeen):
			m.members[i] = mb
		}
	}
}

// result returns the members, the stats at most as wide as one machine
// sizes them for all the runs' domains (narrower only when a run's are),
// and the runs.
func (m *merger) result() ([]networks.Member, *networks.AddrStats, []builtFrom) {
	stats := networks.StatsFor(m.active)
	stats.Merge(&m.stats)
	return m.members, stats, m.from
}

// The object members-<k> is gzip of: a JSON header (runHead) and a
// newline, the stats in their binary form (StatsBytes of them), then the
// members, one JSON object each (networks.Member). The object "networks"
// is gzip of one JSON document (builtTable).
const (
	runFormat   = 1
	tableFormat = 1
)

// runHead heads a members object.
type runHead struct {
	Version int       `json:"version"`
	Shard   int       `json:"shard"`
	Shards  int       `json:"shards"`
	Now     time.Time `json:"now"`
	// Active is how many active domains the shard's database held.
	Active     int `json:"active"`
	Members    int `json:"members"`
	StatsBytes int `json:"stats_bytes"`
}

// shardRun is one shard's classification run, as the builder sees it.
type shardRun struct {
	head    runHead
	members []networks.Member
	stats   *networks.AddrStats
}

func (r *shardRun) encode() ([]byte, error) {
	stats, err := r.stats.MarshalBinary()
	if err != nil {
		return nil, err
	}
	head := r.head
	head.Members, head.StatsBytes = len(r.members), len(stats)
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	enc := json.NewEncoder(z) // a newline after each value
	if err := enc.Encode(head); err != nil {
		return nil, err
	}
	if _, err := z.Write(stats); err != nil {
		return nil, err
	}
	for _, m := range r.members {
		if err := enc.Encode(m); err != nil {
			return nil, fmt.Errorf("member %s: %w", m.Domain, err)
		}
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeRun(data []byte) (*shardRun, error) {
	z, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	in := bufio.NewReader(z)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	r := &shardRun{}
	if err := json.Unmarshal(line, &r.head); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if r.head.Version != runFormat {
		return nil, fmt.Errorf("format %d, want %d", r.head.Version, runFormat)
	}
	if r.head.StatsBytes < 0 || r.head.Members < 0 {
		return nil, fmt.Errorf("header: %d stats bytes, %d members", r.head.StatsBytes, r.head.Members)
	}
	stats := make([]byte, r.head.StatsBytes)
	if _, err := io.ReadFull(in, stats); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	r.stats = &networks.AddrStats{}
	if err := r.stats.UnmarshalBinary(stats); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(in)
	for {
		var m networks.Member
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("member %d: %w", len(r.members), err)
		}
		r.members = append(r.members, m)
	}
	if len(r.members) != r.head.Members {
		return nil, fmt.Errorf("%d members, the header says %d", len(r.members), r.head.Members)
	}
	return r, nil
}

// loadRun returns shard k's latest run, or nil when it has put none.
func loadRun(ctx context.Context, b jetstream.ObjectStore, k int) (*shardRun, error) {
	name := membersObject + strconv.Itoa(k)
	data, err := b.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting %s: %w", name, err)
	}
	r, err := decodeRun(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// builtTable is the object "networks": the networks the builder built,
// the id sequence they were numbered to, and the runs they were built
// from.
type builtTable struct {
	Version  int                `json:"version"`
	Now      time.Time          `json:"now"`
	Seq      uint64             `json:"seq"`
	From     []builtFrom        `json:"from"`
	Networks []networks.Network `json:"networks"`
}

// builtFrom is one shard's run that a table was built from.
type builtFrom struct {
	Shard   int       `json:"shard"`
	Now     time.Time `json:"now"`
	Members int       `json:"members"`
}

func encodeTable(t builtTable) ([]byte, error) {
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	if err := json.NewEncoder(z).Encode(t); err != nil {
		return nil, err
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeTable(data []byte) (builtTable, error) {
	var t builtTable
	z, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return t, err
	}
	if err := json.NewDecoder(z).Decode(&t); err != nil {
		return t, err
	}
	if t.Version != tableFormat {
		return t, fmt.Errorf("format %d, want %d", t.Version, tableFormat)
	}
	return t, nil
}
