package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
)

// ImportBatch is how many probes an Import reads, checks against the
// database and commits at a time: one write transaction each.
const ImportBatch = 10000

// ImportCounts are the figures of an Import. Every probe added is new (the
// first with its key: domain, start and vantage), merged (it added
// observations to the probe of its key, stored earlier or added before
// it, as when two lookups of one second through one resolver are logged
// apart), or already stored (it added nothing).
type ImportCounts struct {
	Read, New, Duplicate, Merged int
	Domains                      int // domains added to the seed list
}

// Import stores probes measured elsewhere (another tool's logs, another
// fluxwatch's export) so that importing the same data twice, or data that
// overlaps what is stored, stores each observation once. Probes are taken
// in batches; each batch is grouped by probe key, merged with what the
// database holds under that key, and written in one transaction. The
// domains of the probes are added to the seed list if missing. An Import
// is not safe for concurrent use.
type Import struct {
	store  *Store
	w      *Writer
	source string
	now    func() time.Time
	// progress, if set, is called after each batch committed.
	progress func(ImportCounts)

	batch  [][]obs.Probe  // the probes of each key, in input order
	index  map[string]int // probe key → position in batch
	size   int            // probes in batch
	counts ImportCounts
}

// NewImport starts an import into s: source tags the domains it adds,
// progress (optional) hears the counts after every batch.
func (s *Store) NewImport(source string, now func() time.Time, progress func(ImportCounts)) *Import {
	return &Import{
		store: s, source: source, now: now, progress: progress,
		w:     s.NewWriter(WriterOptions{MaxBatch: ImportBatch, MaxDelay: time.Hour}),
		index: map[string]int{},
	}
}

// Counts returns the figures so far.
func (imp *Import) Counts() ImportCounts { return imp.counts }

// Add puts a probe in the batch, beside those of the same key, and
// commits the batch when it is full.
func (imp *Import) Add(p obs.Probe) error {
	imp.counts.Read++
	canonical(&p)
	key := importKey(p)
	if i, ok := imp.index[key]; ok {
		imp.batch[i] = append(imp.batch[i], p)
	} else {
		imp.index[key] = len(imp.batch)
		imp.batch = append(imp.batch, []obs.Probe{p})
	}
	if imp.size++; imp.size >= ImportBatch {
		return imp.commit()
	}
	return nil
}

// Close commits the last batch and stops the writer. What was added
// before an error or an interruption is kept.
func (imp *Import) Close() error {
	return errors.Join(imp.commit(), imp.w.Close())
}

// commit adds the batch's new domains and, key by key, merges the probes
// added into the one stored (if any), in input order: a probe that starts
// a key is new, one that adds observations to it is merged, one that adds
// none is already stored. What changed is written in one transaction.
func (imp *Import) commit() error {
	defer func() {
		clear(imp.batch)
		imp.batch = imp.batch[:0]
		clear(imp.index)
		imp.size = 0
	}()
	if len(imp.batch) == 0 {
		return nil
	}
	if err := imp.addDomains(); err != nil {
		return err
	}
	ctx := context.Background() // the batch is written whole, interrupted or not
	for _, probes := range imp.batch {
		stored, ok, err := imp.store.storedProbe(probes[0])
		if err != nil {
			return err
		}
		if !ok && len(probes) == 1 {
			// The common case: nothing to merge.
			imp.counts.New++
			if err := imp.w.Write(ctx, probes[0]); err != nil {
				return err
			}
			continue
		}
		var acc *merged
		if ok {
			acc = newMerged(stored)
		}
		changed := false
		for _, p := range probes {
			switch {
			case acc == nil:
				acc = newMerged(p)
				imp.counts.New++
				changed = true
			case acc.add(p):
				imp.counts.Merged++
				changed = true
			default:
				imp.counts.Duplicate++
			}
		}
		if !changed {
			continue
		}
		if err := imp.w.Write(ctx, acc.p); err != nil {
			return err
		}
	}
	if err := imp.w.Flush(); err != nil {
		return err
	}
	if imp.progress != nil {
		imp.progress(imp.counts)
	}
	return nil
}

// addDomains adds the batch's domains that the database does not hold.
// Domains it holds, also removed ones, are left as they are.
func (imp *Import) addDomains() error {
	var names, missing []string
	for _, probes := range imp.batch {
		names = append(names, probes[0].Domain)
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		_, ok, err := imp.store.Domain(name)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	res, err := imp.store.AddDomains(missing, imp.source, imp.now())
	imp.counts.Domains += res.Added
	return err
}

// storedProbe returns the probe stored under p's key, if any.
func (s *Store) storedProbe(p obs.Probe) (obs.Probe, bool, error) {
	var found obs.Probe
	ok := false
	err := s.History(p.Domain, p.Start, p.Start.Add(time.Nanosecond), func(s obs.Probe) error {
		if s.Vantage == p.Vantage {
			found, ok = s, true
		}
		return nil
	})
	return found, ok, err
}

// canonical puts a probe in the form the store gives it back, so that an
// import compares equal with what an earlier one stored: observation times
// whole microseconds after the start and not before it, RTTs in whole
// microseconds, rcodes in a byte, the probe's vantage.
func canonical(p *obs.Probe) {
	for i := range p.Observations {
		o := &p.Observations[i]
		o.Time = p.Start.Add(max(o.Time.Sub(p.Start), 0).Truncate(time.Microsecond))
		o.RTT = max(o.RTT, 0).Truncate(time.Microsecond)
		o.Rcode = int(uint8(o.Rcode))
		o.Vantage = p.Vantage
	}
}

// importKey is the key the store files p under, as a map key.
func importKey(p obs.Probe) string {
	return p.Domain + "\x00" + strconv.FormatInt(p.Start.UnixNano(), 10) + "\x00" + p.Vantage
}

// obsID identifies an observation within a probe: the same question at the
// same moment with the same outcome. TTLs do not count (the store keeps
// one per RRset), nor does the RTT.
func obsID(start time.Time, o obs.Observation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%d|%d|%d|%d|%d", o.Name, o.QType, o.Time.Sub(start).Microseconds(), o.Rcode, o.Err, o.Flags)
	for _, r := range o.Answer {
		fmt.Fprintf(&b, "|%s %d %s", r.Name, r.Type, r.Data)
	}
	return b.String()
}

// merged is a probe being assembled from the probes of one key, with the
// identities of the observations it holds.
type merged struct {
	p   obs.Probe
	ids map[string]bool
}

func newMerged(p obs.Probe) *merged {
	m := &merged{p: p, ids: make(map[string]bool, len(p.Observations))}
	m.p.Observations = slices.Clone(p.Observations)
	for _, o := range p.Observations {
		m.ids[obsID(p.Start, o)] = true
	}
	return m
}

// add adds the observations of p that m lacks, and reports whether there
// were any.
func (m *merged) add(p obs.Probe) bool {
	added := false
	for _, o := range p.Observations {
		id := obsID(m.p.Start, o)
		if m.ids[id] {
			continue
		}
		m.ids[id] = true
		m.p.Observations = append(m.p.Observations, o)
		added = true
	}
	return added
}
