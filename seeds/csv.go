package seeds

import (
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
)

// headerNames are the CSV header cells recognised without Options.Column,
// in order of preference when a header has more than one of them.
var headerNames = []string{"domain", "hostname", "host", "url"}

// csvTable is the CSV layout read from a header line.
type csvTable struct {
	col   int    // index of the column with the names
	label string // that column's header cell, for messages
	isURL bool   // the column holds URLs
}

// header looks at the first line that is not blank or a comment. It reports
// done when the line was a header (or a broken one, rejected) and so is not
// data. text is the whole trimmed line, content the same without a trailing
// comment.
func (p *parser) header(n int, text, content string) (done bool, err error) {
	if p.column != "" {
		cells, _ := splitCSV(text)
		for i, c := range cells {
			if strings.EqualFold(headerCell(c), p.column) {
				p.csv = &csvTable{col: i, label: p.column, isURL: strings.EqualFold(p.column, "url")}
				return true, nil
			}
		}
		header := make([]string, len(cells))
		for i, c := range cells {
			header[i] = headerCell(c)
		}
		return true, &ColumnError{File: p.file, Line: n, Column: p.column, Header: header}
	}

	if !strings.Contains(content, ",") && !isHeaderName(headerCell(content)) {
		return false, nil
	}
	cells, _ := splitCSV(text)
	for _, want := range headerNames {
		for i, c := range cells {
			if strings.EqualFold(headerCell(c), want) {
				p.csv = &csvTable{col: i, label: want, isURL: want == "url"}
				return true, nil
			}
		}
	}
	if isRankedLine(content) {
		return false, nil // a headerless ranking such as Tranco's
	}
	p.bad(n, text, "CSV header without a domain, host, hostname or url column")
	return true, nil
}

// name returns the name in the names column of a CSV record. Each record
// is one line: quoted fields spanning lines are not supported, and a line is
// read whole, without removing a trailing " #" comment, since a cell may
// contain one.
func (t *csvTable) name(text string) (string, error) {
	cells, err := splitCSV(text)
	if err != nil {
		return "", err
	}
	if t.col >= len(cells) {
		return "", fmt.Errorf("missing column %q", t.label)
	}
	return nameFromValue(cells[t.col], t.isURL)
}

// splitCSV parses one line as a CSV record, with encoding/csv quoting rules,
// lazy quotes and any number of fields.
func splitCSV(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	rec, err := r.Read()
	if err != nil {
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			err = perr.Err
		}
		return nil, fmt.Errorf("invalid CSV: %v", err)
	}
	return rec, nil
}

// headerCell returns a header cell as compared: trimmed, without quotes.
func headerCell(c string) string {
	return strings.Trim(strings.TrimSpace(c), `"'`)
}

func isHeaderName(s string) bool {
	for _, h := range headerNames {
		if strings.EqualFold(s, h) {
			return true
		}
	}
	return false
}
