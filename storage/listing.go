package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The listing lifecycle: which domains are listed is the classifier's
// business (it writes the listed bucket through PutVerdicts); storage keeps
// the log of each domain's listing changes, the names an operator delisted
// by hand, and what every publish added and removed.
var (
	bucketListingLog = []byte("listing_log") // name | 0 | unix nanos (8) → event (owned by the classifier)
	bucketDelisted   = []byte("delisted")    // name → JSON Delisting
	bucketPublished  = []byte("published")   // name → empty: the names the last publish listed
	bucketPublishes  = []byte("publishes")   // unix nanos (8) → JSON PublishRecord
)

// keepPublishes is how many publish records are kept.
const keepPublishes = 256

// Delisting is an operator's decision that a name stays off the list.
type Delisting struct {
	Time   time.Time `json:"time"`
	Reason string    `json:"reason,omitempty"`
}

// PublishRecord is what one publish changed.
type PublishRecord struct {
	Time time.Time `json:"time"`
	// Kind says why the list was published: PublishScheduled or
	// PublishStart (records written before kinds existed have none and
	// were scheduled).
	Kind    string   `json:"kind,omitempty"`
	Listed  int      `json:"listed"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// Kinds of publish.
const (
	// PublishScheduled: the daemon's publish job, after a classification.
	PublishScheduled = "scheduled"
	// PublishStart: the daemon, starting, published the list as stored,
	// before any job ran.
	PublishStart = "start"
	// PublishMoved: a shard of a cluster published the list as stored
	// because domains, with their listings, moved to or from it.
	PublishMoved = "moved"
)

func logKey(domain string, at time.Time) []byte {
	k := make([]byte, 0, len(domain)+9)
	k = append(k, domain...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
}

// putLog logs event for domain at (or just after: two events never share
// a key).
func putLog(tx *bolt.Tx, domain string, at time.Time, event []byte) error {
	b := tx.Bucket(bucketListingLog)
	k := logKey(domain, at)
	for b.Get(k) != nil {
		at = at.Add(time.Nanosecond)
		k = logKey(domain, at)
	}
	return b.Put(k, event)
}

// ListingState returns, for the given domains, their current listed records
// (domains not listed are absent) and which of them were delisted by hand.
func (s *Store) ListingState(domains []string) (listed map[string][]byte, delisted map[string]bool, err error) {
	listed, delisted = map[string][]byte{}, map[string]bool{}
	err = s.db.View(func(tx *bolt.Tx) error {
		lb, db := tx.Bucket(bucketListed), tx.Bucket(bucketDelisted)
		for _, d := range domains {
			if v := lb.Get([]byte(d)); v != nil {
				listed[d] = bytes.Clone(v)
			}
			if db.Get([]byte(d)) != nil {
				delisted[d] = true
			}
		}
		return nil
	})
	return listed, delisted, err
}

// ListingLog calls fn with every logged listing change of domain, oldest
// first.
func (s *Store) ListingLog(domain string, fn func(at time.Time, event []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return eachLog(tx, domain, fn) })
}

// eachLog calls fn with each entry of domain's listing log, oldest first.
func eachLog(tx *bolt.Tx, domain string, fn func(at time.Time, event []byte) error) error {
	prefix := append([]byte(domain), 0)
	c := tx.Bucket(bucketListingLog).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+8 {
			return fmt.Errorf("listing log of %s: %w: key of %d bytes", domain, errCorrupt, len(k))
		}
		if err := fn(time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):]))).UTC(), v); err != nil {
			return err
		}
	}
	return nil
}

// Delist takes domain off the list until Relist, whatever the classifier
// says: its listed record goes now, and event (if not nil) is logged.
func (s *Store) Delist(domain string, d Delisting, event []byte) error {
	rec, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		// Seeded names, and zones classified from their names.
		if tx.Bucket(bucketDomains).Get([]byte(domain)) == nil && tx.Bucket(bucketVerdicts).Get([]byte(domain)) == nil {
			return fmt.Errorf("delisting: %w %q", ErrUnknownDomain, domain)
		}
		if err := tx.Bucket(bucketDelisted).Put([]byte(domain), rec); err != nil {
			return err
		}
		if err := tx.Bucket(bucketListed).Delete([]byte(domain)); err != nil {
			return err
		}
		if event == nil {
			return nil
		}
		return putLog(tx, domain, d.Time, event)
	})
}

// Relist lets the classifier list domain again; it reports whether the
// domain was delisted.
func (s *Store) Relist(domain string, at time.Time, event []byte) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDelisted)
		if found = b.Get([]byte(domain)) != nil; !found {
			return nil
		}
		if err := b.Delete([]byte(domain)); err != nil {
			return err
		}
		if event == nil {
			return nil
		}
		return putLog(tx, domain, at, event)
	})
	return found, err
}

// Delisted calls fn with every domain delisted by hand, in name order.
func (s *Store) Delisted(fn func(domain string, d Delisting) error) error {
	return s.forEach(bucketDelisted, func(k string, v []byte) error {
		var d Delisting
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("delisting of %s: %w: %v", k, errCorrupt, err)
		}
		return fn(k, d)
	})
}

// RecordPublish compares the listed domains with those the previous publish
// listed, remembers the new set and stores (and returns) what changed, as
// a publish of kind PublishScheduled. It keeps the last few hundred
// records. The caller makes sure nothing changes the listed domains
// between writing the published files and this record of them.
func (s *Store) RecordPublish(at time.Time) (PublishRecord, error) {
	return s.RecordPublishOf(at, PublishScheduled)
}

// RecordPublishOf is RecordPublish for a publish of the given kind.
func (s *Store) RecordPublishOf(at time.Time, kind string) (PublishRecord, error) {
	rec := PublishRecord{Time: at.UTC(), Kind: kind, Added: []string{}, Removed: []string{}}
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec.Listed, rec.Added, rec.Removed = 0, rec.Added[:0], rec.Removed[:0]
		listed, published := tx.Bucket(bucketListed), tx.Bucket(bucketPublished)
		// Both buckets are in name order: one merge finds the changes.
		lc, pc := listed.Cursor(), published.Cursor()
		lk, _ := lc.First()
		pk, _ := pc.First()
		for lk != nil || pk != nil {
			switch c := compareKeys(lk, pk); {
			case c < 0:
				rec.Added = append(rec.Added, string(lk))
				rec.Listed++
				lk, _ = lc.Next()
			case c > 0:
				rec.Removed = append(rec.Removed, string(pk))
				pk, _ = pc.Next()
			default:
				rec.Listed++
				lk, _ = lc.Next()
				pk, _ = pc.Next()
			}
		}
		for _, n := range rec.Added {
			if err := published.Put([]byte(n), []byte{}); err != nil {
				return err
			}
		}
		for _, n := range rec.Removed {
			if err := published.Delete([]byte(n)); err != nil {
				return err
			}
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		pubs := tx.Bucket(bucketPublishes)
		if err := pubs.Put(u64key(uint64(at.UnixNano())), v); err != nil {
			return err
		}
		for pubs.Stats().KeyN > keepPublishes {
			k, _ := pubs.Cursor().First()
			if err := pubs.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return rec, err
}

// compareKeys orders cursor keys with nil (the end) last.
func compareKeys(a, b []byte) int {
	switch {
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

// Publishes returns up to n publish records, newest first.
func (s *Store) Publishes(n int) ([]PublishRecord, error) {
	var out []PublishRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPublishes).Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			var r PublishRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("publish record: %w: %v", errCorrupt, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Prune deletes the probes that started before cutoff, at most perTx in
// one transaction so the daemon's other jobs are never held up for long,
// and returns how many it deleted. Answer sets stay: other probes may share
// them.
func (s *Store) Prune(cutoff time.Time, perTx int) (int, error) {
	if perTx <= 0 {
		perTx = 10000
	}
	// Domain ids are handed out from 1 (those of domains deleted or moved
	// away leave gaps, which cost an empty seek); walk them in ranges.
	var maxID uint32
	if err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketDomainID).Cursor().Last(); len(k) == 4 {
			maxID = binary.BigEndian.Uint32(k)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	total := 0
	for id := uint32(0); id <= maxID; {
		deleted := 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketProbes).Cursor()
			for ; id <= maxID && deleted < perTx; id++ {
				from, to := probeKey(id, time.Unix(0, 0), 0), probeKey(id, cutoff, 0)
				for k, _ := c.Seek(from); k != nil && bytes.Compare(k, to) < 0 && deleted < perTx; k, _ = c.Seek(from) {
					if err := c.Delete(); err != nil {
						return err
					}
					deleted++
				}
				if deleted >= perTx {
					break // this domain may hold more: come back to it
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += deleted
	}
	return total, nil
}

// sortedDomains returns the domains of records in name order.
func sortedDomains(vs []VerdictRecord) []VerdictRecord {
	sorted := slices.Clone(vs)
	slices.SortFunc(sorted, func(a, b VerdictRecord) int { return strings.Compare(a.Domain, b.Domain) })
	return sorted
}
