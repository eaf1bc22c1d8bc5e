package importer

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseDate reads a time as dig's ;; WHEN: line and date(1) print it:
// "Fri Nov 27 09:00:01 UTC 2026", also with fractional seconds, with a
// numeric zone ("+0100", "-03"), or without a zone (then in loc). A zone
// abbreviation is taken as loc defines it at that date (so that CST means
// what the machine that wrote the log meant, given --tz), else from a table
// of abbreviations that mean one offset only; any other is an error, since
// guessing would shift every lookup by hours.
func parseDate(s string, loc *time.Location) (time.Time, error) {
	f := strings.Fields(s)
	var zone string
	switch len(f) {
	case 6:
		zone = f[4]
		f = append(f[:4], f[5])
	case 5:
	default:
		return time.Time{}, fmt.Errorf("bad date %q", strings.TrimSpace(s))
	}
	// Weekday, month, day, clock, year; the weekday is not checked.
	t, err := time.ParseInLocation("Jan 2 15:04:05 2006", strings.Join(f[1:], " "), time.UTC)
	if err != nil || !isWeekday(f[0]) {
		return time.Time{}, fmt.Errorf("bad date %q", strings.TrimSpace(s))
	}
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	at := func(l *time.Location) time.Time { return time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), l) }
	if zone == "" {
		return at(loc), nil
	}
	if off, ok := numericZone(zone); ok {
		return at(time.FixedZone(zone, off)), nil
	}
	if lt := at(loc); zoneName(lt) == zone {
		return lt, nil
	}
	// loc's other abbreviation of the year (CEST in a winter date).
	for _, m := range []time.Month{time.January, time.July} {
		if name, off := time.Date(y, m, 1, 12, 0, 0, 0, loc).Zone(); name == zone {
			return at(time.FixedZone(zone, off)), nil
		}
	}
	if off, ok := knownZone(zone); ok {
		return at(time.FixedZone(zone, off)), nil
	}
	return time.Time{}, fmt.Errorf("time zone %q in %q is unknown or ambiguous: give the log's zone (--tz)", zone, strings.TrimSpace(s))
}

func zoneName(t time.Time) string {
	name, _ := t.Zone()
	return name
}

func isWeekday(s string) bool {
	switch s {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}

// numericZone reads "+01", "+0100", "+01:00" and "-0330" as seconds east of UTC.
func numericZone(s string) (int, bool) {
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	digits := strings.ReplaceAll(s[1:], ":", "")
	if len(digits) != 2 && len(digits) != 4 {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, false
	}
	h, m := n, 0
	if len(digits) == 4 {
		h, m = n/100, n%100
	}
	if h > 14 || m > 59 {
		return 0, false
	}
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return off, true
}

// knownZone returns the offset of a time zone abbreviation that stands for
// one offset only. Ambiguous ones (CST: US Central or China; IST: India,
// Ireland or Israel; BST, AST) are left out on purpose.
func knownZone(abbr string) (int, bool) {
	const h = 3600
	switch abbr {
	case "UTC", "UT", "GMT", "Z", "WET":
		return 0, true
	case "WEST", "CET", "MET":
		return 1 * h, true
	case "CEST", "MEST", "EET", "SAST":
		return 2 * h, true
	case "EEST", "MSK":
		return 3 * h, true
	case "PKT":
		return 5 * h, true
	case "HKT", "SGT", "AWST", "PHT":
		return 8 * h, true
	case "JST", "KST":
		return 9 * h, true
	case "ACST":
		return 9*h + h/2, true
	case "AEST":
		return 10 * h, true
	case "ACDT":
		return 10*h + h/2, true
	case "AEDT":
		return 11 * h, true
	case "NZST":
		return 12 * h, true
	case "NZDT":
		return 13 * h, true
	case "BRT", "ART":
		return -3 * h, true
	case "EDT":
		return -4 * h, true
	case "EST", "CDT":
		return -5 * h, true
	case "MDT":
		return -6 * h, true
	case "MST", "PDT":
		return -7 * h, true
	case "PST", "AKDT":
		return -8 * h, true
	case "AKST":
		return -9 * h, true
	case "HST":
		return -10 * h, true
	}
	return 0, false
}
