package storage

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A version 4 file, with next-due times inside the domain records, opens
// as the current version with every record and time where it belongs.
func TestOpenUpgradesVersion4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v4.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	due := t0.Add(time.Hour)
	v4 := func(id uint32, nextDue time.Time, active bool, sources ...string) []byte {
		e := encoder{}
		e.uvarint(uint64(id))
		e.uvarint(uint64(t0.UnixMilli()))
		if nextDue.IsZero() {
			e.uvarint(0)
		} else {
			e.uvarint(uint64(nextDue.UnixMilli()))
		}
		if active {
			e.byte1(1)
		} else {
			e.byte1(0)
		}
		e.uvarint(uint64(len(sources)))
		for _, s := range sources {
			e.str(s)
		}
		return e.b
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketDomains, bucketDomainID} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		tx.Bucket(bucketMeta).Put(metaSchema, u32key(4))
		ds, ids := tx.Bucket(bucketDomains), tx.Bucket(bucketDomainID)
		ds.Put([]byte("a.test"), v4(1, due, true, "feed1", "feed2"))
		ds.Put([]byte("b.test"), v4(2, time.Time{}, true, "feed1"))
		ds.Put([]byte("c.test"), v4(700, due.Add(time.Minute), false))
		ids.Put(u32key(1), []byte("a.test"))
		ids.Put(u32key(2), []byte("b.test"))
		ids.Put(u32key(700), []byte("c.test"))
		return ids.SetSequence(700)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]Domain{
		"a.test": {Name: "a.test", ID: 1, Sources: []string{"feed1", "feed2"}, FirstSeen: t0, NextDue: due, Active: true},
		"b.test": {Name: "b.test", ID: 2, Sources: []string{"feed1"}, FirstSeen: t0, Active: true},
		"c.test": {Name: "c.test", ID: 700, FirstSeen: t0, NextDue: due.Add(time.Minute)},
	}
	for name, w := range want {
		if d, _, err := s.Domain(name); err != nil || !reflect.DeepEqual(d, w) {
			t.Errorf("%s = %+v, %v; want %+v", name, d, err, w)
		}
	}
	if got, _ := s.Due(t0.Add(30 * time.Minute)); !reflect.DeepEqual(got, []string{"b.test"}) {
		t.Errorf("due at +30m: %v", got)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Upgraded once: it opens again as the current version.
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.db.View(func(tx *bolt.Tx) error {
		if v := binary.BigEndian.Uint32(tx.Bucket(bucketMeta).Get(metaSchema)); v != SchemaVersion {
			t.Errorf("schema %d after the upgrade", v)
		}
		return nil
	})
}

func TestOpenRefusesOtherVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket(bucketMeta)
		return b.Put(metaSchema, u32key(3))
	})
	db.Close()
	if _, err := Open(path); !errors.Is(err, ErrSchema) {
		t.Fatalf("version 3: %v; want ErrSchema", err)
	}
}
