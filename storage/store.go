// Package storage keeps fluxwatch's measurements in one bbolt file.
//
// The layout is built around the question the classifier asks most: "what
// did every vantage say about this domain over the last hours?". Probes (one
// vantage's answers about one domain at one moment) are keyed by domain id,
// start time and vantage id, so one domain's history is a single contiguous
// range scan in time order. Identical answer sets are stored once and
// referenced by id; names inside answers and vantage addresses are interned.
// Writes come in large transactions (see Writer), never one per observation.
//
// Commands that only read open the file with OpenReadOnly, which changes
// nothing in it. A damaged file is an error, never a crash: Open looks at
// the file's pages itself before bbolt maps it, and every transaction runs
// under a guard that turns bbolt's panics and faults on the map into a
// *DamagedError (damage.go, pages.go). Check, CheckFile, Backup and
// Salvage look after the file.
package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fluxwatch/fluxwatch/obs"
)

// SchemaVersion is the version of the layout this code reads and writes.
// 3: an observation's rcode moved into its flags-and-error varint.
// 4: single-address answers stored in the probe, not as sets.
// 5: next-due times moved from the domain records to the due bucket (a
// version 4 file is upgraded when opened, see migrate.go).
// 6: a next-due value carries the domain's dark count in its top byte (a
// version 5 file is upgraded by its version number alone).
const SchemaVersion = 6

// Errors returned by Open and the accessors.
var (
	// ErrLocked means another process holds the database open.
	ErrLocked = errors.New("database is in use by another process")
	// ErrSchema means the file was written by an incompatible version.
	ErrSchema = errors.New("unsupported database schema")
	// ErrDamaged is matched (errors.Is) by every error that says the file
	// itself is damaged: a *DamagedError, which names the file and why.
	ErrDamaged = errors.New("database is damaged")
	// ErrNoDatabase means there is no file at the path (and the command
	// does not create one): "no database at PATH".
	ErrNoDatabase = errors.New("no database")
	// ErrUnknownDomain means a probe or query named a domain that was never added.
	ErrUnknownDomain = errors.New("unknown domain")
)

var (
	bucketMeta     = []byte("meta")
	bucketDomains  = []byte("domains")    // name → domain record
	bucketDomainID = []byte("domain_ids") // id (4 bytes) → name
	bucketNames    = []byte("names")      // interned string → id (uvarint)
	bucketNameID   = []byte("name_ids")   // id (8 bytes) → string
	bucketSets     = []byte("sets")       // id (8 bytes) → encoded answer set
	bucketSetIndex = []byte("set_index")  // fnv64 of encoded set (8 bytes) → ids (8 bytes each)
	bucketProbes   = []byte("probes")     // domain id | start | vantage id → encoded observations
	bucketVerdicts = []byte("verdicts")   // name → verdict (JSON, owned by the classifier)
	bucketListed   = []byte("listed")     // name → short verdict of listed domains
	bucketDue      = []byte("due")        // domain id / dueChunk (4 bytes) → next-due times (see due.go)

	allBuckets = [][]byte{bucketMeta, bucketDomains, bucketDomainID, bucketNames, bucketNameID,
		bucketSets, bucketSetIndex, bucketProbes, bucketVerdicts, bucketListed,
		bucketListingLog, bucketDelisted, bucketPublished, bucketPublishes, bucketDue}

	// optionalBuckets are made by their first write, not by Open: a file
	// without them reads as empty (see networks.go).
	optionalBuckets = [][]byte{bucketNetworks, bucketNetworkOf}

	metaSchema = []byte("schema")
	metaSerial = []byte("rpz_serial")
)

// Store is an open fluxwatch database. It is safe for concurrent use; bbolt
// allows one writer at a time and any number of readers.
type Store struct {
	db       boltDB
	path     string
	readOnly bool
	// retained counts the users Retain added that have not closed yet.
	retained atomic.Int64

	mu    sync.RWMutex
	names map[string]uint64 // committed interned strings
	ids   map[uint64]string

	// Caches for the write path, which would otherwise search the B+trees
	// for every probe: domain ids (a name keeps its id until DeleteDomains
	// removes the domain) and recently stored answer sets by their
	// encoding. Only the writer uses them.
	wmu       sync.Mutex
	domainIDs map[string]uint32
	sets      map[string]uint64
	// deletions counts the DeleteDomains calls that removed domains: a
	// reader that learned ids in a transaction begun before one of them
	// must not cache them (see activeWhere).
	deletions uint64

	// ownership, when set, says which seeded names the database keeps
	// (see SetOwnership).
	ownership atomic.Pointer[Ownership]
}

// maxCachedSets bounds the answer-set cache (about 20 MB).
const maxCachedSets = 1 << 18

// Open opens the database at path for reading and writing, creating it if
// there is none (the commands that add data: seeds add, import, crawl,
// daemon). If another process has it open, Open fails within a second with
// ErrLocked; a damaged file is a *DamagedError.
func Open(path string) (*Store, error) { return open(path, modeCreate) }

// OpenExisting is Open for a database that must already exist: a missing
// file is ErrNoDatabase and nothing is created.
func OpenExisting(path string) (*Store, error) { return open(path, modeWrite) }

// OpenReadOnly opens an existing database for reading only: it creates,
// upgrades and changes nothing (the file is byte-for-byte the same
// afterwards), takes a shared lock, and needs only read permission. A file
// whose schema needs an upgrade is refused with ErrSchema. Writes through
// the store fail.
func OpenReadOnly(path string) (*Store, error) { return open(path, modeRead) }

type openMode int

const (
	modeRead openMode = iota
	modeWrite
	modeCreate
)

func open(path string, mode openMode) (*Store, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && mode != modeCreate:
		return nil, fmt.Errorf("%w at %s", ErrNoDatabase, path)
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("opening %s: %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("opening %s: is a directory", path)
	default:
		// An empty file is damage too (a file cut to nothing): bbolt
		// would make a new database of it. Only a missing file is created.
		// Look at the file before bbolt does: bbolt panics, or faults on a
		// page beyond the end, on much of what this finds.
		bf, err := openBoltFile(path)
		switch {
		case errors.Is(err, ErrDamaged) && lockedByAnother(path):
			// Looked at without the lock while a writer rewrites
			// pages: not evidence of damage; the writer owns the file.
			return nil, fmt.Errorf("opening %s: %w (is a crawl or the daemon running on it?)", path, ErrLocked)
		case errors.Is(err, ErrDamaged):
			return nil, err
		case err != nil:
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		bf.Close()
	}
	opts := &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType, ReadOnly: mode == modeRead}
	// If bbolt panics while opening (a freelist that does not hold
	// together), the file it opened is closed here: its lock goes with it.
	var file *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	var db *bolt.DB
	err = guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, opts)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrDamaged) {
			if db == nil && file != nil {
				file.Close()
			}
			return nil, err
		}
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("opening %s: %w (is a crawl or the daemon running on it?)", path, ErrLocked)
		}
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	// Grow the file a megabyte at a time rather than bbolt's 16: a
	// database's size is then its data, not its data plus up to 16 MB.
	db.AllocSize = 1 << 20
	s := &Store{db: boltDB{DB: db, path: path}, path: path, readOnly: mode == modeRead,
		names: map[string]uint64{}, ids: map[uint64]string{},
		domainIDs: map[string]uint32{}, sets: map[string]uint64{}}
	if err := s.init(); err != nil {
		db.Close()
		if errors.Is(err, ErrDamaged) {
			return nil, err
		}
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return s, nil
}

// init checks the schema and loads the name table in a read transaction.
// Only a file that needs buckets created or its schema upgraded gets a
// write transaction (bbolt commits a new meta page even for an empty one),
// and a read-only store refuses such a file.
func (s *Store) init() error {
	var upgrade error
	err := s.db.View(func(tx *bolt.Tx) error {
		upgrade = needsUpgrade(tx)
		if upgrade != nil {
			return nil
		}
		return s.loadNames(tx)
	})
	if err != nil || upgrade == nil {
		return err
	}
	if s.readOnly {
		if errors.Is(upgrade, ErrSchema) {
			return upgrade
		}
		return fmt.Errorf("%w: %v: it needs an upgrade, which a read-only open does not do: run a command that writes (such as 'fluxwatch db compact') once", ErrSchema, upgrade)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaSchema); v == nil {
			if err := meta.Put(metaSchema, u32key(SchemaVersion)); err != nil {
				return err
			}
		} else if len(v) != 4 {
			return fmt.Errorf("%w: file has version %x, this fluxwatch reads %d", ErrSchema, v, SchemaVersion)
		} else if version := binary.BigEndian.Uint32(v); version != SchemaVersion {
			if ok, err := migrate(tx, version); !ok {
				return fmt.Errorf("%w: file has version %d, this fluxwatch reads %d (and upgrades 4 and 5)", ErrSchema, version, SchemaVersion)
			} else if err != nil {
				return err
			}
		}
		return s.loadNames(tx)
	})
}

// needsUpgrade says why a file is not at SchemaVersion with every bucket,
// or nil.
func needsUpgrade(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("the file has no %s bucket", name)
		}
	}
	v := tx.Bucket(bucketMeta).Get(metaSchema)
	switch {
	case v == nil:
		return errors.New("the file has no schema version")
	case len(v) != 4:
		return fmt.Errorf("%w: file has version %x, this fluxwatch reads %d", ErrSchema, v, SchemaVersion)
	}
	switch version := binary.BigEndian.Uint32(v); version {
	case SchemaVersion:
	case 4, 5:
		return fmt.Errorf("the file has schema version %d, this fluxwatch reads %d", version, SchemaVersion)
	default:
		return fmt.Errorf("%w: file has version %d, this fluxwatch reads %d (and upgrades 4 and 5)", ErrSchema, version, SchemaVersion)
	}
	return nil
}

func (s *Store) loadNames(tx *bolt.Tx) error {
	return tx.Bucket(bucketNameID).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("name table: %w: key of %d bytes", errCorrupt, len(k))
		}
		id := binary.BigEndian.Uint64(k)
		s.names[string(v)] = id
		s.ids[id] = string(v)
		return nil
	})
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Retain adds a user of the store, who will Close it like its opener: the
// database closes when the last of them does. The holder of a database
// lends its store so to the commands it runs for others.
func (s *Store) Retain() *Store {
	s.retained.Add(1)
	return s
}

// Close closes the database, once every user Retain added has closed it
// too.
func (s *Store) Close() error {
	if s.retained.Add(-1) >= 0 {
		return nil
	}
	return s.db.Close()
}

// str returns the committed string for an interned id.
func (s *Store) str(id uint64) (string, error) {
	s.mu.RLock()
	v, ok := s.ids[id]
	s.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w: unknown name id %d", errCorrupt, id)
	}
	return v, nil
}

// readNames is the interner for reading. An id a reader's transaction sees
// may be newer than the store's cache (a writer commits its names before
// it publishes them to the cache): those are read from the transaction.
type readNames struct {
	s  *Store
	tx *bolt.Tx // nil: the cache only
}

func (r readNames) id(name string) (uint64, error) {
	r.s.mu.RLock()
	id, ok := r.s.names[name]
	r.s.mu.RUnlock()
	if !ok {
		return 0, fmt.Errorf("name %q not interned", name)
	}
	return id, nil
}
func (r readNames) str(id uint64) (string, error) {
	v, err := r.s.str(id)
	if err == nil || r.tx == nil {
		return v, err
	}
	if b := r.tx.Bucket(bucketNameID).Get(u64key(id)); b != nil {
		return string(b), nil
	}
	return "", err
}

// txNames interns inside a write transaction. New ids become visible to the
// store only after the transaction commits (see commit).
type txNames struct {
	s       *Store
	b, bid  *bolt.Bucket
	pending map[string]uint64
	pendID  map[uint64]string
}

func newTxNames(s *Store, tx *bolt.Tx) *txNames {
	return &txNames{s: s, b: tx.Bucket(bucketNames), bid: tx.Bucket(bucketNameID),
		pending: map[string]uint64{}, pendID: map[uint64]string{}}
}

func (t *txNames) id(name string) (uint64, error) {
	t.s.mu.RLock()
	id, ok := t.s.names[name]
	t.s.mu.RUnlock()
	if ok {
		return id, nil
	}
	if id, ok := t.pending[name]; ok {
		return id, nil
	}
	id, err := t.b.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := t.b.Put([]byte(name), binary.AppendUvarint(nil, id)); err != nil {
		return 0, err
	}
	if err := t.bid.Put(u64key(id), []byte(name)); err != nil {
		return 0, err
	}
	t.pending[name], t.pendID[id] = id, name
	return id, nil
}

func (t *txNames) str(id uint64) (string, error) {
	if v, ok := t.pendID[id]; ok {
		return v, nil
	}
	return t.s.str(id)
}

// commit publishes the ids interned by a committed transaction.
func (t *txNames) commit() {
	if len(t.pending) == 0 {
		return
	}
	t.s.mu.Lock()
	for k, v := range t.pending {
		t.s.names[k] = v
		t.s.ids[v] = k
	}
	t.s.mu.Unlock()
}

// internSet returns the id of an encoded answer set, storing it if new.
func internSet(tx *bolt.Tx, enc []byte) (uint64, error) {
	h := fnv.New64a()
	h.Write(enc)
	hk := u64key(h.Sum64())
	sets, index := tx.Bucket(bucketSets), tx.Bucket(bucketSetIndex)
	ids := index.Get(hk)
	for i := 0; i+8 <= len(ids); i += 8 {
		id := binary.BigEndian.Uint64(ids[i : i+8])
		if string(sets.Get(u64key(id))) == string(enc) {
			return id, nil
		}
	}
	id, err := sets.NextSequence()
	if err != nil {
		return 0, err
	}
	// Ids only grow, so pages can be packed full. bbolt keeps the value
	// slice until commit: store a copy.
	sets.FillPercent = 0.95
	if err := sets.Put(u64key(id), append([]byte(nil), enc...)); err != nil {
		return 0, err
	}
	return id, index.Put(hk, binary.BigEndian.AppendUint64(append([]byte(nil), ids...), id))
}

// WriteProbes stores probes in one transaction: all or none. Probes for
// domains that were never added fail the whole batch with ErrUnknownDomain.
func (s *Store) WriteProbes(probes []obs.Probe) (observations int, err error) {
	if len(probes) == 0 {
		return 0, nil
	}
	var names *txNames
	s.wmu.Lock()
	defer s.wmu.Unlock()
	newSets := map[string]uint64{}
	err = s.db.Update(func(tx *bolt.Tx) error {
		names = newTxNames(s, tx)
		clear(newSets)
		domains := tx.Bucket(bucketDomains)
		var err error
		observations, err = s.putProbes(tx, names, newSets, probes, func(name string) (uint32, error) {
			if did, ok := s.domainIDs[name]; ok {
				return did, nil
			}
			rec := domains.Get([]byte(name))
			if rec == nil {
				return 0, fmt.Errorf("storing probe: %w %q", ErrUnknownDomain, name)
			}
			did, _, err := decodeDomainHead(rec)
			if err != nil {
				return 0, fmt.Errorf("domain %q: %w", name, err)
			}
			// An id stays its domain's until DeleteDomains, which holds
			// wmu as this does and forgets the ids it deletes.
			s.domainIDs[name] = did
			return did, nil
		})
		return err
	})
	if err != nil {
		return 0, err
	}
	s.committedProbes(names, newSets)
	return observations, nil
}

// putProbes encodes probes and stores them in tx, interning their names
// and answer sets, and returns how many observations they hold. domainID
// gives the id each probe's domain has in tx. The caller holds wmu, and
// after tx commits passes names and newSets to committedProbes; it is the
// one path by which probes are stored, so that every probe reads back as
// it does wherever it was written.
func (s *Store) putProbes(tx *bolt.Tx, names *txNames, newSets map[string]uint64, probes []obs.Probe, domainID func(name string) (uint32, error)) (observations int, err error) {
	type keyed struct {
		key []byte
		p   *obs.Probe
	}
	probeB := tx.Bucket(bucketProbes)
	ks := make([]keyed, 0, len(probes))
	keys := make([]byte, 0, probeKeySize*len(probes)) // one allocation for every key
	for i := range probes {
		p := &probes[i]
		did, err := domainID(p.Domain)
		if err != nil {
			return 0, err
		}
		vid, err := names.id(p.Vantage)
		if err != nil {
			return 0, err
		}
		if vid > 1<<32-1 {
			return 0, fmt.Errorf("vantage id %d out of range", vid)
		}
		keys = appendProbeKey(keys, did, p.Start, uint32(vid))
		ks = append(ks, keyed{keys[len(keys)-probeKeySize : len(keys) : len(keys)], p})
	}
	slices.SortFunc(ks, func(a, b keyed) int { return bytes.Compare(a.key, b.key) })
	var setBuf, valBuf []byte
	var values arena
	stored := make([]storedObs, 0, 8)
	var ttls []uint32 // the TTLs of one probe's observations, stored[i].ttls slices of it
	for _, k := range ks {
		stored, ttls = stored[:0], ttls[:0]
		for _, o := range k.p.Observations {
			so := storedObs{offset: o.Time.Sub(k.p.Start), qtype: o.QType, rcode: uint8(o.Rcode),
				flags: o.Flags, err: o.Err, rtt: o.RTT}
			if o.Name != k.p.Domain {
				id, err := names.id(o.Name)
				if err != nil {
					return 0, err
				}
				so.nameID = id
			}
			if a, ok := inlineAddr(o); ok {
				start := len(ttls)
				ttls = append(ttls, o.Answer[0].TTL)
				so.inline, so.ttls = a, ttls[start:]
			} else if len(o.Answer) > 0 {
				enc, err := encodeSet(o.Answer, o.Name, names, setBuf[:0])
				if err != nil {
					return 0, fmt.Errorf("storing probe of %s: %w", k.p.Domain, err)
				}
				setBuf = enc
				if id, ok := s.sets[string(enc)]; ok {
					so.setID = id
				} else if id, ok := newSets[string(enc)]; ok {
					so.setID = id
				} else {
					if so.setID, err = internSet(tx, enc); err != nil {
						return 0, err
					}
					newSets[string(enc)] = so.setID
				}
				start := len(ttls)
				ttls = appendRRsetTTLs(ttls, o.Answer)
				so.ttls = ttls[start:]
			}
			stored = append(stored, so)
		}
		valBuf = encodeProbe(stored, valBuf[:0])
		if err := probeB.Put(k.key, values.copy(valBuf)); err != nil {
			return 0, err
		}
		observations += len(stored)
	}
	return observations, nil
}

// committedProbes publishes the names and answer sets that putProbes
// stored in a transaction that has committed. The caller holds wmu.
func (s *Store) committedProbes(names *txNames, newSets map[string]uint64) {
	names.commit()
	if len(s.sets)+len(newSets) > maxCachedSets {
		clear(s.sets)
	}
	maps.Copy(s.sets, newSets)
}

// inlineAddr returns the address of an answer that is one A or AAAA record
// for the name asked, which the probe stores inline rather than as a set.
func inlineAddr(o obs.Observation) (netip.Addr, bool) {
	if len(o.Answer) != 1 {
		return netip.Addr{}, false
	}
	r := o.Answer[0]
	if r.Name != o.Name || (r.Type != dns.TypeA && r.Type != dns.TypeAAAA) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(r.Data)
	if err != nil || a.Zone() != "" || (r.Type == dns.TypeA) != a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// appendRRsetTTLs appends the TTL of each RRset of sorted records: the
// smallest TTL within the set, as a resolver would use it.
func appendRRsetTTLs(ttls []uint32, rs []obs.Record) []uint32 {
	for i, r := range rs {
		if i == 0 || r.Name != rs[i-1].Name || r.Type != rs[i-1].Type {
			ttls = append(ttls, r.TTL)
		} else if r.TTL < ttls[len(ttls)-1] {
			ttls[len(ttls)-1] = r.TTL
		}
	}
	return ttls
}

// History calls fn with the probes of domain whose start lies in [from, to),
// in time order. A zero to means no upper bound.
func (s *Store) History(domain string, from, to time.Time, fn func(obs.Probe) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		d, err := knownDomain(tx, domain)
		if err != nil {
			return err
		}
		return s.history(tx, d, from, to, fn)
	})
}

func (s *Store) history(tx *bolt.Tx, d Domain, from, to time.Time, fn func(obs.Probe) error) error {
	sets := tx.Bucket(bucketSets)
	names := readNames{s, tx}
	setCache := map[uint64][]obs.Record{}
	prefix := u32key(d.ID)
	seek := probeKey(d.ID, from, 0)
	if from.IsZero() || from.UnixNano() < 0 {
		seek = prefix
	}
	c := tx.Bucket(bucketProbes).Cursor()
	for k, v := c.Seek(seek); k != nil && string(k[:4]) == string(prefix); k, v = c.Next() {
		_, start, vid, ok := parseProbeKey(k)
		if !ok {
			return fmt.Errorf("probe key %x: %w", k, errCorrupt)
		}
		if !to.IsZero() && !start.Before(to) {
			break
		}
		vantage, err := names.str(uint64(vid))
		if err != nil {
			return err
		}
		stored, err := decodeProbe(v)
		if err != nil {
			return fmt.Errorf("probe of %s at %s: %w", d.Name, start.Format(time.RFC3339), err)
		}
		p := obs.Probe{Domain: d.Name, Vantage: vantage, Start: start, Observations: make([]obs.Observation, len(stored))}
		for i, so := range stored {
			o := obs.Observation{Time: start.Add(so.offset), Vantage: vantage, Name: d.Name, QType: so.qtype,
				Rcode: int(so.rcode), Flags: so.flags, RTT: so.rtt, Err: so.err}
			if so.nameID != 0 {
				if o.Name, err = names.str(so.nameID); err != nil {
					return err
				}
			}
			if so.inline.IsValid() {
				r := obs.Record{Name: o.Name, Type: dns.TypeA, Data: so.inline.String()}
				if !so.inline.Is4() {
					r.Type = dns.TypeAAAA
				}
				if len(so.ttls) > 0 {
					r.TTL = so.ttls[0]
				}
				o.Answer = []obs.Record{r}
			} else if so.setID != 0 {
				rs, ok := setCache[so.setID]
				if !ok {
					enc := sets.Get(u64key(so.setID))
					if enc == nil {
						return fmt.Errorf("probe of %s: answer set %d missing: %w", d.Name, so.setID, errCorrupt)
					}
					if rs, err = decodeSet(enc, names); err != nil {
						return fmt.Errorf("answer set %d: %w", so.setID, err)
					}
					setCache[so.setID] = rs
				}
				o.Answer = withTTLs(rs, so.ttls, o.Name)
			}
			p.Observations[i] = o
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// withTTLs copies a stored set, names the records stored relative to the
// query (owner "") with qname, and applies one TTL per RRset.
func withTTLs(rs []obs.Record, ttls []uint32, qname string) []obs.Record {
	out := make([]obs.Record, len(rs))
	copy(out, rs)
	set := -1
	for i := range out {
		if out[i].Name == "" {
			out[i].Name = qname
		}
		if i == 0 || out[i].Name != out[i-1].Name || out[i].Type != out[i-1].Type {
			set++
		}
		if set < len(ttls) {
			out[i].TTL = ttls[set]
		}
	}
	return out
}

// Stats are counts for status output and benchmarks.
type Stats struct {
	Domains, ActiveDomains int
	Probes, AnswerSets     int
	Names, Verdicts        int
	FileBytes              int64
}

// Stats counts what the database holds.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.db.View(func(tx *bolt.Tx) error {
		st.Probes = tx.Bucket(bucketProbes).Stats().KeyN
		st.AnswerSets = tx.Bucket(bucketSets).Stats().KeyN
		st.Names = tx.Bucket(bucketNameID).Stats().KeyN
		st.Verdicts = tx.Bucket(bucketVerdicts).Stats().KeyN
		return tx.Bucket(bucketDomains).ForEach(func(k, v []byte) error {
			d, err := decodeDomain(string(k), v)
			if err != nil {
				return err
			}
			st.Domains++
			if d.Active {
				st.ActiveDomains++
			}
			return nil
		})
	})
	if fi, ferr := os.Stat(s.path); ferr == nil {
		st.FileBytes = fi.Size()
	}
	return st, err
}

// arena carves byte slices out of large blocks: values handed to bbolt
// must stay put until the transaction ends, and one allocation for many
// is cheaper than one each.
type arena struct{ block []byte }

func (a *arena) copy(b []byte) []byte {
	if cap(a.block)-len(a.block) < len(b) {
		a.block = make([]byte, 0, max(64<<10, len(b)))
	}
	start := len(a.block)
	a.block = append(a.block, b...)
	return a.block[start:len(a.block):len(a.block)]
}
