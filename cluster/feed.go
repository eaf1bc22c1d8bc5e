package cluster

// The shards' feed. When domains are sharded across coordinators, each
// shard lists only the domains it owns, but consumers must load one block
// list. Every shard therefore publishes its list to a JetStream object
// store,
//
//	<PREFIX>_FEED     object "listed-<k>", the last list shard k published
//
// and the publisher merges the last list of every shard into one feed
// (MergeLists) and writes its exports from it. A shard that is down keeps
// its last list in the store, so its entries stay in the feed until their
// listings expire: a shard going down never empties the feed.

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/storage"
)

// FeedEntry is one listed domain of a shard's list. It keeps two verdicts
// because the exports read two: the block lists and the address formats
// write the verdict the listing rests on (its kind, score, agents and name
// servers), while jsonl and csv write the domain's latest verdict, which
// after the flux stopped being seen is a non-flux verdict without agents.
type FeedEntry struct {
	// Listed is the domain's listed record, as classify.Each gives it with
	// listedOnly: the flux verdict the listing rests on, with the listing.
	Listed classify.Verdict `json:"listed"`
	// Latest is the domain's latest verdict, as classify.Each gives it
	// without listedOnly, when it is not the listed one (a later verdict
	// found no flux while the listing runs on); nil when it is.
	Latest *classify.Verdict `json:"latest,omitempty"`
}

// Domain is the listed domain's name.
func (e FeedEntry) Domain() string { return e.Listed.Domain }

// live reports whether the entry is on the list at now: listed, and its
// listing not expired.
func (e FeedEntry) live(now time.Time) bool {
	return e.Listed.Listed() && now.Before(e.Listed.Listing.ExpiresAt)
}

// ShardList is the list one shard published.
type ShardList struct {
	Shard     int // from 0
	Shards    int // how many shards there were when it was published
	Published time.Time
	// Entries are the shard's listed domains, in name order.
	Entries []FeedEntry
}

// ReadShardList reads the listed domains of store as shard's list,
// published at now, in one read of the store.
func ReadShardList(store *storage.Store, shard, shards int, now time.Time) (ShardList, error) {
	l := ShardList{Shard: shard, Shards: shards, Published: now.UTC()}
	err := classify.EachListed(store, func(listed, latest classify.Verdict) error {
		e := FeedEntry{Listed: listed}
		// The listed record is a copy of the verdict that listed the
		// domain, made in the same run: a verdict of another run, or of
		// another kind, is a later one.
		if !latest.ClassifiedAt.Equal(listed.ClassifiedAt) || latest.Verdict != listed.Verdict {
			e.Latest = &latest
		}
		l.Entries = append(l.Entries, e)
		return nil
	})
	if err != nil {
		return ShardList{}, fmt.Errorf("reading the listed domains: %w", err)
	}
	return l, nil
}

// check reports what makes l unfit to publish: the merge and its readers
// rely on a shard number, a publish time, and listed entries in name order.
func (l ShardList) check() error {
	if l.Shards < 1 || l.Shard < 0 || l.Shard >= l.Shards {
		return fmt.Errorf("shard %d of %d: not a shard", l.Shard, l.Shards)
	}
	if l.Published.IsZero() {
		return fmt.Errorf("shard %d: no publish time", l.Shard)
	}
	for i, e := range l.Entries {
		if !e.Listed.Listed() {
			return fmt.Errorf("shard %d: %s is not listed", l.Shard, e.Domain())
		}
		if i > 0 && l.Entries[i-1].Domain() >= e.Domain() {
			return fmt.Errorf("shard %d: %s after %s: entries not in name order", l.Shard, e.Domain(), l.Entries[i-1].Domain())
		}
	}
	return nil
}

func (n names) feedStore() string { return strings.ToUpper(n.prefix) + "_FEED" }
func (n names) netsStore() string { return strings.ToUpper(n.prefix) + "_NETS" }

// feedObjectPrefix starts the name of every shard's list object.
const feedObjectPrefix = "listed-"

func shardObject(shard int) string { return feedObjectPrefix + strconv.Itoa(shard) }

// objectShard is the shard whose list the object name holds.
func objectShard(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, feedObjectPrefix)
	if !ok {
		return 0, false
	}
	k, err := strconv.Atoi(s)
	return k, err == nil && k >= 0 && strconv.Itoa(k) == s
}

// feedVersion is the version of the object format, the first line's
// "version". A reader refuses a version it does not know rather than
// merging what it cannot read, as a shard upgraded first could write.
const feedVersion = 1

// feedHeader is the first line of a list object: the list without its
// entries, and how many follow.
type feedHeader struct {
	Version   int       `json:"version"`
	Shard     int       `json:"shard"`
	Shards    int       `json:"shards"`
	Published time.Time `json:"published"`
	Entries   int       `json:"entries"`
}

// feedReadTimeout bounds one read of one list. Without a deadline the
// JetStream client gives a whole object read its default API timeout of 5
// seconds, too short for a large list over a slow link; and a read of a
// list replaced meanwhile waits for chunks that are gone until its
// deadline, so the deadline must not be the caller's whole budget.
const feedReadTimeout = 20 * time.Second

// feedObjects binds to the feed's object store; with create, it creates it
// when it is missing (see objectStore).
func feedObjects(ctx context.Context, js jetstream.JetStream, prefix string, create bool) (jetstream.ObjectStore, error) {
	prefix = cmp.Or(prefix, DefaultPrefix)
	if err := checkName("prefix", prefix); err != nil {
		return nil, err
	}
	return objectStore(ctx, js, names{prefix}.feedStore(), "fluxwatch feed: the last list each shard published", create)
}

// objectStore binds to the object store name; with create, it creates it
// (file storage, one replica) when it is missing. An existing store is
// left as it is, so an operator may give it replicas. Without create, a
// missing store is jetstream.ErrBucketNotFound.
func objectStore(ctx context.Context, js jetstream.JetStream, name, description string, create bool) (jetstream.ObjectStore, error) {
	s, err := js.ObjectStore(ctx, name)
	if create && errors.Is(err, jetstream.ErrBucketNotFound) {
		s, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      name,
			Description: description,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another shard created it first
			s, err = js.ObjectStore(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening object store %s: %w", name, err)
	}
	return s, nil
}

// PutShardList publishes l as shard l.Shard's list, replacing the one it
// published before. The object is gzip-compressed JSON Lines, a header
// line (feedHeader) then one FeedEntry per line, encoded while it is sent:
// a list of hundreds of thousands of entries is never held encoded.
func PutShardList(ctx context.Context, js jetstream.JetStream, prefix string, l ShardList) error {
	if err := l.check(); err != nil {
		return fmt.Errorf("publishing the shard's list: %w", err)
	}
	s, err := feedObjects(ctx, js, prefix, true)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	encoded := make(chan error, 1)
	go func() {
		err := encodeList(pw, l)
		pw.CloseWithError(err) // nil: Put reads to the end of the list
		encoded <- err
	}()
	meta := jetstream.ObjectMeta{
		Name:        shardObject(l.Shard),
		Description: fmt.Sprintf("fluxwatch shard %d of %d: %d listed domains", l.Shard, l.Shards, len(l.Entries)),
		Metadata: map[string]string{
			"shard":     strconv.Itoa(l.Shard),
			"shards":    strconv.Itoa(l.Shards),
			"published": l.Published.UTC().Format(time.RFC3339Nano),
			"entries":   strconv.Itoa(len(l.Entries)),
			"encoding":  "gzip, JSON Lines",
		},
	}
	_, err = s.Put(ctx, meta, pr)
	// Put may stop reading early (an error, the context): let the encoder
	// see it and end.
	pr.CloseWithError(errors.New("the object store stopped reading"))
	if encErr := <-encoded; err == nil {
		err = encErr
	}
	if err != nil {
		return fmt.Errorf("publishing shard %d's list: %w", l.Shard, err)
	}
	return nil
}

// encodeList writes l in the object format to w. It compresses at gzip's
// best speed: on 10,000 entries the default level took four times as long
// (about 4 s against 0.9 s) to make an object only 18% smaller.
func encodeList(w io.Writer, l ShardList) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(zw, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	h := feedHeader{Version: feedVersion, Shard: l.Shard, Shards: l.Shards, Published: l.Published.UTC(), Entries: len(l.Entries)}
	if err := enc.Encode(h); err != nil {
		return err
	}
	for i := range l.Entries {
		if err := enc.Encode(&l.Entries[i]); err != nil {
			return fmt.Errorf("encoding %s: %w", l.Entries[i].Domain(), err)
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return zw.Close()
}

// LoadShardLists reads the last list every shard published, ordered by
// shard; none when no shard has published yet. A list replaced while it is
// read is read again, up to three times.
func LoadShardLists(ctx context.Context, js jetstream.JetStream, prefix string) ([]ShardList, error) {
	s, err := feedObjects(ctx, js, prefix, false)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	infos, err := s.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the shards' lists: %w", err)
	}
	var lists []ShardList
	for _, info := range infos {
		shard, ok := objectShard(info.Name)
		if !ok {
			continue // not a shard's list: left to whoever put it there
		}
		// A list replaced while it is read fails the read (or stalls it
		// until its deadline): its replacement is read instead.
		var l ShardList
		for try := 1; ; try++ {
			if l, err = loadList(ctx, s, info.Name); err == nil || try == 3 || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("reading shard %d's list: %w", shard, err)
		}
		if l.Shard != shard {
			return nil, fmt.Errorf("reading shard %d's list: it says it is shard %d's", shard, l.Shard)
		}
		lists = append(lists, l)
	}
	slices.SortFunc(lists, func(a, b ShardList) int { return cmp.Compare(a.Shard, b.Shard) })
	return lists, nil
}

// loadList reads and decodes one list object.
func loadList(ctx context.Context, s jetstream.ObjectStore, name string) (ShardList, error) {
	ctx, cancel := context.WithTimeout(ctx, feedReadTimeout)
	defer cancel()
	r, err := s.Get(ctx, name)
	if err != nil {
		return ShardList{}, err
	}
	defer r.Close()
	l, err := decodeList(r)
	if err != nil {
		return ShardList{}, err
	}
	// The object's digest is checked when its end is read: read to it.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return ShardList{}, err
	}
	return l, nil
}

// decodeList reads a list in the object format from r.
func decodeList(r io.Reader) (ShardList, error) {
	zr, err := gzip.NewReader(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return ShardList{}, err
	}
	dec := json.NewDecoder(zr)
	var h feedHeader
	if err := dec.Decode(&h); err != nil {
		return ShardList{}, fmt.Errorf("header: %w", err)
	}
	if h.Version != feedVersion {
		return ShardList{}, fmt.Errorf("format version %d, not %d: published by another version of fluxwatch", h.Version, feedVersion)
	}
	l := ShardList{Shard: h.Shard, Shards: h.Shards, Published: h.Published, Entries: make([]FeedEntry, 0, h.Entries)}
	for {
		// Decode, unlike More, reports the error that ends the stream,
		// such as a failed gzip checksum, rather than taking it for the end.
		var e FeedEntry
		err := dec.Decode(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			return ShardList{}, fmt.Errorf("entry %d: %w", len(l.Entries)+1, err)
		}
		l.Entries = append(l.Entries, e)
	}
	if len(l.Entries) != h.Entries {
		return ShardList{}, fmt.Errorf("%d entries, the header says %d", len(l.Entries), h.Entries)
	}
	if err := l.check(); err != nil {
		return ShardList{}, err
	}
	return l, nil
}

// Feed is the one list the shards' lists make, in name order.
type Feed []FeedEntry

// MergeLists makes the one feed of the shards' lists at now: the union of
// their entries whose listing has not expired. A shard that is down keeps
// its entries until they expire. A name in more than one list (a domain
// caught moving between shards) appears once, as the list published last
// has it, and not at all when its listing there has expired; between lists
// published at the same time the higher shard's wins, so that the feed
// does not change from one merge to the next.
func MergeLists(lists []ShardList, now time.Time) Feed {
	type pick struct {
		entry *FeedEntry
		list  *ShardList
	}
	later := func(a, b *ShardList) bool {
		if c := a.Published.Compare(b.Published); c != 0 {
			return c > 0
		}
		return a.Shard > b.Shard
	}
	picks := map[string]pick{}
	for i := range lists {
		l := &lists[i]
		for j := range l.Entries {
			e := &l.Entries[j]
			if p, ok := picks[e.Domain()]; !ok || later(l, p.list) {
				picks[e.Domain()] = pick{e, l}
			}
		}
	}
	feed := make(Feed, 0, len(picks))
	for _, p := range picks {
		if p.entry.live(now) {
			feed = append(feed, *p.entry)
		}
	}
	slices.SortFunc(feed, func(a, b FeedEntry) int { return strings.Compare(a.Domain(), b.Domain()) })
	return feed
}

// Each calls fn with the feed's verdicts in name order, as classify.Each
// gives a store's: with listedOnly the listed records, which the block
// lists are written from; without it the latest verdicts, which jsonl and
// csv write. It is an export.Source.
func (f Feed) Each(listedOnly bool, fn func(classify.Verdict) error) error {
	for _, e := range f {
		v := e.Listed
		if !listedOnly && e.Latest != nil {
			v = *e.Latest
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// WatchShardLists calls fn with the shard whose list was put or deleted,
// first once for each list already published, then on every change, until
// ctx ends; the calls come from the goroutine that called it, one at a
// time. A publisher watches to publish again when any shard published,
// and coalesces the calls that come while it publishes. It returns nil
// when ctx ends, and an error if the watch could not start or stopped.
func WatchShardLists(ctx context.Context, js jetstream.JetStream, prefix string, fn func(shard int)) error {
	// The store is created so that the first list put is seen.
	s, err := feedObjects(ctx, js, prefix, true)
	if err != nil {
		return err
	}
	w, err := s.Watch(ctx)
	if err != nil {
		return fmt.Errorf("watching the shards' lists: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case info, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("watching the shards' lists: the watch stopped")
			}
			if info == nil {
				continue // the lists already published have been reported
			}
			if shard, ok := objectShard(info.Name); ok {
				fn(shard)
			}
		}
	}
}
