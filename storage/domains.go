package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fluxwatch/fluxwatch/obs"
)

// Domain is one seeded name and what the scheduler knows about it. Times
// are kept to the millisecond.
type Domain struct {
	Name      string
	ID        uint32
	Sources   []string  // source tags, sorted, from every import that named it
	FirstSeen time.Time // when it was first added
	NextDue   time.Time // when it should be measured next; zero: now
	// Dark counts the latest measurements in a row in which no vantage
	// got an answer for the name; see IsDark.
	Dark   int
	Active bool // false once removed; its history stays
}

// DarkAfter is how many measurements in a row without an answer from any
// vantage make a domain dark: measured at a backed-off cadence until it
// answers again (see the scheduler).
const DarkAfter = 3

// IsDark reports whether no vantage answered the domain's last DarkAfter
// measurements or more.
func (d Domain) IsDark() bool { return d.Dark >= DarkAfter }

// DomainCounts count the domains by state.
type DomainCounts struct {
	Active int `json:"active"`
	Dark   int `json:"dark"` // active and dark
}

// CountDomains counts the active domains and the dark ones among them.
func (s *Store) CountDomains() (DomainCounts, error) {
	var c DomainCounts
	err := s.db.View(func(tx *bolt.Tx) error {
		due, err := loadDue(tx)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketDomains).ForEach(func(k, v []byte) error {
			id, active, err := decodeDomainHead(v)
			if err != nil {
				return fmt.Errorf("domain %q: %w", k, err)
			}
			if active {
				c.Active++
				if due.dark(id) >= DarkAfter {
					c.Dark++
				}
			}
			return nil
		})
	})
	return c, err
}

// encodeDomain encodes the record kept under the name; NextDue is kept
// apart (see due.go), since every round changes it.
func encodeDomain(d Domain) []byte {
	e := encoder{}
	e.uvarint(uint64(d.ID))
	e.uvarint(uint64(max(d.FirstSeen.UnixMilli(), 0)))
	if d.Active {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
	e.uvarint(uint64(len(d.Sources)))
	for _, s := range d.Sources {
		e.str(s)
	}
	return e.b
}

func decodeDomain(name string, p []byte) (Domain, error) {
	d := decoder{b: p}
	out := Domain{Name: name}
	id := d.uvarint("domain id")
	out.ID = uint32(id)
	out.FirstSeen = time.UnixMilli(int64(d.uvarint("first seen"))).UTC()
	out.Active = d.byte1("active") == 1
	n := d.count("sources")
	for i := 0; i < n && d.err == nil; i++ {
		out.Sources = append(out.Sources, string(d.bytes("source")))
	}
	if d.err == nil && id > 1<<32-1 {
		d.fail("domain id")
	}
	if d.err != nil {
		return Domain{}, fmt.Errorf("domain %q: %w", name, d.err)
	}
	return out, nil
}

// decodeDomainHead reads a domain record's id and whether it is active,
// and nothing more (see encodeDomain).
func decodeDomainHead(p []byte) (id uint32, active bool, err error) {
	d := decoder{b: p}
	v := d.uvarint("domain id")
	d.uvarint("first seen")
	active = d.byte1("active") == 1
	if d.err == nil && v > 1<<32-1 {
		d.fail("domain id")
	}
	return uint32(v), active, d.err
}

// newDomainID hands name the next id of the id table ids, and records it.
func newDomainID(ids *bolt.Bucket, name string) (uint32, error) {
	seq, err := ids.NextSequence()
	if err != nil {
		return 0, err
	}
	if seq > 1<<32-1 {
		return 0, fmt.Errorf("adding %s: domain ids exhausted", name)
	}
	return uint32(seq), ids.Put(u32key(uint32(seq)), []byte(name))
}

// AddResult counts what AddDomains did.
type AddResult struct {
	Added, Known int
	// Elsewhere counts the names another shard owns, handed to it (see
	// SetOwnership).
	Elsewhere int
}

// Ownership is how the database of one shard of a cluster of
// coordinators keeps only its own domains: Owns says which names it owns,
// and Elsewhere, if set, hands the others to their shards.
type Ownership struct {
	Owns      func(name string) bool
	Elsewhere func(names []string, source string) error
	// RemoveElsewhere, if set, hands the names RemoveDomains is given that
	// another shard owns to it, to be removed there.
	RemoveElsewhere func(names []string) error
}

// SetOwnership makes AddDomains keep only the names o owns and hand the
// others to o.Elsewhere; nil keeps every name again.
func (s *Store) SetOwnership(o *Ownership) { s.ownership.Store(o) }

// AddDomains adds normalised names with a source tag, in one transaction.
// A name already present keeps its id, history and first-seen time, gains the
// source tag and becomes active again if it had been removed. With an
// Ownership set, the names another shard owns are handed to it first (a
// failure to hand them over adds nothing) and counted in Elsewhere.
func (s *Store) AddDomains(names []string, source string, now time.Time) (AddResult, error) {
	var res AddResult
	// Sorted, the names go into the tree in key order; ids are appended.
	// Both let pages be filled instead of split half-empty.
	names = slices.Clone(names)
	if o := s.ownership.Load(); o != nil {
		var away []string
		names = slices.DeleteFunc(names, func(n string) bool {
			if o.Owns(n) {
				return false
			}
			away = append(away, n)
			return true
		})
		if len(away) > 0 && o.Elsewhere != nil {
			if err := o.Elsewhere(away, source); err != nil {
				return AddResult{}, fmt.Errorf("adding domains: handing %d names to their shards: %w", len(away), err)
			}
		}
		res.Elsewhere = len(away)
	}
	slices.Sort(names)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, ids := tx.Bucket(bucketDomains), tx.Bucket(bucketDomainID)
		b.FillPercent, ids.FillPercent = 0.9, 1.0
		for _, name := range names {
			var d Domain
			if v := b.Get([]byte(name)); v != nil {
				var err error
				if d, err = decodeDomain(name, v); err != nil {
					return err
				}
				if d.Active && (source == "" || slices.Contains(d.Sources, source)) {
					res.Known++
					continue
				}
				if d.Active {
					res.Known++
				} else {
					res.Added++
				}
			} else {
				id, err := newDomainID(ids, name)
				if err != nil {
					return err
				}
				d = Domain{Name: name, ID: id, FirstSeen: now.UTC()}
				res.Added++
			}
			d.Active = true
			if source != "" && !slices.Contains(d.Sources, source) {
				d.Sources = append(d.Sources, source)
				slices.Sort(d.Sources)
			}
			if err := b.Put([]byte(name), encodeDomain(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return AddResult{}, fmt.Errorf("adding domains: %w", err)
	}
	return res, nil
}

// RemoveResult counts what RemoveDomains did.
type RemoveResult struct {
	// Removed counts the names that were active here; Elsewhere those
	// another shard owns, handed to it (see SetOwnership).
	Removed, Elsewhere int
}

// RemoveDomains stops measuring the names. Their history is kept. With an
// Ownership set, the names another shard owns are handed to it first (a
// failure to hand them over removes nothing).
func (s *Store) RemoveDomains(names []string) (RemoveResult, error) {
	var res RemoveResult
	if o := s.ownership.Load(); o != nil {
		var away []string
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool {
			if o.Owns(n) {
				return false
			}
			away = append(away, n)
			return true
		})
		if len(away) > 0 && o.RemoveElsewhere != nil {
			if err := o.RemoveElsewhere(away); err != nil {
				return RemoveResult{}, fmt.Errorf("removing domains: handing %d names to their shards: %w", len(away), err)
			}
		}
		res.Elsewhere = len(away)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDomains)
		for _, name := range names {
			v := b.Get([]byte(name))
			if v == nil {
				continue
			}
			d, err := decodeDomain(name, v)
			if err != nil {
				return err
			}
			if !d.Active {
				continue
			}
			d.Active = false
			res.Removed++
			if err := b.Put([]byte(name), encodeDomain(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return RemoveResult{}, err
	}
	return res, nil
}

// Domain returns one domain's record.
func (s *Store) Domain(name string) (Domain, bool, error) {
	var d Domain
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDomains).Get([]byte(name))
		if v == nil {
			return nil
		}
		ok = true
		var err error
		if d, err = decodeDomain(name, v); err != nil {
			return err
		}
		d.NextDue, d.Dark, err = nextDue(tx, d.ID)
		return err
	})
	return d, ok, err
}

// knownDomain reads the record of a seeded domain, or fails with
// ErrUnknownDomain.
func knownDomain(tx *bolt.Tx, name string) (Domain, error) {
	rec := tx.Bucket(bucketDomains).Get([]byte(name))
	if rec == nil {
		return Domain{}, fmt.Errorf("%w %q", ErrUnknownDomain, name)
	}
	return decodeDomain(name, rec)
}

// Domains calls fn for every domain, active or not, in name order.
func (s *Store) Domains(fn func(Domain) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		due, err := loadDue(tx)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketDomains).ForEach(func(k, v []byte) error {
			d, err := decodeDomain(string(k), v)
			if err != nil {
				return err
			}
			d.NextDue, d.Dark = due.at(d.ID), due.dark(d.ID)
			return fn(d)
		})
	})
}

// Scan calls fn for every active domain together with its history since
// from, all in one read transaction.
func (s *Store) Scan(from time.Time, fn func(d Domain, history func(func(obs.Probe) error) error) error) error {
	_, err := s.scanActive("", 0, func(tx *bolt.Tx, d Domain) error {
		return fn(d, func(each func(obs.Probe) error) error {
			return s.history(tx, d, from, time.Time{}, each)
		})
	})
	return err
}

// ScanWindows calls fn for at most limit active domains (0: all) whose
// names sort after the name after, with each domain's history over the
// window that ends at its last probe not after now (so measurements
// imported from years ago are judged on their own time, like a fresh
// crawl), in one read transaction. It returns the last name it passed to
// fn, "" when it passed none: the next batch starts there. Callers that
// write between batches keep no read transaction open while they do.
func (s *Store) ScanWindows(after string, limit int, window time.Duration, now time.Time, fn func(d Domain, history func(func(obs.Probe) error) error) error) (last string, err error) {
	end := now.Add(time.Nanosecond) // history's end is exclusive
	var probes *bolt.Cursor         // one for the whole scan, which is one transaction
	return s.scanActive(after, limit, func(tx *bolt.Tx, d Domain) error {
		if probes == nil {
			probes = tx.Bucket(bucketProbes).Cursor()
		}
		anchor, ok := lastProbe(probes, d.ID, end)
		return fn(d, func(each func(obs.Probe) error) error {
			if !ok {
				return nil
			}
			return s.history(tx, d, anchor.Add(-window), end, each)
		})
	})
}

// scanActive calls fn for at most limit active domains (0: all) after the
// name after, in name order, in one read transaction, and returns the last
// name it passed.
func (s *Store) scanActive(after string, limit int, fn func(tx *bolt.Tx, d Domain) error) (last string, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDomains).Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for n := 0; k != nil && (limit == 0 || n < limit); k, v = c.Next() {
			d, err := decodeDomain(string(k), v)
			if err != nil {
				return err
			}
			if !d.Active {
				continue
			}
			n++
			last = d.Name
			if err := fn(tx, d); err != nil {
				return err
			}
		}
		return nil
	})
	return last, err
}

// LastProbe returns the start of domain's last probe before end.
func (s *Store) LastProbe(domain string, end time.Time) (last time.Time, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		d, err := knownDomain(tx, domain)
		if err != nil {
			return err
		}
		last, ok = lastProbe(tx.Bucket(bucketProbes).Cursor(), d.ID, end)
		return nil
	})
	return last, ok, err
}

func lastProbe(c *bolt.Cursor, id uint32, end time.Time) (time.Time, bool) {
	k, _ := c.Seek(probeKey(id, end, 0))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	did, start, _, ok := parseProbeKey(k)
	if !ok || did != id {
		return time.Time{}, false
	}
	return start, true
}

// VerdictRecord is one domain's verdict as storage keeps it: the full
// record (the classifier's JSON), and a short one when the domain is
// listed (nil: not listed), which exports of block lists read alone.
type VerdictRecord struct {
	Domain       string
	Full, Listed []byte
	// Event, if not nil, is logged as a change of the domain's listing at
	// EventTime (see ListingLog).
	Event     []byte
	EventTime time.Time
}

// PutVerdicts replaces the stored verdicts of the given domains in one
// transaction, keeping the listed index in step.
func (s *Store) PutVerdicts(vs []VerdictRecord) error {
	sorted := sortedDomains(vs)
	return s.db.Update(func(tx *bolt.Tx) error {
		b, listed := tx.Bucket(bucketVerdicts), tx.Bucket(bucketListed)
		for _, v := range sorted {
			if v.Event != nil {
				if err := putLog(tx, v.Domain, v.EventTime, v.Event); err != nil {
					return err
				}
			}
			if err := b.Put([]byte(v.Domain), v.Full); err != nil {
				return err
			}
			var err error
			if v.Listed != nil {
				err = listed.Put([]byte(v.Domain), v.Listed)
			} else {
				err = listed.Delete([]byte(v.Domain))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Verdicts calls fn with every stored verdict in name order.
func (s *Store) Verdicts(fn func(domain string, v []byte) error) error {
	return s.forEach(bucketVerdicts, fn)
}

// VerdictsAndListings calls fn with every stored verdict in name order,
// together with the domain's record in the listed index (nil when it is
// not listed), both read in one transaction: the listed index says whether
// a domain is listed, whatever its full record says. The slices are valid
// only until fn returns.
func (s *Store) VerdictsAndListings(fn func(domain string, full, listed []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		lc := tx.Bucket(bucketListed).Cursor()
		lk, lv := lc.First()
		return tx.Bucket(bucketVerdicts).ForEach(func(k, v []byte) error {
			// Both buckets are in name order: the listed cursor follows.
			for lk != nil && bytes.Compare(lk, k) < 0 {
				lk, lv = lc.Next()
			}
			var listed []byte
			if lk != nil && bytes.Equal(lk, k) {
				listed = lv
			}
			return fn(string(k), v, listed)
		})
	})
}

// VerdictAndListing returns the stored verdict of one domain and its record
// in the listed index, read in one transaction; each is nil when absent.
func (s *Store) VerdictAndListing(domain string) (full, listed []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketVerdicts).Get([]byte(domain)); v != nil {
			full = bytes.Clone(v)
		}
		if v := tx.Bucket(bucketListed).Get([]byte(domain)); v != nil {
			listed = bytes.Clone(v)
		}
		return nil
	})
	return full, listed, err
}

// Listed calls fn with the short record of every listed domain in name order.
func (s *Store) Listed(fn func(domain string, v []byte) error) error {
	return s.forEach(bucketListed, fn)
}

func (s *Store) forEach(bucket []byte, fn func(k string, v []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			return fn(string(k), v)
		})
	})
}

// NextSerial returns a new RPZ SOA serial, strictly greater than every one
// returned before from this database: now as Unix seconds, or the last
// serial plus one if the clock has not moved past it.
func (s *Store) NextSerial(now time.Time) (uint32, error) {
	var serial uint32
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		serial = uint32(now.Unix())
		if v := meta.Get(metaSerial); len(v) == 4 {
			if last := binary.BigEndian.Uint32(v); serial <= last {
				serial = last + 1
			}
		}
		return meta.Put(metaSerial, u32key(serial))
	})
	return serial, err
}

// RaiseSerial makes every serial NextSerial returns from now on greater
// than floor: a serial served before (an RPZ file on disk that this
// database's stored serial does not know, as after a restore from a
// backup), which secondaries must not see go backwards.
func (s *Store) RaiseSerial(floor uint32) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaSerial); len(v) == 4 && binary.BigEndian.Uint32(v) >= floor {
			return nil
		}
		return meta.Put(metaSerial, u32key(floor))
	})
}

// Due returns the active domains whose next-due time is not after now, in
// name order.
func (s *Store) Due(now time.Time) ([]string, error) {
	return s.activeWhere(true, now)
}

// Active returns every active domain in name order.
func (s *Store) Active() ([]string, error) {
	return s.activeWhere(false, time.Time{})
}

// ActiveNames calls fn with the name of every active domain, in name
// order, in one read transaction; it reads only the head of each record
// and keeps nothing.
func (s *Store) ActiveNames(fn func(name string) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDomains).ForEach(func(k, v []byte) error {
			_, active, err := decodeDomainHead(v)
			if err != nil {
				return fmt.Errorf("domain %q: %w", k, err)
			}
			if !active {
				return nil
			}
			return fn(string(k))
		})
	})
}

// activeWhere returns the active domains, in name order: when onlyDue,
// those due by now. It reads only the head of each
// record. The writer will store their probes next: it learns their ids
// here rather than searching for each with its first probe.
func (s *Store) activeWhere(onlyDue bool, now time.Time) ([]string, error) {
	var (
		out []string
		ids []uint32
	)
	s.wmu.Lock()
	deletions := s.deletions
	s.wmu.Unlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		var times dueTable
		if onlyDue {
			var err error
			if times, err = loadDue(tx); err != nil {
				return err
			}
		}
		if !onlyDue {
			// Ids are handed out in sequence: their count is the most
			// there are, and most domains are active.
			n := int(min(tx.Bucket(bucketDomainID).Sequence(), 1<<24))
			out, ids = make([]string, 0, n), make([]uint32, 0, n)
		}
		return tx.Bucket(bucketDomains).ForEach(func(k, v []byte) error {
			id, active, err := decodeDomainHead(v)
			if err != nil {
				return fmt.Errorf("domain %q: %w", k, err)
			}
			if active && (!onlyDue || !times.at(id).After(now)) {
				out = append(out, string(k))
				ids = append(ids, id)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	s.wmu.Lock()
	// Ids read before a DeleteDomains committed may be of domains it
	// removed: the writer would store probes under them.
	if s.deletions == deletions {
		if len(s.domainIDs) == 0 {
			// The first list read: sized at once, not grown entry by entry.
			s.domainIDs = make(map[string]uint32, len(out))
		}
		for i, name := range out {
			s.domainIDs[name] = ids[i]
		}
	}
	s.wmu.Unlock()
	return out, nil
}

// Verdict returns the stored verdict of one domain, or nil.
func (s *Store) Verdict(domain string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketVerdicts).Get([]byte(domain)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}
