package results

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
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

// stixWriter streams a STIX 2.1 bundle: the bundle's head, each indicator
// as it comes, then the tail. A bundle with nothing listed has no objects
// property, since STIX forbids empty lists.
type stixWriter struct {
	w        io.Writer
	opts     Options
	validFor time.Duration
	buf      bytes.Buffer // one object at a time
	enc      *json.Encoder
	n        int
}

func newSTIXWriter(w io.Writer, opts Options) (*stixWriter, error) {
	s := &stixWriter{w: w, opts: opts, validFor: opts.ValidFor}
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
	s.buf.Reset()
	if err := s.enc.Encode(stixIndicator{
		Type:           "indicator",
		SpecVersion:    "2.1",
		ID:             "indicator--" + uuid5(stixNamespace, "domain/"+v.Domain),
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
	tail := "}\n"
	if s.n > 0 {
		tail = "\n]}\n"
	}
	_, err := io.WriteString(s.w, tail)
	return err
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
