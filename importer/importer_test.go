package importer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/fluxwatch/fluxwatch/obs"
)

// TestLineReader splits on every kind of line ending, also when "\r\n"
// arrives in two reads, and skips lines over the limit without losing
// count.
func TestLineReader(t *testing.T) {
	in := "a\nbb\r\nccc\rdddd\r\n\r\n" + strings.Repeat("x", 20) + "\r\ne\r" + strings.Repeat("y", 11) + "\nlast"
	want := []string{"1 a", "2 bb", "3 ccc", "4 dddd", "5 ", "6 (too long)", "7 e", "8 (too long)", "9 last"}
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(in),
		"one byte": iotest.OneByteReader(strings.NewReader(in)),
	} {
		lr := newLineReader(r, 10)
		var got []string
		for {
			line, ok := lr.next()
			if !ok {
				break
			}
			s := string(line)
			if lr.tooLong {
				s = "(too long)"
			}
			got = append(got, fmt.Sprintf("%d %s", lr.num, s))
		}
		if lr.err() != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: %q (%v); want %q", name, got, lr.err(), want)
		}
	}
}

// TestReadReportsLongLinesAndGoesOn: a JSON line over the limit is an
// error of its own line; the next line imports.
func TestReadReportsLongLinesAndGoesOn(t *testing.T) {
	good := `{"rrname":"a.example","rrtype":"A","rdata":"192.0.2.1","time_first":1795770001,"time_last":1795770001}`
	long := `{"rrname":"b.example","rrtype":"A","rdata":["` + strings.Repeat(`192.0.2.2","`, 20) + `192.0.2.3"],"time_first":1,"time_last":1}`
	r := readString(t, long+"\n"+good+"\n", "big.jsonl", COF, Options{MaxLine: 200})
	sameText(t, "errors", strings.Join(r.errs, "\n"), "big.jsonl:1: line longer than 200 bytes")
	if len(r.probes) != 1 || r.probes[0].Domain != "a.example" || r.stats.Lines != 2 {
		t.Errorf("probes %s stats %+v", render(r.probes), r.stats)
	}
}

// TestOpenReadsGzipAndStdin: "-" is stdin, and gzip is recognised by its
// content, whatever the name.
func TestOpenReadsGzipAndStdin(t *testing.T) {
	text := readTestdata(t, "cof.jsonl")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(text))
	zw.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cof.jsonl.gz"), gz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "cof-gz-without-suffix"), gz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "plain.jsonl"), []byte(text), 0o644)
	want := render(readString(t, text, "x", COF, Options{}).probes)
	for _, c := range []struct {
		path  string
		stdin io.Reader
	}{
		{filepath.Join(dir, "cof.jsonl.gz"), nil},
		{filepath.Join(dir, "cof-gz-without-suffix"), nil},
		{filepath.Join(dir, "plain.jsonl"), nil},
		{"-", bytes.NewReader(gz.Bytes())},
		{"-", strings.NewReader(text)},
	} {
		f, err := Open(c.path, c.stdin)
		if err != nil {
			t.Fatal(err)
		}
		got := readFrom(t, f, c.path, COF, Options{})
		f.Close()
		if render(got.probes) != want {
			t.Errorf("%s: got\n%s", c.path, render(got.probes))
		}
		if c.path == "-" && len(got.errs) > 0 && !strings.HasPrefix(got.errs[0], "stdin:") {
			t.Errorf("stdin named %q", got.errs[0])
		}
	}
	if _, err := Open(filepath.Join(dir, "missing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A cut gzip stream is an error of the input, not of a line.
	os.WriteFile(filepath.Join(dir, "cut.gz"), gz.Bytes()[:gz.Len()/2], 0o644)
	f, err := Open(filepath.Join(dir, "cut.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Read(f, "cut.gz", COF, Options{}, func(obs.Probe) error { return nil }, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(err.Error(), "reading cut.gz: ") {
		t.Errorf("cut gzip stream: %v", err)
	}
}

// TestReadStopsOnCallbackError: an error from the caller ends Read and is
// returned as it is.
func TestReadStopsOnCallbackError(t *testing.T) {
	stop := errors.New("disk full")
	n := 0
	_, err := Read(strings.NewReader(readTestdata(t, "cof.jsonl")), "x", COF, Options{}, func(obs.Probe) error {
		n++
		return stop
	}, nil)
	if err != stop || n != 1 {
		t.Errorf("err %v after %d probes", err, n)
	}
	if _, err := Read(strings.NewReader(""), "x", "bind", Options{}, nil, nil); !errors.Is(err, ErrFormat) {
		t.Errorf("unknown format: %v", err)
	}
}
