package results

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fluxwatch/fluxwatch/classify"
)

// A MISP feed is a directory a MISP instance (or any reader of the MISP
// core format) pulls over HTTP or from disk:
//
//	manifest.json  {"<event uuid>": {the event's Orgc, Tag, info, date,
//	               analysis, threat_level_id and timestamp}}
//	<uuid>.json    {"Event": {...}}: one event, one attribute per listed
//	               domain (type domain, category Network activity, to_ids)
//	hashes.csv     <md5 of the attribute's value>,<event uuid> per attribute
//
// fluxwatch writes one event of every listed domain, its UUID derived from
// Options.Org, so every export is a new version of the same event (its
// timestamp tells MISP to pull it again); each attribute's UUID is derived
// from the organisation and the domain. Each flux network (Verdict.Network)
// gets an event of its own besides, holding its listed domains, its UUID
// derived from the organisation and the network's id. Numbers and timestamps are JSON strings, as the MISP
// core format (draft-dulaunoy-misp-core-format) represents them.

// mispInfo is the event's info: what it is about.
const mispInfo = "fluxwatch fast-flux domains"

type mispOrg struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

type mispTag struct {
	Name   string `json:"name"`
	Colour string `json:"colour"`
}

// mispEventMeta is the event without its attributes, as the manifest
// holds it and as the event file ends.
type mispEventMeta struct {
	UUID             string    `json:"uuid,omitempty"`
	Info             string    `json:"info"`
	Date             string    `json:"date"`
	Timestamp        string    `json:"timestamp"`
	PublishTimestamp string    `json:"publish_timestamp,omitempty"`
	Published        *bool     `json:"published,omitempty"`
	Analysis         string    `json:"analysis"`
	ThreatLevelID    string    `json:"threat_level_id"`
	Orgc             mispOrg   `json:"Orgc"`
	Tag              []mispTag `json:"Tag"`
}

type mispAttribute struct {
	UUID               string `json:"uuid"`
	Type               string `json:"type"`
	Category           string `json:"category"`
	ToIDs              bool   `json:"to_ids"`
	Value              string `json:"value"`
	Comment            string `json:"comment"`
	Timestamp          string `json:"timestamp"`
	Deleted            bool   `json:"deleted"`
	DisableCorrelation bool   `json:"disable_correlation"`
}

// checkOrg accepts an organisation name of printable characters, 1 to 128
// octets.
func checkOrg(org string) error {
	ok := org != "" && len(org) <= 128 && utf8.ValidString(org)
	for _, r := range org {
		ok = ok && unicode.IsPrint(r)
	}
	if !ok {
		return fmt.Errorf("MISP organisation: %w: %q", ErrBadName, org)
	}
	return nil
}

// newMISPSink writes a MISP feed into dir: the event file and hashes.csv
// as the domains come (the attributes first, then the event's own fields,
// whose timestamp is the latest of its attributes' when Options.Now is
// not set), and manifest.json at the end.
func newMISPSink(dir string, opts Options) (sink, func(), error) {
	org := cmp.Or(opts.Org, "fluxwatch")
	if err := checkOrg(org); err != nil {
		return sink{}, nil, err
	}
	eventID := uuid5(stixNamespace, "misp/event/"+org)
	event, err := createFile(dir, eventID+".json")
	if err != nil {
		return sink{}, nil, err
	}
	hashes, err := createFile(dir, "hashes.csv")
	if err != nil {
		event.abort()
		return sink{}, nil, err
	}
	cleanup := func() { event.abort(); hashes.abort() } // after commit, a harmless second close
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	latest, n := opts.Now, 0
	// The attributes of each network's event, and its latest timestamp.
	type networkEvent struct {
		attrs  []mispAttribute
		latest time.Time
	}
	nets := map[string]*networkEvent{}
	if _, err := event.WriteString(`{"Event":{"Attribute":[`); err != nil {
		return sink{}, cleanup, err
	}
	add := func(v classify.Verdict) error {
		at := cmp.Or(v.ClassifiedAt, opts.Now)
		if opts.Now.IsZero() && at.After(latest) {
			latest = at
		}
		if v.Network != "" {
			ne := nets[v.Network]
			if ne == nil {
				ne = &networkEvent{latest: opts.Now}
				nets[v.Network] = ne
			}
			if opts.Now.IsZero() && at.After(ne.latest) {
				ne.latest = at
			}
			ne.attrs = append(ne.attrs, mispAttribute{
				UUID:      uuid5(stixNamespace, "misp/attribute/"+org+"/network/"+v.Network+"/"+v.Domain),
				Type:      "domain",
				Category:  "Network activity",
				ToIDs:     true,
				Value:     v.Domain,
				Comment:   fmt.Sprintf("%s, confidence %.2f, flux network %s", v.Verdict, v.Confidence, v.Network),
				Timestamp: mispTime(at),
			})
		}
		buf.Reset()
		if err := enc.Encode(mispAttribute{
			UUID:      uuid5(stixNamespace, "misp/attribute/"+org+"/"+v.Domain),
			Type:      "domain",
			Category:  "Network activity",
			ToIDs:     true,
			Value:     v.Domain,
			Comment:   fmt.Sprintf("%s, confidence %.2f", v.Verdict, v.Confidence),
			Timestamp: mispTime(at),
		}); err != nil {
			return fmt.Errorf("MISP attribute for %s: %w", v.Domain, err)
		}
		sep := ",\n"
		if n == 0 {
			sep = "\n"
		}
		n++
		event.WriteString(sep)
		event.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		sum := md5.Sum([]byte(v.Domain))
		_, err := hashes.WriteString(hex.EncodeToString(sum[:]) + "," + eventID + "\n")
		return err
	}
	end := func() error {
		published := true
		eventMeta := func(info string, at time.Time) mispEventMeta {
			return mispEventMeta{
				Info:          info,
				Date:          at.UTC().Format(time.DateOnly),
				Timestamp:     mispTime(at),
				Analysis:      "1", // ongoing: the list is kept up to date
				ThreatLevelID: "3", // low: mass malware
				Orgc:          mispOrg{Name: org, UUID: uuid5(stixNamespace, "misp/org/"+org)},
				Tag:           []mispTag{},
			}
		}
		meta := eventMeta(mispInfo, latest)
		events := map[string]mispEventMeta{eventID: meta}
		for _, id := range slices.Sorted(maps.Keys(nets)) {
			ne := nets[id]
			netID := uuid5(stixNamespace, "misp/event/"+org+"/network/"+id)
			info := fmt.Sprintf("fluxwatch flux network %s: %d domains", id, len(ne.attrs))
			if len(ne.attrs) == 1 {
				info = strings.TrimSuffix(info, "s")
			}
			m := eventMeta(info, ne.latest)
			events[netID] = m
			m.UUID, m.PublishTimestamp, m.Published = netID, m.Timestamp, &published
			body, err := json.Marshal(struct {
				Event struct {
					Attribute []mispAttribute `json:"Attribute"`
					mispEventMeta
				} `json:"Event"`
			}{Event: struct {
				Attribute []mispAttribute `json:"Attribute"`
				mispEventMeta
			}{ne.attrs, m}})
			if err != nil {
				return err
			}
			if err := writeFile(dir, netID+".json", func(w io.Writer) error {
				_, err := w.Write(append(body, '\n'))
				return err
			}); err != nil {
				return err
			}
			for _, a := range ne.attrs {
				sum := md5.Sum([]byte(a.Value))
				if _, err := hashes.WriteString(hex.EncodeToString(sum[:]) + "," + netID + "\n"); err != nil {
					return err
				}
			}
		}
		manifest, err := json.Marshal(events)
		if err != nil {
			return err
		}
		meta.UUID, meta.PublishTimestamp, meta.Published = eventID, meta.Timestamp, &published
		tail, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		if n > 0 {
			event.WriteString("\n")
		}
		event.WriteString("],")
		event.Write(tail[1:]) // the fields of meta, after the attributes
		event.WriteString("}\n")
		if err := event.commit(); err != nil {
			return err
		}
		if err := hashes.commit(); err != nil {
			return err
		}
		return writeFile(dir, "manifest.json", func(w io.Writer) error {
			_, err := w.Write(append(manifest, '\n'))
			return err
		})
	}
	return sink{add, end}, cleanup, nil
}

// mispTime is a MISP timestamp: Unix seconds as a JSON string.
func mispTime(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.Unix(), 10)
}
