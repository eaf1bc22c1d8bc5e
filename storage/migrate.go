package storage

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// migrate brings a file written by an older fluxwatch to SchemaVersion,
// inside the transaction that opens it: the upgrade is whole or not at all.
// It returns false for a version it cannot read.
func migrate(tx *bolt.Tx, from uint32) (bool, error) {
	switch from {
	case 4:
		if err := migrate4to5(tx); err != nil {
			return true, fmt.Errorf("upgrading from version 4: %w", err)
		}
		fallthrough
	case 5:
		// Version 6 keeps a dark count in the top byte of each next-due
		// value, where version 5 kept zeros: nothing to rewrite.
		return true, tx.Bucket(bucketMeta).Put(metaSchema, u32key(SchemaVersion))
	}
	return false, nil
}

// migrate4to5 moves the next-due times out of the domain records (version
// 4: id, first seen, next due, active, sources) into the due bucket.
func migrate4to5(tx *bolt.Tx) error {
	type record struct {
		name  []byte
		value []byte
	}
	var records []record
	var due []idDue
	b := tx.Bucket(bucketDomains)
	err := b.ForEach(func(k, v []byte) error {
		d := decoder{b: v}
		id := d.uvarint("domain id")
		d.uvarint("first seen")
		head := v[:len(v)-len(d.b)]
		ms := d.uvarint("next due")
		if d.err != nil {
			return fmt.Errorf("domain %q: %w", k, d.err)
		}
		if id > 1<<32-1 {
			return fmt.Errorf("domain %q: %w: id %d", k, errCorrupt, id)
		}
		records = append(records, record{k, append(slices.Clip(head), d.b...)})
		if ms != 0 {
			due = append(due, idDue{id: uint32(id), ms: ms})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range records {
		if err := b.Put(r.name, r.value); err != nil {
			return err
		}
	}
	return putDue(tx, due)
}
