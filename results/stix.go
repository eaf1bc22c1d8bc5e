package results

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
)

// DefaultValidFor is how long a STIX indicator stays valid after its
// verdict when Options.ValidFor is not set.
const DefaultValidFor = 7 * 24 * time.Hour

// stixNamespace is the UUID namespace of fluxwatch's STIX identifiers. It
// must never change: an indicator's id is derived from it and the domain,
// so every export names the same domain with the same id, and a platform
// that imports a newer export sees a new version of the same indicator.
var stixNamespace = [16]byte{0xc4, 0x1c, 0xe4, 0x64, 0x0a, 0x0d, 0x4d, 0x08, 0xa6, 0x04, 0x42, 0x1f, 0x87, 0xe5, 0x63, 0xc4}

// stixIndicator is a STIX 2.1 indicator object for one listed domain, its
// properties in the order the specification lists them.
type stixIndicator struct {
	Type           string   `json:"type"`
	SpecVersion    string   `json:"spec_version"`
	ID             string   `json:"id"`
	Created        string   `json:"created"`
	Modified       string   `json:"modified"`
	Name           string   `json:"name"`
	Description    string   `json:"description,omitempty"`
	IndicatorTypes []string `json:"indicator_types"`
	Pattern        string   `json:"pattern"`
	PatternType    string   `json:"pattern_type"`
	ValidFrom      string   `json:"valid_from"`
	ValidUntil     string   `json:"valid_until"`
	Confidence     int      `json:"confidence"`
	Labels         []string `json:"labels"`
}

// stixInfrastructure is a STIX 2.1 infrastructure object for one flux
// network (infrastructure_types botnet): its listed domains' indicators
// are related to it by relationships of type indicates.
type stixInfrastructure struct {
	Type                string   `json:"type"`
	SpecVersion         string   `json:"spec_version"`
	ID                  string   `json:"id"`
	Created             string   `json:"created"`
	Modified            string   `json:"modified"`
	Name                string   `json:"name"`
	Description         string   `json:"description"`
	InfrastructureTypes []string `json:"infrastructure_types"`
	FirstSeen           string   `json:"first_seen,omitempty"`
	LastSeen            string   `json:"last_seen,omitempty"`
}

// stixRelationship relates an indicator to what it indicates.
type stixRelationship struct {
	Type             string `json:"type"`
	SpecVersion      string `json:"spec_version"`
	ID               string `json:"id"`
	Created          string `json:"created"`
	Modified         string `json:"modified"`
	RelationshipType string `json:"relationship_type"`
	SourceRef        string `json:"source_ref"`
	TargetRef        string `json:"target_ref"`
}

// stixNetwork is what the writer keeps of a flux network until the end.
type stixNetwork struct {
	domains             int
	created, modified   time.Time // of its verdicts
	firstSeen, lastSeen time.Time // of their evidence
}

// stixWriter streams a STIX 2.1 bundle: the bundle's head, each indicator
// as it comes (with its relationship to its flux network's infrastructure
// object when it is in one), then the infrastructure objects and the
// tail. A bundle with nothing listed has no objects property, since STIX
// forbids empty lists.
type stixWriter struct {
	w        io.Writer
	opts     Options
	validFor time.Duration
	buf      bytes.Buffer // one object at a time
	enc      *json.Encoder
	n        int
	networks map[string]*stixNetwork
}

func newSTIXWriter(w io.Writer, opts Options) (*stixWriter, error) {
	s := &stixWriter{w: w, opts: opts, validFor: opts.ValidFor, networks: map[string]*stixNetwork{}}
	if s.validFor <= 0 {
		s.validFor = DefaultValidFor
	}
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false)
	// The bundle id names this export: the same serial and time give the
	// same id, so golden files and repeated exports are stable.
	seed := fmt.Sprintf("bundle/%d", opts.Serial)
	if !opts.Now.IsZero() {
		seed += "/" + opts.Now.UTC().Format(time.RFC3339Nano)
	}
	_, err := fmt.Fprintf(w, `{"type":"bundle","id":"bundle--%s"`, uuid5(stixNamespace, seed))
	return s, err
}

func (s *stixWriter) add(v classify.Verdict) error {
	at := v.ClassifiedAt
	if at.IsZero() {
		at = s.opts.Now
	}
	indicator := "indicator--" + uuid5(stixNamespace, "domain/"+v.Domain)
	if err := s.object(stixIndicator{
		Type:           "indicator",
		SpecVersion:    "2.1",
		ID:             indicator,
		Created:        stixTime(at),
		Modified:       stixTime(at),
		Name:           "fast-flux domain " + v.Domain,
		Description:    v.Evidence,
		IndicatorTypes: []string{"malicious-activity"},
		Pattern:        "[domain-name:value = '" + stixQuote(v.Domain) + "']",
		PatternType:    "stix",
		ValidFrom:      stixTime(at),
		ValidUntil:     stixTime(at.Add(s.validFor)),
		Confidence:     stixConfidence(v.Confidence),
		Labels:         []string{v.Verdict},
	}); err != nil {
		return fmt.Errorf("STIX indicator for %s: %w", v.Domain, err)
	}
	if v.Network == "" {
		return nil
	}
	n := s.networks[v.Network]
	if n == nil {
		n = &stixNetwork{created: at, modified: at, firstSeen: v.Features.FirstSeen, lastSeen: v.Features.LastSeen}
		s.networks[v.Network] = n
	}
	n.domains++
	n.created, n.modified = earliest(n.created, at), latest(n.modified, at)
	n.firstSeen, n.lastSeen = earliest(n.firstSeen, v.Features.FirstSeen), latest(n.lastSeen, v.Features.LastSeen)
	infra := s.infrastructureID(v.Network)
	if err := s.object(stixRelationship{
		Type:             "relationship",
		SpecVersion:      "2.1",
		ID:               "relationship--" + uuid5(stixNamespace, "indicates/"+indicator+"/"+infra),
		Created:          stixTime(at),
		Modified:         stixTime(at),
		RelationshipType: "indicates",
		SourceRef:        indicator,
		TargetRef:        infra,
	}); err != nil {
		return fmt.Errorf("STIX relationship of %s: %w", v.Domain, err)
	}
	return nil
}

// infrastructureID is the id of a flux network's infrastructure object:
// derived from the organisation and the network's id, so that every export
// names the same network with the same id.
func (s *stixWriter) infrastructureID(network string) string {
	return "infrastructure--" + uuid5(stixNamespace, "network/"+cmp.Or(s.opts.Org, "fluxwatch")+"/"+network)
}

// object writes one object of the bundle.
func (s *stixWriter) object(o any) error {
	s.buf.Reset()
	if err := s.enc.Encode(o); err != nil {
		return err
	}
	sep := ",\n"
	if s.n == 0 {
		sep = ",\"objects\":[\n"
	}
	s.n++
	if _, err := io.WriteString(s.w, sep); err != nil {
		return err
	}
	_, err := s.w.Write(bytes.TrimSuffix(s.buf.Bytes(), []byte("\n")))
	return err
}

func (s *stixWriter) end() error {
	for _, id := range slices.Sorted(maps.Keys(s.networks)) {
		n := s.networks[id]
		infra := stixInfrastructure{
			Type:                "infrastructure",
			SpecVersion:         "2.1",
			ID:                  s.infrastructureID(id),
			Created:             stixTime(n.created),
			Modified:            stixTime(n.modified),
			Name:                "flux network " + id,
			Description:         fmt.Sprintf("fast-flux network %s: compromised hosts proxying for %d listed domains (fluxwatch)", id, n.domains),
			InfrastructureTypes: []string{"botnet"},
		}
		if !n.firstSeen.IsZero() && !n.lastSeen.Before(n.firstSeen) {
			infra.FirstSeen, infra.LastSeen = stixTime(n.firstSeen), stixTime(n.lastSeen)
		}
		if err := s.object(infra); err != nil {
			return fmt.Errorf("STIX infrastructure of network %s: %w", id, err)
		}
	}
	tail := "}\n"
	if s.n > 0 {
		tail = "\n]}\n"
	}
	_, err := io.WriteString(s.w, tail)
	return err
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// stixTime formats a STIX timestamp: RFC 3339 in UTC with milliseconds, the
// precision STIX requires of created and modified.
func stixTime(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z")
}

// stixConfidence maps a confidence of 0 to 1 onto STIX's 0 to 100.
func stixConfidence(c float64) int {
	switch {
	case !(c > 0): // and NaN
		return 0
	case c >= 1:
		return 100
	}
	return int(math.Round(c * 100))
}

// stixQuote escapes a string for a single-quoted STIX pattern literal.
var stixQuote = strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace

// uuid5 returns the name-based (SHA-1) UUID of name in namespace, as
// RFC 9562 (formerly RFC 4122) defines version 5, in its text form.
func uuid5(namespace [16]byte, name string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
