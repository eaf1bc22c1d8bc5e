package seeds

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Options control Parse.
type Options struct {
	// Column is the CSV column to read the names from. When it is set, the
	// first line that is not blank or a comment is the CSV header and must
	// have a cell with this name (compared case-insensitively). When it is
	// "", a header is recognised by a cell named domain, host, hostname or
	// url; without one the file is read line by line.
	Column string
}

// Reject is one input line, or one name on a hosts-file line, that was not
// accepted.
type Reject struct {
	File   string // the name shown for the input: the path, or "stdin"
	Line   int    // 1-based line number
	Text   string // the line, trimmed; cut to 80 bytes and "..." if over-long
	Reason string // why it was not accepted; stable text
}

// Error returns "file:line: reason".
func (r Reject) Error() string {
	return fmt.Sprintf("%s:%d: %s", r.File, r.Line, r.Reason)
}

// ColumnError is the fatal error Parse returns when Options.Column names a
// column that the CSV header does not have.
type ColumnError struct {
	File   string
	Line   int
	Column string
	Header []string // the header cells as read
}

func (e *ColumnError) Error() string {
	quoted := make([]string, len(e.Header))
	for i, h := range e.Header {
		quoted[i] = fmt.Sprintf("%q", h)
	}
	return fmt.Sprintf("%s:%d: column %q not found in CSV header (columns: %s)",
		e.File, e.Line, e.Column, strings.Join(quoted, ", "))
}

// DisplayName is the name Parse uses for an input in messages: "stdin" for
// "-" or "", otherwise name itself.
func DisplayName(name string) string {
	if name == "" || name == "-" {
		return "stdin"
	}
	return name
}

// Parse reads a seed list from r and calls fn for every valid name, in input
// order, with its 1-based line number. name identifies the input in messages
// ("-" is shown as "stdin"). Lines that yield no name are passed to bad and
// parsing goes on; fn and bad may be nil. A hosts-file line can yield several
// names, each passed to fn (or bad) on its own. Duplicates are not removed.
//
// Blank lines and comment lines ('#', ';', adblock '!' and "[Adblock ...]")
// are skipped, as is a trailing comment after white space (" # ..."). The
// format of every other line is recognised on its own, in this order:
//
//   - "@@..."            adblock exception rule: rejected
//   - "||name^$opts"     adblock block rule: name (options ignored)
//   - "|..."             other anchored adblock rule: rejected
//   - "x##y", "x#@#y"    adblock cosmetic rule: rejected
//   - "ADDR name ..."    hosts-file line: every name after the address,
//     except stock names such as localhost and ip6-allnodes
//   - "RANK,name,..."    Tranco-style ranking, RANK all digits: name
//   - "scheme://..."     URL, also defanged (hxxp://, evil[.]com): its host
//   - "name/path"        URL without a scheme: its host
//   - anything else      a plain name
//
// CSV is the exception: if the first line that is not blank or a comment has
// a header cell named domain, hostname, host or url (preferred in that order),
// or the one named by Options.Column, every later line is a one-line CSV
// record and the name is taken from that column (through the URL rules for a
// url column).
//
// Parse returns an error only when reading fails ("reading seeds NAME: ...",
// wrapping the read error) or when Options.Column is not in the CSV header
// (a *ColumnError).
func Parse(r io.Reader, name string, opts Options, fn func(domain string, line int), bad func(Reject)) error {
	p := &parser{
		file:   DisplayName(name),
		column: strings.TrimSpace(opts.Column),
		emit:   fn,
		reject: bad,
	}
	if p.emit == nil {
		p.emit = func(string, int) {}
	}
	if p.reject == nil {
		p.reject = func(Reject) {}
	}

	lr := newLineReader(r, MaxLineLen)
	for n := 1; ; n++ {
		raw, truncated, ok := lr.next()
		if !ok {
			break
		}
		if n == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\ufeff")) // UTF-8 byte order mark
		}
		if truncated {
			p.bad(n, string(shorten(raw)), fmt.Sprintf("line longer than %d bytes", MaxLineLen))
			continue
		}
		if err := p.line(n, string(raw)); err != nil {
			return err
		}
	}
	if err := lr.err(); err != nil {
		return fmt.Errorf("reading seeds %s: %w", p.file, err)
	}
	return nil
}

// parser holds the state of one Parse call.
type parser struct {
	file   string
	column string // Options.Column, trimmed
	emit   func(string, int)
	reject func(Reject)

	seenData bool      // a line other than blank or comment has been read
	csv      *csvTable // set once a CSV header has been read
}

// line handles one input line. It returns an error only for a fatal
// condition (a missing Options.Column).
func (p *parser) line(n int, raw string) error {
	text := strings.TrimSpace(raw)
	if isComment(text) {
		return nil
	}
	content := stripTrailingComment(text)
	if content == "" {
		return nil
	}

	if !p.seenData {
		p.seenData = true
		done, err := p.header(n, text, content)
		if done || err != nil {
			return err
		}
	}
	if p.csv == nil && isHostsLine(content) {
		p.hostsLine(n, text, content) // may yield several names
		return nil
	}
	name, err := p.name(text, content)
	if err != nil {
		p.bad(n, text, err.Error())
		return nil
	}
	p.emit(name, n)
	return nil
}

// name extracts the name from a line that is not a hosts-file line, by the
// rules listed on Parse.
func (p *parser) name(text, content string) (string, error) {
	switch {
	case p.csv != nil:
		return p.csv.name(text)
	case strings.HasPrefix(content, "@@"):
		return "", errors.New("adblock exception rule, not a block")
	case strings.HasPrefix(content, "||"):
		return adblockName(content)
	case strings.HasPrefix(content, "|"):
		return "", errors.New("unsupported adblock rule")
	case isCosmeticRule(content):
		return "", errors.New("adblock cosmetic rule, not a block")
	case isRankedLine(content):
		_, rest, _ := strings.Cut(content, ",")
		field, _, _ := strings.Cut(rest, ",")
		return nameFromValue(field, false)
	}
	return nameFromValue(content, false)
}

func (p *parser) bad(n int, text, reason string) {
	p.reject(Reject{File: p.file, Line: n, Text: text, Reason: reason})
}

// isComment reports whether a trimmed line is blank or a comment line: '#'
// and ';' comments, adblock '!' comments and the "[Adblock Plus 2.0]" header.
func isComment(text string) bool {
	if text == "" {
		return true
	}
	switch text[0] {
	case '#', ';', '!':
		return true
	}
	return len(text) >= len("[adblock") && strings.EqualFold(text[:len("[adblock")], "[adblock")
}

// stripTrailingComment removes a " # ..." comment (a '#' after white space)
// and trims what is left.
func stripTrailingComment(text string) string {
	for i := 1; i < len(text); i++ {
		if text[i] == '#' && (text[i-1] == ' ' || text[i-1] == '\t') {
			return strings.TrimSpace(text[:i])
		}
	}
	return text
}

// shorten cuts an over-long line down for Reject.Text, on a rune boundary.
func shorten(b []byte) []byte {
	const keep = 80
	if len(b) <= keep {
		return b
	}
	i := keep
	for i > 0 && !utf8.RuneStart(b[i]) {
		i--
	}
	return append(b[:i:i], "..."...)
}
