package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/storage"
)

// importBatch is how many probes an import reads, checks against the
// database and commits at a time: one write transaction each.
const importBatch = 10000

func cmdImport(ctx context.Context, args []string, std *stdio) error {
	s := newFlags("import", "import --format "+strings.Join(importer.Formats, "|")+" [--vantage NAME] [--source NAME] [--tz ZONE] FILE... (- reads stdin)", std)
	format := s.fs.String("format", "", "input format: "+strings.Join(importer.Formats, ", "))
	vantage := s.fs.String("vantage", "", "vantage `name` for every lookup (default: the resolver or sensor the input names)")
	source := s.fs.String("source", "", "source `tag` of the domains added (default import:FORMAT); cof: also names the sensor of records without sensor_id")
	tz := s.fs.String("tz", "UTC", "dig: time `zone` of times written without one or with an ambiguous abbreviation such as CST (IANA name)")
	cfg, err := s.parse(args)
	if err != nil {
		return err
	}
	if !slices.Contains(importer.Formats, *format) {
		return fmt.Errorf("%w: import needs --format, one of %s", errUsage, strings.Join(importer.Formats, ", "))
	}
	files := s.fs.Args()
	if len(files) == 0 {
		return fmt.Errorf("%w: import needs at least one FILE (- for stdin)", errUsage)
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("%w: --tz %q: %v", errUsage, *tz, err)
	}
	store, err := createStore(cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	tag := *source
	if tag == "" {
		tag = "import:" + *format
	}
	imp := newImport(store, tag, time.Now, std.err)
	opts := importer.Options{Vantage: *vantage, Source: *source, Location: loc}
	var readErr error
	for _, file := range files {
		if readErr = imp.file(ctx, file, *format, opts, std.in); readErr != nil {
			break
		}
	}
	// What was read before an interruption or a bad file is kept.
	if err := imp.close(); err != nil {
		return err
	}
	imp.counts.print(std.out)
	return readErr
}

// importCounts are the figures an import ends with. Every probe read is
// new (the first with its key: domain, start and vantage), merged (it
// added observations to the probe of its key, stored earlier or read
// before it, as when two lookups of one second through one resolver are
// logged apart), or already stored (it added nothing).
type importCounts struct {
	lines, probes, observations, errors, skipped int
	new, duplicate, merged                       int
	domains                                      int // domains added to the seed list
}

func (c importCounts) print(w io.Writer) {
	fmt.Fprintf(w, "import: %d lines, %d probes, %d observations: %d new, %d already stored, %d merged into stored probes; %d errors, %d skipped; %d domains added\n",
		c.lines, c.probes, c.observations, c.new, c.duplicate, c.merged, c.errors, c.skipped, c.domains)
}

// importRun stores the probes of one import: in batches, each grouped by
// probe key, compared with what the database holds under that key, and
// written through storage's Writer in one transaction.
type importRun struct {
	store  *storage.Store
	w      *storage.Writer
	source string
	now    func() time.Time
	stderr io.Writer

	batch        [][]obs.Probe  // the probes of each key, in input order
	index        map[string]int // probe key → position in batch
	size         int            // probes in batch
	read         int            // probes read so far, for progress
	counts       importCounts
	lastProgress time.Time
}

func newImport(store *storage.Store, source string, now func() time.Time, stderr io.Writer) *importRun {
	return &importRun{
		store: store, source: source, now: now, stderr: stderr,
		w:            store.NewWriter(storage.WriterOptions{MaxBatch: importBatch, MaxDelay: time.Hour}),
		index:        map[string]int{},
		lastProgress: now(),
	}
}

// file imports one input.
func (imp *importRun) file(ctx context.Context, file, format string, opts importer.Options, stdin io.Reader) error {
	f, err := importer.Open(file, stdin)
	if err != nil {
		return fmt.Errorf("importing %s: %w", file, err)
	}
	defer f.Close()
	stats, err := importer.Read(f, file, format, opts, func(p obs.Probe) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return imp.add(p)
	}, func(e *importer.LineError) { fmt.Fprintln(imp.stderr, e.Error()) })
	imp.counts.lines += stats.Lines
	imp.counts.probes += stats.Probes
	imp.counts.observations += stats.Observations
	imp.counts.errors += stats.Errors
	imp.counts.skipped += stats.Skipped
	if err == nil && stats.Probes == 0 && stats.Errors > 0 {
		// Not one line read, most likely the wrong format: a script must
		// not take the import for done.
		return fmt.Errorf("importing %s: no line read as %s (%d rejected)", file, format, stats.Errors)
	}
	return err
}

// add puts a probe in the batch, beside those of the same key.
func (imp *importRun) add(p obs.Probe) error {
	imp.read++
	canonical(&p)
	key := probeKey(p)
	if i, ok := imp.index[key]; ok {
		imp.batch[i] = append(imp.batch[i], p)
	} else {
		imp.index[key] = len(imp.batch)
		imp.batch = append(imp.batch, []obs.Probe{p})
	}
	if imp.size++; imp.size >= importBatch {
		return imp.commit()
	}
	return nil
}

// commit adds the batch's new domains and, key by key, merges the probes
// read into the one stored (if any), in input order: a probe that starts
// a key is new, one that adds observations to it is merged, one that adds
// none is already stored. What changed is written in one transaction.
func (imp *importRun) commit() error {
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
		stored, ok, err := storedProbe(imp.store, probes[0])
		if err != nil {
			return err
		}
		if !ok && len(probes) == 1 {
			// The common case: nothing to merge.
			imp.counts.new++
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
				imp.counts.new++
				changed = true
			case acc.add(p):
				imp.counts.merged++
				changed = true
			default:
				imp.counts.duplicate++
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
	if now := imp.now(); now.Sub(imp.lastProgress) >= 10*time.Second {
		imp.lastProgress = now
		fmt.Fprintf(imp.stderr, "import: %d probes read, %d new, %d already stored, %d merged\n",
			imp.read, imp.counts.new, imp.counts.duplicate, imp.counts.merged)
	}
	return nil
}

// addDomains adds the batch's domains that the database does not hold.
// Domains it holds, also removed ones, are left as they are.
func (imp *importRun) addDomains() error {
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
	imp.counts.domains += res.Added
	return err
}

// close commits the last batch and stops the writer.
func (imp *importRun) close() error {
	return errors.Join(imp.commit(), imp.w.Close())
}

// storedProbe returns the probe stored under p's key, if any.
func storedProbe(store *storage.Store, p obs.Probe) (obs.Probe, bool, error) {
	var found obs.Probe
	ok := false
	err := store.History(p.Domain, p.Start, p.Start.Add(time.Nanosecond), func(s obs.Probe) error {
		if s.Vantage == p.Vantage {
			found, ok = s, true
		}
		return nil
	})
	return found, ok, err
}

// canonical puts a probe in the form storage gives it back, so that an
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

// probeKey is what storage keys a probe by.
func probeKey(p obs.Probe) string {
	return p.Domain + "\x00" + strconv.FormatInt(p.Start.UnixNano(), 10) + "\x00" + p.Vantage
}

// obsID identifies an observation within a probe: the same question at the
// same moment with the same outcome. TTLs do not count (storage keeps one
// per RRset), nor does the RTT.
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
