package storage

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Flux networks (groups of flux domains that share agents) are the
// networks package's business: it builds them after each classification
// and keeps them here, each as a JSON record under its id, with an index
// from each domain to its network. Their buckets are made by the first
// write (ReplaceNetworks), not when a file is opened: a file without them
// simply holds no networks, and every reader takes absence for empty. So
// adding them changed no schema version, and a read-only open of a file
// written before them works.
var (
	bucketNetworks  = []byte("networks")   // id → network (JSON, owned by the networks package); the sequence numbers new ids
	bucketNetworkOf = []byte("network_of") // domain → id of its network
)

// NetworkRecord is one flux network as storage keeps it.
type NetworkRecord struct {
	ID      string
	Domains []string
	JSON    []byte
}

// ReplaceNetworks replaces every stored network with recs in one
// transaction, and the domain index with their domains; seq, if it is
// above the stored sequence, becomes it (see NetworkSequence).
func (s *Store) ReplaceNetworks(recs []NetworkRecord, seq uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		// Ids are never handed out twice: the sequence only goes up.
		if old := tx.Bucket(bucketNetworks); old != nil {
			seq = max(seq, old.Sequence())
		}
		for _, name := range [][]byte{bucketNetworks, bucketNetworkOf} {
			if tx.Bucket(name) == nil {
				continue
			}
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		nets, err := tx.CreateBucket(bucketNetworks)
		if err != nil {
			return err
		}
		of, err := tx.CreateBucket(bucketNetworkOf)
		if err != nil {
			return err
		}
		if err := nets.SetSequence(seq); err != nil {
			return err
		}
		for _, r := range recs {
			if r.ID == "" {
				return fmt.Errorf("storing networks: a network without an id")
			}
			if err := nets.Put([]byte(r.ID), r.JSON); err != nil {
				return err
			}
			for _, d := range r.Domains {
				if err := of.Put([]byte(d), []byte(r.ID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// NetworkSequence returns the last number handed to a network id: the
// networks package numbers new networks from it, so that an id is never
// given twice.
func (s *Store) NetworkSequence() (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketNetworks); b != nil {
			seq = b.Sequence()
		}
		return nil
	})
	return seq, err
}

// Networks calls fn with every stored network in id order (byte order of
// the ids). The slice is valid only until fn returns.
func (s *Store) Networks(fn func(id string, v []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNetworks)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
	})
}

// Network returns the stored network id, or nil.
func (s *Store) Network(id string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketNetworks); b != nil {
			if v := b.Get([]byte(id)); v != nil {
				out = bytes.Clone(v)
			}
		}
		return nil
	})
	return out, err
}

// NetworkOf returns the id of the network domain belongs to, or "".
func (s *Store) NetworkOf(domain string) (string, error) {
	var id string
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketNetworkOf); b != nil {
			id = string(b.Get([]byte(domain)))
		}
		return nil
	})
	return id, err
}

// NetworkIndex returns the network of every domain that is in one.
func (s *Store) NetworkIndex() (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNetworkOf)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	return out, err
}
