package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/obs"
)

// lineParser turns one line of a JSON-lines format into probes; none and
// no error means the line holds nothing fluxwatch measures.
type lineParser func(line []byte) ([]obs.Probe, error)

func jsonLineParser(format string, opts Options) lineParser {
	switch format {
	case ZDNS:
		return func(b []byte) ([]obs.Probe, error) { return parseZDNS(b, opts) }
	case DNSX:
		return func(b []byte) ([]obs.Probe, error) { return parseDNSX(b, opts) }
	case COF:
		return func(b []byte) ([]obs.Probe, error) { return parseCOF(b, opts) }
	default:
		return func(b []byte) ([]obs.Probe, error) {
			p, err := Decode(b)
			if err != nil {
				return nil, err
			}
			if opts.Vantage != "" {
				p.Vantage = opts.Vantage
				for i := range p.Observations {
					p.Observations[i].Vantage = opts.Vantage
				}
			}
			return []obs.Probe{p}, nil
		}
	}
}

// eachJSONLine reads an input of JSON lines; blank lines are skipped.
func (in *input) eachJSONLine(parse lineParser) error {
	for {
		line, ok := in.lines.next()
		if !ok {
			return nil
		}
		if in.lines.tooLong {
			in.tooLong()
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		probes, err := parse(line)
		if err != nil {
			in.fail(in.lines.num, "%s", jsonReason(err))
			continue
		}
		if len(probes) == 0 {
			in.stats.Skipped++
		}
		for _, p := range probes {
			if err := in.emit(p); err != nil {
				return err
			}
		}
	}
}

// jsonReason shortens encoding/json's errors to what a person needs.
func jsonReason(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not JSON: %v (at byte %d)", syn, syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s: want %s, not JSON %s", typ.Field, typ.Type, typ.Value)
	}
	return err.Error()
}

// flexTime is a time given as RFC 3339 text or as Unix seconds (a number,
// or a string of one), as the JSON formats variously write them.
type flexTime struct{ time.Time }

func (t *flexTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t.Time = v
			return nil
		}
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || secs < 0 || secs > 1<<40 {
		return fmt.Errorf("bad time %s", b)
	}
	whole := int64(secs)
	t.Time = time.Unix(whole, int64((secs-float64(whole))*1e9)).UTC()
	return nil
}
