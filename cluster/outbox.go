package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Outbox defaults.
const (
	DefaultOutboxEntries = 100_000
	DefaultOutboxBytes   = 256 << 20
)

// Errors of the outbox.
var (
	// ErrOutboxLocked means another agent has the outbox file open.
	ErrOutboxLocked = errors.New("outbox is in use by another agent")
	// errOutboxCorrupt means an entry could not be read back.
	errOutboxCorrupt = errors.New("outbox entry corrupt")
)

var (
	bucketOutbox     = []byte("outbox") // sequence (8 bytes) → entry
	bucketOutboxMeta = []byte("meta")   // counters
	metaCount        = []byte("count")
	metaBytes        = []byte("bytes")
	metaDropped      = []byte("dropped")
)

// OutboxOptions bound an outbox. The zero value gives the defaults.
type OutboxOptions struct {
	// MaxEntries and MaxBytes bound what the outbox keeps (defaults
	// 100,000 entries and 256 MiB of message data); past either, the
	// oldest entries are dropped and counted.
	MaxEntries int
	MaxBytes   int64
}

// Outbox is an agent's bounded on-disk queue of observation messages that
// JetStream has not acknowledged yet, in one bbolt file. Entries are kept
// in the order they were put. It is safe for concurrent use.
type Outbox struct {
	db   *bolt.DB
	opts OutboxOptions
}

// OutboxEntry is one message waiting in the outbox.
type OutboxEntry struct {
	Seq     uint64 // assigned by Put; increasing
	ID      string // Nats-Msg-Id
	Subject string
	Data    []byte
}

func (e OutboxEntry) size() int64 { return int64(len(e.ID) + len(e.Subject) + len(e.Data)) }

// OutboxStats describe what an outbox holds.
type OutboxStats struct {
	Pending int
	Bytes   int64
	Dropped uint64 // dropped because the outbox was full, ever
}

// OpenOutbox opens or creates the outbox file at path. If another process
// has it open, it fails within a second with ErrOutboxLocked.
func OpenOutbox(path string, opts OutboxOptions) (*Outbox, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultOutboxEntries
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultOutboxBytes
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("opening outbox %s: %w", path, ErrOutboxLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening outbox %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketOutbox, bucketOutboxMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening outbox %s: %w", path, err)
	}
	return &Outbox{db: db, opts: opts}, nil
}

// Close closes the file.
func (o *Outbox) Close() error { return o.db.Close() }

// Put appends entries in one transaction, synced to disk before it
// returns, and returns them with their sequence numbers. When the outbox
// is over its bounds afterwards, its oldest entries are dropped (possibly
// some of these) and counted.
func (o *Outbox) Put(entries []OutboxEntry) ([]OutboxEntry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	var out []OutboxEntry
	// Several workers put at once: Batch shares one sync among them. The
	// function only touches the transaction, so running it again is safe.
	err := o.db.Batch(func(tx *bolt.Tx) error {
		out = make([]OutboxEntry, len(entries))
		b, meta := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxMeta)
		b.FillPercent = 0.95 // keys only grow
		count, size := counter(meta, metaCount), counter(meta, metaBytes)
		for i, e := range entries {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			e.Seq = seq
			if err := b.Put(u64(seq), encodeEntry(e)); err != nil {
				return err
			}
			out[i] = e
			count++
			size += uint64(e.size())
		}
		dropped := counter(meta, metaDropped)
		c := b.Cursor()
		for k, v := c.First(); k != nil && (count > uint64(o.opts.MaxEntries) || size > uint64(o.opts.MaxBytes)); k, v = c.First() {
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			count--
			size -= min(size, uint64(e.size()))
			dropped++
		}
		return putCounters(meta, count, size, dropped)
	})
	if err != nil {
		return nil, fmt.Errorf("writing to the outbox: %w", err)
	}
	return out, nil
}

// Delete removes entries by sequence number; numbers no longer there are
// ignored.
func (o *Outbox) Delete(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := o.db.Update(func(tx *bolt.Tx) error {
		b, meta := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxMeta)
		count, size := counter(meta, metaCount), counter(meta, metaBytes)
		for _, seq := range seqs {
			v := b.Get(u64(seq))
			if v == nil {
				continue
			}
			e, err := decodeEntry(u64(seq), v)
			if err != nil {
				return err
			}
			if err := b.Delete(u64(seq)); err != nil {
				return err
			}
			count--
			size -= min(size, uint64(e.size()))
		}
		return putCounters(meta, count, size, counter(meta, metaDropped))
	})
	if err != nil {
		return fmt.Errorf("deleting from the outbox: %w", err)
	}
	return nil
}

// Pending returns up to limit entries with sequence numbers above after,
// oldest first.
func (o *Outbox) Pending(after uint64, limit int) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return out, nil
}

// Stats returns the outbox's counters.
func (o *Outbox) Stats() (OutboxStats, error) {
	var st OutboxStats
	err := o.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketOutboxMeta)
		st = OutboxStats{Pending: int(counter(meta, metaCount)), Bytes: int64(counter(meta, metaBytes)), Dropped: counter(meta, metaDropped)}
		return nil
	})
	return st, err
}

func counter(meta *bolt.Bucket, key []byte) uint64 {
	if v := meta.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putCounters(meta *bolt.Bucket, count, size, dropped uint64) error {
	for _, kv := range []struct {
		k []byte
		v uint64
	}{{metaCount, count}, {metaBytes, size}, {metaDropped, dropped}} {
		if err := meta.Put(kv.k, u64(kv.v)); err != nil {
			return err
		}
	}
	return nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// An entry is stored as uvarint-prefixed ID and subject, then the data.
func encodeEntry(e OutboxEntry) []byte {
	b := make([]byte, 0, 4+e.size())
	b = binary.AppendUvarint(b, uint64(len(e.ID)))
	b = append(b, e.ID...)
	b = binary.AppendUvarint(b, uint64(len(e.Subject)))
	b = append(b, e.Subject...)
	return append(b, e.Data...)
}

func decodeEntry(k, v []byte) (OutboxEntry, error) {
	if len(k) != 8 {
		return OutboxEntry{}, fmt.Errorf("%w: key of %d bytes", errOutboxCorrupt, len(k))
	}
	e := OutboxEntry{Seq: binary.BigEndian.Uint64(k)}
	var fields [2]string
	for i := range fields {
		n, w := binary.Uvarint(v)
		if w <= 0 || uint64(len(v)-w) < n {
			return OutboxEntry{}, fmt.Errorf("%w: entry %d", errOutboxCorrupt, e.Seq)
		}
		fields[i] = string(v[w : w+int(n)])
		v = v[w+int(n):]
	}
	e.ID, e.Subject = fields[0], fields[1]
	e.Data = append([]byte(nil), v...)
	return e, nil
}
