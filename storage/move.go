package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fluxwatch/fluxwatch/obs"
)

// When the domains are sharded across coordinators, each with its own
// database, a domain whose owner changes moves from one database to
// another with its whole history and nothing else: the sender reads it
// with Histories, the receiver stores it with PutHistories, and the sender
// then forgets it with DeleteDomains. A move may be retried after a crash
// at any step: PutHistories is idempotent, and DeleteDomains of a domain
// already gone does nothing.
//
// A domain's data lives in these buckets: domains and domain_ids (its
// record and id), probes (under its id), due (its slot in a chunk),
// verdicts, listed, delisted and published (under its name), listing_log
// (under its name and a time) and network_of (under its name). Interned
// names and answer sets are shared by content with other domains and stay
// where they are; so do the publish records, which are this database's
// account of its own publishes.

// History is everything the database holds of one domain: what one shard
// hands another when the domain's owner changes.
type History struct {
	Name      string    `json:"name"`
	Sources   []string  `json:"sources,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	NextDue   time.Time `json:"next_due,omitzero"`
	Dark      int       `json:"dark,omitempty"`
	Active    bool      `json:"active"`
	// Probes are the domain's whole measured history in time order. The
	// caller encodes them in fluxwatch's observation form, which already
	// has a way of writing probes; they are not part of this record's JSON.
	Probes    []obs.Probe     `json:"-"`
	Verdict   json.RawMessage `json:"verdict,omitempty"`   // the full verdict record
	Listed    json.RawMessage `json:"listed,omitempty"`    // the listed short record; needs a Verdict
	Delisted  *Delisting      `json:"delisted,omitempty"`  // the operator's delisting, if any
	Log       []LogEntry      `json:"log,omitempty"`       // the listing log, oldest first
	Published bool            `json:"published,omitempty"` // in the list the last publish wrote
	// Zone marks the history of a name that was never seeded but has a
	// verdict of its own: a registrable domain the classifier judged from
	// the names under it. It has no domain record and no probes, only
	// what is stored under its name (verdict, listing, delisting, log).
	Zone bool `json:"zone,omitempty"`
}

// LogEntry is one logged change of a domain's listing (see ListingLog).
type LogEntry struct {
	At    time.Time       `json:"at"`
	Event json.RawMessage `json:"event"`
}

// A batch of Histories holds at most historyBatchDomains domains, and
// stops taking more once it holds historyBatchProbes probes: memory then
// holds a batch's probes plus those of one domain, however long the
// histories are.
const (
	historyBatchDomains = 256
	historyBatchProbes  = 10000
)

// Histories calls fn with the whole history of each named domain that the
// store knows (unknown names are skipped; a name with a verdict and no
// domain record gives a Zone history), in name order. It reads a
// bounded number of domains per read transaction and calls fn between
// transactions, so that memory stays bounded and fn may take its time, or
// write to this store, without holding a read transaction open. A domain
// written to while Histories runs is read as it was at some moment: the
// caller stops measuring and classifying a domain before moving it.
func (s *Store) Histories(names []string, fn func(History) error) error {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	var batch []History
	for len(names) > 0 {
		batch = batch[:0]
		err := s.db.View(func(tx *bolt.Tx) error {
			for probes := 0; len(names) > 0 && len(batch) < historyBatchDomains && probes < historyBatchProbes; {
				h, ok, err := s.readHistory(tx, names[0])
				if err != nil {
					return err
				}
				names = names[1:]
				if ok {
					batch = append(batch, h)
					probes += len(h.Probes)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading histories: %w", err)
		}
		for i := range batch {
			if err := fn(batch[i]); err != nil {
				return err
			}
			batch[i] = History{} // let its probes go before the next batch is read
		}
	}
	return nil
}

// readHistory reads the history of the domain name, if the store has it.
// Nothing it returns refers to the transaction's memory.
func (s *Store) readHistory(tx *bolt.Tx, name string) (History, bool, error) {
	h := History{Name: name}
	rec := tx.Bucket(bucketDomains).Get([]byte(name))
	if rec != nil {
		d, err := decodeDomain(name, rec)
		if err != nil {
			return History{}, false, err
		}
		h.Sources, h.FirstSeen, h.Active = d.Sources, d.FirstSeen, d.Active
		if h.NextDue, h.Dark, err = nextDue(tx, d.ID); err != nil {
			return History{}, false, err
		}
		err = s.history(tx, d, time.Time{}, time.Time{}, func(p obs.Probe) error {
			h.Probes = append(h.Probes, p)
			return nil
		})
		if err != nil {
			return History{}, false, err
		}
	}
	if err := readOwned(tx, &h); err != nil {
		return History{}, false, err
	}
	if rec == nil {
		// A zone judged from its names has records of its own.
		h.Zone = h.Verdict != nil || h.Delisted != nil || len(h.Log) > 0
		return h, h.Zone, nil
	}
	return h, true, nil
}

// zoneRecords reports whether a name that is not a domain has records of
// its own, as a zone judged from its names does: a verdict, a delisting or
// a listing log (what readHistory hands over as a zone).
func zoneRecords(tx *bolt.Tx, name string) (bool, error) {
	if tx.Bucket(bucketVerdicts).Get([]byte(name)) != nil || tx.Bucket(bucketDelisted).Get([]byte(name)) != nil {
		return true, nil
	}
	logged := false
	err := eachLog(tx, name, func(time.Time, []byte) error {
		logged = true
		return errStopLog
	})
	if err == errStopLog {
		err = nil
	}
	return logged, err
}

// errStopLog ends an eachLog walk at its first entry.
var errStopLog = errors.New("stop")

// readOwned reads what is stored under h's name: its verdict, listed
// record, delisting, listing log and published mark.
func readOwned(tx *bolt.Tx, h *History) error {
	name := h.Name
	if v := tx.Bucket(bucketVerdicts).Get([]byte(name)); v != nil {
		h.Verdict = bytes.Clone(v)
	}
	if v := tx.Bucket(bucketListed).Get([]byte(name)); v != nil {
		h.Listed = bytes.Clone(v)
	}
	if v := tx.Bucket(bucketDelisted).Get([]byte(name)); v != nil {
		h.Delisted = new(Delisting)
		if err := json.Unmarshal(v, h.Delisted); err != nil {
			return fmt.Errorf("delisting of %s: %w: %v", name, errCorrupt, err)
		}
	}
	err := eachLog(tx, name, func(at time.Time, event []byte) error {
		h.Log = append(h.Log, LogEntry{At: at, Event: bytes.Clone(event)})
		return nil
	})
	if err != nil {
		return err
	}
	h.Published = tx.Bucket(bucketPublished).Get([]byte(name)) != nil
	return nil
}

// PutHistories stores histories in one write transaction, all or none.
// The sender owns the domains: a domain the store already has is merged,
// its sources united and its earliest first-seen time kept, while its
// next-due time, dark count, activity, verdict, listed record, delisting
// and published mark become the history's (absent in the history: absent
// here). Probes and listing-log entries are added to those stored, under
// their keys (domain, start and vantage; domain and time), so a probe or
// entry already stored is replaced, never doubled: putting a history
// twice leaves the database as putting it once, and a retried move
// duplicates nothing. Probes are stored by the path WriteProbes takes, so
// they read back as they read at the sender.
func (s *Store) PutHistories(hs []History) error {
	if len(hs) == 0 {
		return nil
	}
	for i := range hs {
		if err := hs[i].valid(); err != nil {
			return fmt.Errorf("storing histories: %w", err)
		}
	}
	// In name order the records go into the tree in key order, and new
	// domains get their ids in the same order as their names. A name given
	// twice is merged twice, the later history last.
	sorted := slices.Clone(hs)
	slices.SortStableFunc(sorted, func(a, b History) int { return strings.Compare(a.Name, b.Name) })
	var names *txNames
	newSets := map[string]uint64{}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		names = newTxNames(s, tx)
		clear(newSets)
		ids := make(map[string]uint32, len(sorted))
		due := make([]idDue, 0, len(sorted))
		var probes []obs.Probe
		for i := range sorted {
			h := &sorted[i]
			if !h.Zone {
				id, err := mergeDomain(tx, h)
				if err != nil {
					return err
				}
				ids[h.Name] = id
				due = append(due, newIDDue(id, Measured{Domain: h.Name, At: h.NextDue, Dark: h.Dark}, false))
			}
			if err := putOwned(tx, h); err != nil {
				return fmt.Errorf("domain %s: %w", h.Name, err)
			}
			for _, e := range h.Log {
				// At its own key, not through putLog, which would
				// log a second copy of an entry already moved.
				if err := tx.Bucket(bucketListingLog).Put(logKey(h.Name, e.At), e.Event); err != nil {
					return err
				}
			}
			probes = append(probes, h.Probes...)
		}
		if err := putDue(tx, due); err != nil {
			return err
		}
		// Every probe's domain has its id in ids (valid checked each
		// probe's domain, and that a zone has none).
		_, err := s.putProbes(tx, names, newSets, probes, func(name string) (uint32, error) {
			id, ok := ids[name]
			if !ok {
				return 0, fmt.Errorf("%w %q", ErrUnknownDomain, name)
			}
			return id, nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("storing histories: %w", err)
	}
	s.committedProbes(names, newSets)
	return nil
}

// valid checks a history for what would make the database fail Check or
// store a probe under another domain.
func (h *History) valid() error {
	if h.Name == "" {
		return errors.New("a history without a domain name")
	}
	if h.Listed != nil && h.Verdict == nil {
		return fmt.Errorf("domain %s: listed without a verdict", h.Name)
	}
	if h.Zone && len(h.Probes) > 0 {
		return fmt.Errorf("zone %s: a zone's history has no probes", h.Name)
	}
	for _, p := range h.Probes {
		if p.Domain != h.Name {
			return fmt.Errorf("domain %s: a probe of %q in its history", h.Name, p.Domain)
		}
	}
	for _, e := range h.Log {
		if e.Event == nil {
			return fmt.Errorf("domain %s: a listing log entry at %s without an event", h.Name, e.At.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// mergeDomain stores the record of h's domain, merged with the one stored
// if there is one, and returns the domain's id here: the stored one, or a
// new one.
func mergeDomain(tx *bolt.Tx, h *History) (uint32, error) {
	b, ids := tx.Bucket(bucketDomains), tx.Bucket(bucketDomainID)
	d := Domain{Name: h.Name, FirstSeen: h.FirstSeen.UTC(), Active: h.Active}
	if v := b.Get([]byte(h.Name)); v != nil {
		old, err := decodeDomain(h.Name, v)
		if err != nil {
			return 0, err
		}
		d.ID, d.Sources = old.ID, old.Sources
		if h.FirstSeen.IsZero() || old.FirstSeen.Before(h.FirstSeen) {
			d.FirstSeen = old.FirstSeen
		}
	} else {
		id, err := newDomainID(ids, h.Name)
		if err != nil {
			return 0, err
		}
		d.ID = id
	}
	for _, src := range h.Sources {
		if src != "" && !slices.Contains(d.Sources, src) {
			d.Sources = append(d.Sources, src)
		}
	}
	slices.Sort(d.Sources)
	return d.ID, b.Put([]byte(h.Name), encodeDomain(d))
}

// putOwned makes the verdict, listed record, delisting and published mark
// of h's domain those of the history, stored or deleted.
func putOwned(tx *bolt.Tx, h *History) error {
	var delisted []byte
	if h.Delisted != nil {
		var err error
		if delisted, err = json.Marshal(h.Delisted); err != nil {
			return err
		}
	}
	var published []byte
	if h.Published {
		published = []byte{}
	}
	for _, kv := range []struct {
		bucket []byte
		value  []byte // nil: delete
	}{
		{bucketVerdicts, h.Verdict},
		{bucketListed, h.Listed},
		{bucketDelisted, delisted},
		{bucketPublished, published},
	} {
		b := tx.Bucket(kv.bucket)
		var err error
		if kv.value != nil {
			err = b.Put([]byte(h.Name), kv.value)
		} else {
			err = b.Delete([]byte(h.Name))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// DeleteDomains removes each named domain and everything stored of it
// (its record and id, probes, next-due slot, verdict, listed record,
// delisting, listing log, published mark and network_of entry) in one
// transaction, and returns how many it removed; names the store does not
// know are skipped. A zone's records (see History.Zone) are removed
// likewise and counted. Unlike RemoveDomains, which only stops measuring a
// domain, it leaves nothing of the domain: it is for a domain that now
// lives in another shard's database. Interned names and answer sets stay,
// as other domains may share them. The network records themselves are
// the networks package's and still name the domain until it next replaces
// them.
//
// Probes of a deleted domain still on their way to the store (in a
// Writer's batch) fail their batch with ErrUnknownDomain, and a Writer
// stores nothing after a failed batch: the caller stops measuring a domain
// before it deletes it.
func (s *Store) DeleteDomains(names []string) (int, error) {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	var gone []string
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		gone = gone[:0]
		domains, ids := tx.Bucket(bucketDomains), tx.Bucket(bucketDomainID)
		var due []idDue
		for _, name := range names {
			rec := domains.Get([]byte(name))
			if rec == nil {
				// A zone judged from its names: what is under its name.
				zone, err := zoneRecords(tx, name)
				if err != nil {
					return err
				}
				if !zone {
					continue
				}
				if err := deleteOwned(tx, name); err != nil {
					return err
				}
				gone = append(gone, name)
				continue
			}
			id, _, err := decodeDomainHead(rec)
			if err != nil {
				return fmt.Errorf("domain %q: %w", name, err)
			}
			if err := deletePrefix(tx.Bucket(bucketProbes), u32key(id)); err != nil {
				return err
			}
			if err := deleteOwned(tx, name); err != nil {
				return err
			}
			// The id entry goes only if it is this domain's: a table that
			// disagrees is for Check to report, not for this to widen.
			if string(ids.Get(u32key(id))) == name {
				if err := ids.Delete(u32key(id)); err != nil {
					return err
				}
			}
			if err := domains.Delete([]byte(name)); err != nil {
				return err
			}
			due = append(due, idDue{id: id}) // zero: nothing of it stays
			gone = append(gone, name)
		}
		return putDue(tx, due)
	})
	if err != nil {
		return 0, fmt.Errorf("deleting domains: %w", err)
	}
	if len(gone) > 0 {
		// The writer must not store probes under the ids that went, nor
		// may a reader that read them before the commit cache them.
		s.deletions++
		for _, name := range gone {
			delete(s.domainIDs, name)
		}
	}
	return len(gone), nil
}

// deleteOwned deletes what is stored under a domain's name: its listing
// log, verdict, listed record, delisting, published mark and network_of
// entry.
func deleteOwned(tx *bolt.Tx, name string) error {
	if err := deletePrefix(tx.Bucket(bucketListingLog), append([]byte(name), 0)); err != nil {
		return err
	}
	for _, bn := range [][]byte{bucketVerdicts, bucketListed, bucketDelisted, bucketPublished, bucketNetworkOf} {
		b := tx.Bucket(bn)
		if b == nil {
			continue // network_of is made by its first write
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
	}
	return nil
}

// deletePrefix deletes every key of b that starts with prefix. It seeks
// again after each delete: a bbolt cursor may skip the key after one it
// deleted.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
