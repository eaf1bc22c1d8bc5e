package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// SalvageReport says what Salvage copied and what it could not read.
type SalvageReport struct {
	// Copied counts the records written to the new file, by bucket.
	Copied map[string]int
	// Lost says what could not be read or was dropped, one line each:
	// a page that could not be read (its records are lost with it), or
	// a record that does not decode or refers to something lost.
	Lost []string
	// LostRecords counts the records dropped, by bucket (those on pages
	// that could not be read are not counted: nobody knows how many).
	LostRecords map[string]int
}

// maxLostLines bounds the lines of SalvageReport.Lost; the counts go on.
const maxLostLines = 100

// kv is one record read from a leaf page.
type kv struct{ k, v []byte }

// Salvage copies every record that can still be read from the database
// file at from into a new database at to (which must not exist): domains,
// probes with their answer sets and names, verdicts, listings, the listing
// log and publishes. It reads the file itself, page by page (see
// pages.go), so a page that cannot be read costs the records on it and
// nothing more; then it keeps each record that decodes and whose
// references (a probe's domain, vantage, names and answer sets) were
// recovered, and rebuilds the tables that only index others (domain ids,
// the answer set index). The new file passes Check.
//
// Salvage holds every readable record in memory while it works.
func Salvage(from, to string) (SalvageReport, error) {
	rep := SalvageReport{Copied: map[string]int{}, LostRecords: map[string]int{}}
	if _, err := os.Stat(to); err == nil {
		return rep, fmt.Errorf("salvaging %s: %s exists (salvage writes a new file)", from, to)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("salvaging %s: %w", from, err)
	}
	f, err := os.Open(from)
	if errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("%w at %s", ErrNoDatabase, from)
	}
	if err != nil {
		return rep, fmt.Errorf("salvaging %s: %w", from, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return rep, fmt.Errorf("salvaging %s: %w", from, err)
	}
	bf := &boltFile{f: f, size: fi.Size()}
	if err := bf.readMetas(from); err != nil {
		return rep, fmt.Errorf("salvaging: %w", err)
	}
	lost := func(format string, args ...any) {
		if len(rep.Lost) < maxLostLines {
			rep.Lost = append(rep.Lost, fmt.Sprintf(format, args...))
		} else if len(rep.Lost) == maxLostLines {
			rep.Lost = append(rep.Lost, "(more not listed)")
		}
	}

	// Read every bucket's records, leaf by leaf, from the tree of the
	// meta page bbolt would use, or of the other one (the transaction
	// before) if that finds more buckets.
	w := &pageWalk{bf: bf, seen: map[uint64]bool{}}
	roots, _ := bf.bucketRoots(w)
	if len(w.problems) > 0 || len(roots) < len(allBuckets) {
		for _, m := range bf.metas {
			if m.err != nil || m.txid == bf.meta.txid {
				continue
			}
			used := bf.meta
			bf.meta = m
			w2 := &pageWalk{bf: bf, seen: map[uint64]bool{}}
			if roots2, _ := bf.bucketRoots(w2); len(roots2) > len(roots) {
				lost("root bucket of transaction %d unreadable: read the one of transaction %d", used.txid, m.txid)
				roots, w = roots2, w2
			} else {
				bf.meta = used
			}
		}
	}
	for _, p := range w.problems {
		lost("root bucket: %v", p)
	}
	read := map[string][]kv{}
	seqs := map[string]uint64{}
	for _, name := range slices.Concat(allBuckets, optionalBuckets) {
		v, ok := roots[string(name)]
		if !ok {
			if !slices.ContainsFunc(optionalBuckets, func(b []byte) bool { return bytes.Equal(b, name) }) {
				lost("bucket %s: not found", name)
			}
			continue
		}
		seqs[string(name)] = binary.LittleEndian.Uint64(v[8:])
		var recs []kv
		w := &pageWalk{bf: bf, seen: map[uint64]bool{}, leaf: func(_ uint64, p page) error {
			for i := range p.count {
				k, v, flags, _, err := p.element(i)
				if err != nil {
					lost("bucket %s: %v", name, err)
					continue
				}
				if flags&bucketLeafFlag != 0 || len(k) == 0 {
					continue
				}
				recs = append(recs, kv{bytes.Clone(k), bytes.Clone(v)})
			}
			return nil
		}}
		w.walkBucket(string(name), v)
		for _, p := range w.problems {
			lost("bucket %s: %v: the records on it are lost", name, p)
		}
		slices.SortStableFunc(recs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		recs = slices.CompactFunc(recs, func(a, b kv) bool { return bytes.Equal(a.k, b.k) })
		read[string(name)] = recs
	}
	drop := func(bucket string, format string, args ...any) {
		rep.LostRecords[bucket]++
		lost("bucket %s: %s", bucket, fmt.Sprintf(format, args...))
	}

	// Names: the id table is the truth; the name → id table fills gaps.
	names := salvageNames{byID: map[uint64]string{}, byName: map[string]uint64{}}
	for _, r := range read[string(bucketNameID)] {
		if len(r.k) != 8 {
			drop(string(bucketNameID), "key %x: %d bytes", r.k, len(r.k))
			continue
		}
		names.add(binary.BigEndian.Uint64(r.k), string(r.v))
	}
	for _, r := range read[string(bucketNames)] {
		id, n := binary.Uvarint(r.v)
		if n <= 0 || id == 0 {
			drop(string(bucketNames), "name %q: bad id", r.k)
			continue
		}
		if _, ok := names.byName[string(r.k)]; !ok {
			if _, taken := names.byID[id]; !taken {
				names.add(id, string(r.k))
			}
		}
	}

	// Domains, and their id table rebuilt from them.
	domains := map[uint32]bool{}
	var domainRecs, domainIDs []kv
	for _, r := range read[string(bucketDomains)] {
		d, err := decodeDomain(string(r.k), r.v)
		if err == nil && domains[d.ID] {
			err = fmt.Errorf("id %d taken twice", d.ID)
		}
		if err != nil {
			drop(string(bucketDomains), "%v", err)
			continue
		}
		domains[d.ID] = true
		domainRecs = append(domainRecs, r)
		domainIDs = append(domainIDs, kv{u32key(d.ID), r.k})
	}
	slices.SortFunc(domainIDs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })

	// Answer sets that decode, and their index rebuilt.
	sets := map[uint64]bool{}
	var setRecs []kv
	index := map[uint64][]byte{}
	for _, r := range read[string(bucketSets)] {
		if len(r.k) != 8 {
			drop(string(bucketSets), "key %x: %d bytes", r.k, len(r.k))
			continue
		}
		id := binary.BigEndian.Uint64(r.k)
		if _, err := decodeSet(r.v, names); err != nil {
			drop(string(bucketSets), "answer set %d: %v", id, err)
			continue
		}
		sets[id] = true
		setRecs = append(setRecs, r)
		h := fnv.New64a()
		h.Write(r.v)
		index[h.Sum64()] = binary.BigEndian.AppendUint64(index[h.Sum64()], id)
	}
	var indexRecs []kv
	for h, ids := range index {
		indexRecs = append(indexRecs, kv{u64key(h), ids})
	}
	slices.SortFunc(indexRecs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })

	// Probes whose every reference was recovered.
	var probeRecs []kv
	for _, r := range read[string(bucketProbes)] {
		if err := checkProbe(r, domains, sets, names); err != nil {
			drop(string(bucketProbes), "probe %x: %v", r.k, err)
			continue
		}
		probeRecs = append(probeRecs, r)
	}

	var dueRecs []kv
	for _, r := range read[string(bucketDue)] {
		if len(r.k) != 4 || len(r.v) != dueValue {
			drop(string(bucketDue), "next-due chunk %x: %d bytes", r.k, len(r.v))
			continue
		}
		dueRecs = append(dueRecs, r)
	}
	validJSON := func(bucket []byte) []kv {
		var out []kv
		for _, r := range read[string(bucket)] {
			if len(r.v) > 0 && !json.Valid(r.v) {
				drop(string(bucket), "%q: not JSON", r.k)
				continue
			}
			out = append(out, r)
		}
		return out
	}
	verdictRecs := validJSON(bucketVerdicts)
	verdicts := map[string]bool{}
	for _, r := range verdictRecs {
		verdicts[string(r.k)] = true
	}
	var listedRecs []kv
	for _, r := range read[string(bucketListed)] {
		if !verdicts[string(r.k)] {
			drop(string(bucketListed), "%s: its verdict is lost", r.k)
			continue
		}
		listedRecs = append(listedRecs, r)
	}
	var metaRecs []kv
	for _, r := range read[string(bucketMeta)] {
		if string(r.k) == string(metaSerial) && len(r.v) == 4 {
			metaRecs = append(metaRecs, r)
		}
	}

	var nameRecs, nameIDRecs []kv
	for id, s := range names.byID {
		nameIDRecs = append(nameIDRecs, kv{u64key(id), []byte(s)})
		nameRecs = append(nameRecs, kv{[]byte(s), binary.AppendUvarint(nil, id)})
	}
	slices.SortFunc(nameRecs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	slices.SortFunc(nameIDRecs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })

	out := map[string][]kv{
		string(bucketMeta): metaRecs, string(bucketDomains): domainRecs, string(bucketDomainID): domainIDs,
		string(bucketNames): nameRecs, string(bucketNameID): nameIDRecs, string(bucketSets): setRecs,
		string(bucketSetIndex): indexRecs, string(bucketProbes): probeRecs, string(bucketVerdicts): verdictRecs,
		string(bucketListed): listedRecs, string(bucketListingLog): read[string(bucketListingLog)],
		string(bucketDelisted): validJSON(bucketDelisted), string(bucketPublished): read[string(bucketPublished)],
		string(bucketPublishes): validJSON(bucketPublishes), string(bucketDue): dueRecs,
		string(bucketNetworks): validJSON(bucketNetworks), string(bucketNetworkOf): read[string(bucketNetworkOf)],
	}
	// Sequences: what the file said, and at least the highest id kept,
	// so that new ids never collide with salvaged ones.
	seqs[string(bucketNames)] = max(seqs[string(bucketNames)], maxKey(nameIDRecs))
	seqs[string(bucketDomainID)] = max(seqs[string(bucketDomainID)], maxKey(domainIDs))
	seqs[string(bucketSets)] = max(seqs[string(bucketSets)], maxKey(setRecs))

	total := 0
	for _, recs := range out {
		total += len(recs)
	}
	if total == 0 {
		return rep, fmt.Errorf("salvaging %s: nothing could be read (%s); nothing written to %s: restore a backup",
			from, strings.Join(rep.Lost[:min(len(rep.Lost), 3)], "; "), to)
	}

	dst, err := Open(to)
	if err != nil {
		return rep, fmt.Errorf("salvaging %s: %w", from, err)
	}
	for _, name := range slices.Concat(allBuckets, optionalBuckets) {
		recs := out[string(name)]
		for len(recs) > 0 || seqs[string(name)] > 0 {
			n := min(len(recs), 10000)
			err := dst.db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists(name) // an optional bucket is made by its first record
				if err != nil {
					return err
				}
				if s := seqs[string(name)]; s > b.Sequence() {
					if err := b.SetSequence(s); err != nil {
						return err
					}
				}
				for _, r := range recs[:n] {
					if err := b.Put(r.k, r.v); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				dst.Close()
				return rep, fmt.Errorf("salvaging %s into %s: %w", from, to, err)
			}
			rep.Copied[string(name)] += n
			recs = recs[n:]
			seqs[string(name)] = 0
		}
	}
	if err := dst.Close(); err != nil {
		return rep, fmt.Errorf("salvaging %s into %s: %w", from, to, err)
	}
	if err := CheckFile(to); err != nil {
		return rep, fmt.Errorf("salvaging %s: the new file %s fails its check: %w", from, to, err)
	}
	return rep, nil
}

// checkProbe says why a probe record cannot be kept, or nil.
func checkProbe(r kv, domains map[uint32]bool, sets map[uint64]bool, names salvageNames) error {
	did, _, vid, ok := parseProbeKey(r.k)
	if !ok {
		return errors.New("bad key")
	}
	if !domains[did] {
		return fmt.Errorf("domain id %d lost", did)
	}
	if _, ok := names.byID[uint64(vid)]; !ok {
		return fmt.Errorf("vantage id %d lost", vid)
	}
	stored, err := decodeProbe(r.v)
	if err != nil {
		return err
	}
	for _, o := range stored {
		if _, ok := names.byID[o.nameID]; o.nameID != 0 && !ok {
			return fmt.Errorf("name id %d lost", o.nameID)
		}
		if o.setID != 0 && !sets[o.setID] {
			return fmt.Errorf("answer set %d lost", o.setID)
		}
	}
	return nil
}

// maxKey is the highest big-endian key of sorted records (4 or 8 bytes).
func maxKey(recs []kv) uint64 {
	if len(recs) == 0 {
		return 0
	}
	k := recs[len(recs)-1].k
	switch len(k) {
	case 4:
		return uint64(binary.BigEndian.Uint32(k))
	case 8:
		return binary.BigEndian.Uint64(k)
	}
	return 0
}

// salvageNames is the interner of salvaged names.
type salvageNames struct {
	byID   map[uint64]string
	byName map[string]uint64
}

func (m salvageNames) add(id uint64, s string) { m.byID[id], m.byName[s] = s, id }

func (m salvageNames) id(s string) (uint64, error) {
	if id, ok := m.byName[s]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("name %q not interned", s)
}

func (m salvageNames) str(id uint64) (string, error) {
	if s, ok := m.byID[id]; ok {
		return s, nil
	}
	return "", fmt.Errorf("%w: unknown name id %d", errCorrupt, id)
}
