package storage

import (
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
// times of 8 bytes each, Unix milliseconds, 0 for "due now". 496 of them
// fill a 4 KiB page with the page's and the element's headers. A round of
// 200,000 domains rewrites 404 chunks instead of 200,000 records.
const (
	dueChunk    = 496
	dueTimeSize = 8
	dueValue    = dueChunk * dueTimeSize
)

// Due is when one domain should be measured next.
type Due struct {
	Domain string
	At     time.Time
}

// SetNextDue records when each domain should be measured next, in one
// transaction. Domains never added are skipped.
func (s *Store) SetNextDue(due []Due) error {
	if len(due) == 0 {
		return nil
	}
	byID := make([]idDue, 0, len(due))
	var unknown []Due // not in the writer's cache: looked up in the transaction
	s.wmu.Lock()
	for _, d := range due {
		if id, ok := s.domainIDs[d.Domain]; ok {
			byID = append(byID, idDue{id, dueMillis(d.At)})
		} else {
			unknown = append(unknown, d)
		}
	}
	s.wmu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		domains := tx.Bucket(bucketDomains)
		for _, d := range unknown {
			v := domains.Get([]byte(d.Domain))
			if v == nil {
				continue
			}
			id, _, err := decodeDomainHead(v)
			if err != nil {
				return fmt.Errorf("domain %q: %w", d.Domain, err)
			}
			byID = append(byID, idDue{id, dueMillis(d.At)})
		}
		return putDue(tx, byID)
	})
}

// idDue is one domain's next-due time as the due bucket keeps it.
type idDue struct {
	id uint32
	ms uint64 // Unix milliseconds; 0: due now
}

// putDue writes the times into their chunks, each chunk read and written
// once; for a domain listed twice the later time wins.
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
			binary.BigEndian.PutUint64(v[due[0].id%dueChunk*dueTimeSize:], due[0].ms)
			due = due[1:]
		}
		if err := b.Put(key, v); err != nil {
			return err
		}
	}
	return nil
}

func dueMillis(t time.Time) uint64 { return uint64(max(t.UnixMilli(), 0)) }

func dueTime(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// nextDue reads one domain's next-due time.
func nextDue(tx *bolt.Tx, id uint32) (time.Time, error) {
	v := tx.Bucket(bucketDue).Get(u32key(id / dueChunk))
	if v == nil {
		return time.Time{}, nil
	}
	if len(v) != dueValue {
		return time.Time{}, fmt.Errorf("%w: next-due chunk %d has %d bytes", errCorrupt, id/dueChunk, len(v))
	}
	return dueTime(binary.BigEndian.Uint64(v[id%dueChunk*dueTimeSize:])), nil
}

// dueTable is every next-due time, read at once for a pass over all
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
