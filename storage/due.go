package storage

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Next-due times change for every domain measured, every round, so they
// are kept apart from the domain records, in chunks by domain id: the
// chunk of id is under the key id/dueChunk (4 bytes), and holds dueChunk
// values of 8 bytes each. 496 of them fill a 4 KiB page with the page's
// and the element's headers. A round of 200,000 domains rewrites 404
// chunks instead of 200,000 records.
//
// A value's low 56 bits are the next-due time in Unix milliseconds (0 for
// "due now"; 56 bits last until the year 2,280,000), its top 8 bits the
// domain's dark count: how many measurements in a row no vantage answered
// (saturating at 255). Schema 5 kept only the time, so its values read as
// a dark count of 0.
const (
	dueChunk    = 496
	dueTimeSize = 8
	dueValue    = dueChunk * dueTimeSize

	dueMillisMask = 1<<56 - 1
	darkShift     = 56
	// MaxDark is the highest dark count stored; longer runs stay at it.
	MaxDark = 255
)

// Due is when one domain should be measured next.
type Due struct {
	Domain string
	At     time.Time
}

// Measured is a domain just measured: when it is due next, and its dark
// count after this measurement (0: some vantage answered).
type Measured struct {
	Domain string
	At     time.Time
	Dark   int
}

// SetNextDue records when each domain should be measured next, in one
// transaction, and keeps the domains' dark counts. Domains never added
// are skipped.
func (s *Store) SetNextDue(due []Due) error {
	ms := make([]Measured, len(due))
	for i, d := range due {
		ms[i] = Measured{Domain: d.Domain, At: d.At}
	}
	return s.setDue(ms, true)
}

// SetMeasured records the next-due times and dark counts of domains just
// measured, in one transaction. Domains never added are skipped.
func (s *Store) SetMeasured(ms []Measured) error {
	return s.setDue(ms, false)
}

func (s *Store) setDue(ms []Measured, keepDark bool) error {
	if len(ms) == 0 {
		return nil
	}
	byID := make([]idDue, 0, len(ms))
	var unknown []Measured // not in the writer's cache: looked up in the transaction
	// The cached ids hold until the transaction ends: DeleteDomains, which
	// removes ids, waits for wmu. bbolt runs one write transaction at a
	// time anyway, so holding it costs no concurrency.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, m := range ms {
		if id, ok := s.domainIDs[m.Domain]; ok {
			byID = append(byID, newIDDue(id, m, keepDark))
		} else {
			unknown = append(unknown, m)
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		domains := tx.Bucket(bucketDomains)
		for _, m := range unknown {
			v := domains.Get([]byte(m.Domain))
			if v == nil {
				continue
			}
			id, _, err := decodeDomainHead(v)
			if err != nil {
				return fmt.Errorf("domain %q: %w", m.Domain, err)
			}
			byID = append(byID, newIDDue(id, m, keepDark))
		}
		return putDue(tx, byID)
	})
}

// DarkCounts returns the dark count of each name (0 for a name never
// added), in one read transaction.
func (s *Store) DarkCounts(names []string) ([]int, error) {
	out := make([]int, len(names))
	ids := make([]uint32, len(names))
	known := make([]bool, len(names))
	s.wmu.Lock()
	for i, n := range names {
		ids[i], known[i] = s.domainIDs[n]
	}
	s.wmu.Unlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		domains, b := tx.Bucket(bucketDomains), tx.Bucket(bucketDue)
		var chunk []byte
		chunkKey := uint32(1<<32 - 1)
		for i, n := range names {
			if !known[i] {
				v := domains.Get([]byte(n))
				if v == nil {
					continue
				}
				var err error
				if ids[i], _, err = decodeDomainHead(v); err != nil {
					return fmt.Errorf("domain %q: %w", n, err)
				}
			}
			if c := ids[i] / dueChunk; c != chunkKey {
				chunkKey, chunk = c, b.Get(u32key(c))
				if chunk != nil && len(chunk) != dueValue {
					return fmt.Errorf("%w: next-due chunk %d has %d bytes", errCorrupt, c, len(chunk))
				}
			}
			if chunk != nil {
				out[i] = int(binary.BigEndian.Uint64(chunk[ids[i]%dueChunk*dueTimeSize:]) >> darkShift)
			}
		}
		return nil
	})
	return out, err
}

// idDue is one domain's next-due value as the due bucket keeps it.
type idDue struct {
	id       uint32
	ms       uint64 // Unix milliseconds; 0: due now
	dark     uint8
	keepDark bool // leave the stored dark count as it is
}

func newIDDue(id uint32, m Measured, keepDark bool) idDue {
	return idDue{id: id, ms: dueMillis(m.At), dark: uint8(min(max(m.Dark, 0), MaxDark)), keepDark: keepDark}
}

// putDue writes the values into their chunks, each chunk read and written
// once; for a domain listed twice the later value wins. A chunk left all
// zeros (its domains deleted) is deleted: an absent chunk reads as zeros.
func putDue(tx *bolt.Tx, due []idDue) error {
	slices.SortStableFunc(due, func(a, b idDue) int { return cmp.Compare(a.id, b.id) })
	b := tx.Bucket(bucketDue)
	for len(due) > 0 {
		chunk := due[0].id / dueChunk
		key := u32key(chunk)
		v := make([]byte, dueValue)
		if old := b.Get(key); old != nil {
			if len(old) != dueValue {
				return fmt.Errorf("%w: next-due chunk %d has %d bytes", errCorrupt, chunk, len(old))
			}
			copy(v, old)
		}
		for len(due) > 0 && due[0].id/dueChunk == chunk {
			at := v[due[0].id%dueChunk*dueTimeSize:]
			dark := uint64(due[0].dark)
			if due[0].keepDark {
				dark = binary.BigEndian.Uint64(at) >> darkShift
			}
			binary.BigEndian.PutUint64(at, due[0].ms&dueMillisMask|dark<<darkShift)
			due = due[1:]
		}
		var err error
		if len(bytes.TrimLeft(v, "\x00")) == 0 {
			err = b.Delete(key)
		} else {
			err = b.Put(key, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func dueMillis(t time.Time) uint64 { return min(uint64(max(t.UnixMilli(), 0)), dueMillisMask) }

// dueTime is the next-due time of a stored value.
func dueTime(v uint64) time.Time {
	ms := v & dueMillisMask
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// nextDue reads one domain's next-due time and dark count.
func nextDue(tx *bolt.Tx, id uint32) (time.Time, int, error) {
	v := tx.Bucket(bucketDue).Get(u32key(id / dueChunk))
	if v == nil {
		return time.Time{}, 0, nil
	}
	if len(v) != dueValue {
		return time.Time{}, 0, fmt.Errorf("%w: next-due chunk %d has %d bytes", errCorrupt, id/dueChunk, len(v))
	}
	raw := binary.BigEndian.Uint64(v[id%dueChunk*dueTimeSize:])
	return dueTime(raw), int(raw >> darkShift), nil
}

// dueTable is every next-due value, read at once for a pass over all
// domains: a million of them take 8 MB.
type dueTable struct{ ms []uint64 }

func loadDue(tx *bolt.Tx) (dueTable, error) {
	var t dueTable
	err := tx.Bucket(bucketDue).ForEach(func(k, v []byte) error {
		if len(k) != 4 || len(v) != dueValue {
			return fmt.Errorf("%w: next-due chunk %x has %d bytes", errCorrupt, k, len(v))
		}
		first := int(binary.BigEndian.Uint32(k)) * dueChunk
		if need := first + dueChunk; len(t.ms) < need {
			t.ms = slices.Grow(t.ms, need-len(t.ms))[:need]
		}
		for i := range dueChunk {
			t.ms[first+i] = binary.BigEndian.Uint64(v[i*dueTimeSize:])
		}
		return nil
	})
	return t, err
}

func (t dueTable) at(id uint32) time.Time {
	if int(id) >= len(t.ms) {
		return time.Time{}
	}
	return dueTime(t.ms[id])
}

func (t dueTable) dark(id uint32) int {
	if int(id) >= len(t.ms) {
		return 0
	}
	return int(t.ms[id] >> darkShift)
}
