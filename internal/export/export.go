// Package export writes the verdicts of a store as one of the export
// formats of package results: for the export command and the daemon's
// publish job alike.
package export

import (
	"io"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/feed"
	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/storage"
)

// Source yields verdicts in name order to fn: with listedOnly, the short
// records of the listed domains (the flux verdict each listing rests on),
// which the block lists and the address formats are written from;
// without, full verdicts, which jsonl and csv write. classify.Each is the
// Source of a store (StoreSource); a merged feed of several stores is
// another.
type Source func(listedOnly bool, fn func(classify.Verdict) error) error

// StoreSource is the Source of the verdicts stored in store.
func StoreSource(store *storage.Store) Source {
	return func(listedOnly bool, fn func(classify.Verdict) error) error {
		return classify.Each(store, listedOnly, fn)
	}
}

// Write writes the verdicts stored in store in format to out
// (atomically; "-" is stdout; misp and suricata into the directory out)
// with opts, whose Zone names the RPZ zone, and returns how many listed
// domains it read. Block lists read only the short records of listed
// domains; the address formats, jsonl and csv read full verdicts. read,
// if set, is called for every verdict read. The format must be one of
// results.Formats or results.AddressFormats.
func Write(store *storage.Store, format, out string, opts results.Options, stdout io.Writer, read func()) (int, error) {
	return WriteFrom(store, format, out, opts, stdout, read, StoreSource(store))
}

// WriteFrom is Write with the verdicts read from source rather than from
// store: the publisher of sharded coordinators writes the shards' merged
// lists so. The RPZ and STIX serial still comes from store (and an RPZ
// file's serial raises it), so the one file out has one serial that only
// grows, whatever the source.
func WriteFrom(store *storage.Store, format, out string, opts results.Options, stdout io.Writer, read func(), source Source) (int, error) {
	opts.Now = time.Now()
	if format == "rpz" && out != "-" {
		// The database's serial only grows, but a database restored from
		// a backup, or moved, does not know what its file told the
		// secondaries: keep above the serial of the file it replaces. A
		// file that does not read is replaced whatever it said.
		if serial, err := feed.ReadZoneSerial(out, opts.Zone); err == nil {
			if err := store.RaiseSerial(serial); err != nil {
				return 0, err
			}
		}
	}
	if format == "rpz" || format == "stix" {
		serial, err := store.NextSerial(time.Now())
		if err != nil {
			return 0, err
		}
		opts.Serial = serial
	}
	listedOnly := results.IsBlockList(format)
	listed := 0
	each := func(yield func(classify.Verdict) error) error {
		listed = 0
		return source(listedOnly, func(v classify.Verdict) error {
			if v.Listed() {
				listed++
			}
			if read != nil {
				read()
			}
			return yield(v)
		})
	}
	switch {
	case results.IsDir(format):
		return listed, results.WriteDir(out, format, each, opts)
	case out == "-":
		return listed, results.WriteEach(stdout, format, each, opts)
	}
	return listed, results.WriteFileAtomic(out, func(w io.Writer) error { return results.WriteEach(w, format, each, opts) })
}
