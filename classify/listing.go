package classify

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/fluxwatch/fluxwatch/storage"
)

// DefaultExpiry is how long a domain stays listed after the last verdict
// that found it fluxing.
const DefaultExpiry = 7 * 24 * time.Hour

// Listing is a domain's place on the block list. A flux verdict lists a
// domain (or confirms its listing). A listing follows the latest verdict:
// a benign verdict whose window still holds the evidence the listing rests
// on (the probes of the flux verdict that last confirmed it) clears it at
// once, since it judged that same evidence, and found it benign (with
// better IP tables, say, or more of it). Other verdicts that find no flux
// (the flux stopped being observed: the window moved past it, or the name
// stopped answering) leave it until ExpiresAt. The allowlist and delisting
// by hand take it off at once.
type Listing struct {
	FirstListed   time.Time `json:"first_listed"`
	LastConfirmed time.Time `json:"last_confirmed"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// Listing events, as the listing log records them.
const (
	EventListed      = "listed"      // a flux verdict put the domain on the list
	EventChanged     = "changed"     // a listed domain's flux verdict changed kind
	EventExpired     = "expired"     // no flux verdict since Expiry: off the list
	EventCleared     = "cleared"     // a benign verdict on the listing's evidence took it off
	EventAllowlisted = "allowlisted" // the allowlist took it off
	EventDelisted    = "delisted"    // an operator took it off
	EventRelisted    = "relisted"    // an operator let the classifier list it again
)

// Keys of the counts Run returns besides the verdict names: the listing
// changes of the run, and how many domains are listed after it.
const (
	CountListed  = "listed"           // on the list after the run (a listing that has not expired included)
	CountAdded   = "listings_added"   // newly listed
	CountExpired = "listings_expired" // off the list: expired
	CountCleared = "listings_cleared" // off the list: a benign verdict on the same evidence
	CountRemoved = "listings_removed" // off the list: allowlisted or delisted by hand
)

// ListingEvent is one change of a domain's listing.
type ListingEvent struct {
	Time       time.Time `json:"time"`
	Event      string    `json:"event"`
	Verdict    string    `json:"verdict,omitempty"`
	Confidence float64   `json:"confidence,omitempty"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	Reason     string    `json:"reason,omitempty"`
}

// Listed reports whether the verdict's domain is on the block list. It is
// the one answer to that question: the listed index, which the block lists
// are written from, holds exactly the domains whose Listing Run set, and
// every reader of stored verdicts (Each, Load) takes Listing from it. A
// flux verdict whose listing was delisted by hand, allowlisted or expired
// is not listed; a later non-flux verdict whose listing still runs is.
func (v Verdict) Listed() bool { return v.Listing != nil }

// listingRecords turns a batch of verdicts into what storage keeps, moving
// each domain's listing on from its previous listed record. It counts the
// listing changes in counts.
func (c *Classifier) listingRecords(store *storage.Store, batch []Verdict, window time.Duration, now time.Time, counts map[string]int) ([]storage.VerdictRecord, error) {
	names := make([]string, len(batch))
	for i, v := range batch {
		names[i] = v.Domain
	}
	listed, delisted, err := store.ListingState(names)
	if err != nil {
		return nil, err
	}
	expiry := c.Expiry
	if expiry <= 0 {
		expiry = DefaultExpiry
	}
	records := make([]storage.VerdictRecord, 0, len(batch))
	for i := range batch {
		v := &batch[i]
		var prev *Verdict
		if b, ok := listed[v.Domain]; ok {
			prev = new(Verdict)
			if err := json.Unmarshal(b, prev); err != nil {
				return nil, fmt.Errorf("listed record of %s: %w", v.Domain, err)
			}
		}
		allowed, _ := c.Allow.Match(v.Domain)
		// Flux judged by prefixes alone is kept as a verdict, not listed:
		// a listing it had runs on, or expires, as when flux stops.
		listable := IsFlux(v.Verdict) && (v.Features.ASNTable || c.ListWithoutIPTables)
		if IsFlux(v.Verdict) && !listable {
			v.Evidence += "; not listed: judged without an IP-to-ASN table (run fluxwatch ipdb update, or set list_without_ip_tables)"
		}
		var event *ListingEvent
		var short *Verdict // the listed record; nil: not listed
		switch {
		case delisted[v.Domain] || allowed:
			if prev != nil {
				event = &ListingEvent{Event: EventDelisted}
				if allowed {
					event.Event = EventAllowlisted
				}
				counts[CountRemoved]++
			}
		case listable && evidence(v, now).Add(expiry).After(now):
			// The listing lasts from the evidence: the last probe judged,
			// which for imported measurements may lie long before now.
			seen := evidence(v, now)
			v.Listing = &Listing{FirstListed: now.UTC(), LastConfirmed: seen.UTC(), ExpiresAt: seen.Add(expiry).UTC()}
			switch {
			case prev == nil:
				event = &ListingEvent{Event: EventListed}
				counts[CountAdded]++
			case prev.Verdict != v.Verdict:
				event = &ListingEvent{Event: EventChanged}
			}
			if prev != nil && prev.Listing != nil {
				v.Listing.FirstListed = prev.Listing.FirstListed
			}
			// The listed record keeps the features: the evidence the
			// listing rests on (blocklist list --json, clearing).
			s := *v
			short = &s
		case prev != nil && v.Verdict == Benign && holdsEvidence(v, prev, window):
			event = &ListingEvent{Event: EventCleared, Reason: "benign on the evidence it was listed on: " + v.Evidence}
			counts[CountCleared]++
		case prev != nil && prev.Listing != nil && now.Before(prev.Listing.ExpiresAt):
			// No flux seen now, but the listing has not run out: the listed
			// record keeps the verdict that listed it.
			v.Listing = prev.Listing
			short = prev
		case prev != nil:
			event = &ListingEvent{Event: EventExpired}
			counts[CountExpired]++
		}
		r := storage.VerdictRecord{Domain: v.Domain}
		if r.Full, err = json.Marshal(v); err != nil {
			return nil, err
		}
		if short != nil {
			counts[CountListed]++
			if r.Listed, err = json.Marshal(short); err != nil {
				return nil, err
			}
		}
		if event != nil {
			event.Time, event.Verdict, event.Confidence = now.UTC(), v.Verdict, v.Confidence
			if v.Listing != nil {
				event.ExpiresAt = v.Listing.ExpiresAt
			}
			r.EventTime = now
			if r.Event, err = json.Marshal(event); err != nil {
				return nil, err
			}
		}
		records = append(records, r)
	}
	return records, nil
}

// holdsEvidence reports whether the window v was judged on (window long,
// ending at v's last probe) holds all the probes the listing of prev rests
// on: those of the flux verdict that last confirmed it, from its first to
// its last probe. A listed record written before the features were kept
// in it has no first probe: its last confirmation stands for all.
func holdsEvidence(v, prev *Verdict, window time.Duration) bool {
	if prev.Listing == nil || v.Features.LastSeen.IsZero() {
		return false
	}
	to := prev.Listing.LastConfirmed
	from := prev.Features.FirstSeen
	if from.IsZero() || from.After(to) {
		from = to
	}
	start := v.Features.LastSeen.Add(-window)
	return !v.Features.LastSeen.Before(to) && !from.Before(start)
}

// evidence is when the verdict's evidence was last seen: its last probe, or
// now when it has none.
func evidence(v *Verdict, now time.Time) time.Time {
	if t := v.Features.LastSeen; !t.IsZero() && t.Before(now) {
		return t
	}
	return now
}

// Delist takes domain off the block list until Relist and logs why.
func Delist(store *storage.Store, domain, reason string, now time.Time) error {
	ev, err := json.Marshal(ListingEvent{Time: now.UTC(), Event: EventDelisted, Reason: reason})
	if err != nil {
		return err
	}
	return store.Delist(domain, storage.Delisting{Time: now.UTC(), Reason: reason}, ev)
}

// Relist lets the classifier list domain again; it reports whether the
// domain had been delisted.
func Relist(store *storage.Store, domain, reason string, now time.Time) (bool, error) {
	ev, err := json.Marshal(ListingEvent{Time: now.UTC(), Event: EventRelisted, Reason: reason})
	if err != nil {
		return false, err
	}
	return store.Relist(domain, now, ev)
}

// History calls fn with every change of domain's listing, oldest first.
func History(store *storage.Store, domain string, fn func(ListingEvent) error) error {
	return store.ListingLog(domain, func(at time.Time, b []byte) error {
		var e ListingEvent
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("listing log of %s at %s: %w", domain, at, err)
		}
		return fn(e)
	})
}
