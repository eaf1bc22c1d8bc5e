package seeds

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// result is what one Parse call produced: "LINE name" for every accepted
// name and the Error() text of every Reject, each in input order.
type result struct {
	names   []string
	rejects []string
}

func parseString(t *testing.T, input, name string, opts Options) (result, error) {
	t.Helper()
	return parseReader(t, strings.NewReader(input), name, opts)
}

func parseReader(t *testing.T, r io.Reader, name string, opts Options) (result, error) {
	t.Helper()
	var res result
	err := Parse(r, name, opts,
		func(domain string, line int) {
			res.names = append(res.names, fmt.Sprintf("%d %s", line, domain))
		},
		func(rej Reject) {
			if rej.File != DisplayName(name) {
				t.Errorf("Reject.File = %q; want %q", rej.File, DisplayName(name))
			}
			res.rejects = append(res.rejects, rej.Error())
		})
	return res, err
}

func TestParseFiles(t *testing.T) {
	tests := []struct {
		file    string
		opts    Options
		names   []string
		rejects []string
	}{
		{
			file: "plain.txt",
			names: []string{
				"4 evil.example",
				"5 mixed-case.example.com",
				"6 xn--bcher-kva.example",
				"7 padded.example",
				"8 tracker.example",
				"9 _dmarc.example.org",
				"10 r3---sn-abc.flux.example",
				"11 evil.example.net",
				"12 dup.example", // duplicates are the caller's business
				"13 dup.example",
			},
		},
		{
			// hosts.txt has CRLF line endings on its first three lines.
			file: "hosts.txt",
			names: []string{
				"11 ads.example",
				"12 tab.example",
				"13 one.example",
				"13 two.example",
				"14 six.example",
				"15 good.example",
			},
			rejects: []string{
				`testdata/hosts.txt:15: "bad!.example": invalid character '!'`,
				"testdata/hosts.txt:16: IP address, not a domain name",
			},
		},
		{
			file: "adblock.txt",
			names: []string{
				"4 ads.example",
				"5 tracker.example",
				"6 third.example",
				"7 anchored.example",
				"8 noanchor.example",
			},
			rejects: []string{
				"testdata/adblock.txt:9: adblock exception rule, not a block",
				"testdata/adblock.txt:10: adblock rule with a path",
				"testdata/adblock.txt:11: adblock rule with a path",
				"testdata/adblock.txt:12: adblock cosmetic rule, not a block",
				"testdata/adblock.txt:13: unsupported adblock rule",
				"testdata/adblock.txt:14: wildcard not allowed",
			},
		},
		{
			file: "urls.txt",
			names: []string{
				"2 evil.example",
				"3 login.example",
				"4 defanged.example",
				"5 evil.example.org",
				"6 upper.example",
				"7 files.example",
				"8 noscheme.example",
			},
			rejects: []string{
				"testdata/urls.txt:9: IP address, not a domain name",
				"testdata/urls.txt:10: IP address, not a domain name",
				`testdata/urls.txt:11: invalid URL: invalid port ":port" after host`,
				"testdata/urls.txt:12: URL without a host",
			},
		},
		{
			file: "tranco.csv",
			names: []string{
				"1 google.com",
				"2 facebook.com",
				"3 example.org",
				"4 xn--bcher-kva.example",
			},
			rejects: []string{
				"testdata/tranco.csv:5: single-label name",
			},
		},
		{
			file: "with-header.csv",
			names: []string{
				"3 phish.example",
				"4 quoted.example",
				"7 evil.example",
			},
			rejects: []string{
				"testdata/with-header.csv:5: empty name",
				`testdata/with-header.csv:6: missing column "domain"`,
			},
		},
		{
			file: "with-header.csv",
			opts: Options{Column: "URL"},
			names: []string{
				"3 x.example",
				"7 y.example",
			},
			rejects: []string{
				"testdata/with-header.csv:4: empty name",
				"testdata/with-header.csv:5: empty name",
				`testdata/with-header.csv:6: missing column "URL"`,
			},
		},
		{
			file: "mixed-bad.txt",
			names: []string{
				"2 good.example",
				"16 ok.example",
			},
			rejects: []string{
				"testdata/mixed-bad.txt:3: IP address, not a domain name",
				"testdata/mixed-bad.txt:4: IP address, not a domain name",
				"testdata/mixed-bad.txt:5: wildcard not allowed",
				"testdata/mixed-bad.txt:6: invalid character '!'",
				"testdata/mixed-bad.txt:7: empty label",
				"testdata/mixed-bad.txt:8: empty label",
				"testdata/mixed-bad.txt:9: single-label name",
				"testdata/mixed-bad.txt:10: label longer than 63 octets",
				"testdata/mixed-bad.txt:11: name longer than 253 octets",
				`testdata/mixed-bad.txt:12: invalid IDN: invalid label "zz"`,
				"testdata/mixed-bad.txt:13: all-numeric top-level label",
				"testdata/mixed-bad.txt:14: invalid character ':'",
				"testdata/mixed-bad.txt:15: invalid character ' '",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.opts.Column, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := parseReader(t, f, path, tt.opts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !slices.Equal(res.names, tt.names) {
				t.Errorf("names:\n got %q\nwant %q", res.names, tt.names)
			}
			if !slices.Equal(res.rejects, tt.rejects) {
				t.Errorf("rejects:\n got %q\nwant %q", res.rejects, tt.rejects)
			}
		})
	}
}

func TestParseColumnNotInHeader(t *testing.T) {
	f, err := os.Open("testdata/with-header.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parseReader(t, f, "testdata/with-header.csv", Options{Column: "fqdn"})
	var cerr *ColumnError
	if !errors.As(err, &cerr) {
		t.Fatalf("Parse error = %v; want a *ColumnError", err)
	}
	want := `testdata/with-header.csv:2: column "fqdn" not found in CSV header (columns: "first_seen", "url", "Domain", "note")`
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	if len(res.names)+len(res.rejects) != 0 {
		t.Errorf("got output before the fatal error: %+v", res)
	}
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		name, input string
		names       []string
		rejects     []string
	}{
		{
			name:  "single column",
			input: "Domain\nevil.example\n",
			names: []string{"2 evil.example"},
		},
		{
			name:  "host column, url column ignored",
			input: "url,host\nhttp://a.example/,b.example\n",
			names: []string{"2 b.example"},
		},
		{
			name:  "url column without scheme",
			input: "id,url\n1,evil.example/x.php\n2,hxxp://evil2[.]example\n",
			names: []string{"2 evil.example", "3 evil2.example"},
		},
		{
			name:  "header only after comments",
			input: "# feed\n\n; more\nhostname,seen\nevil.example,1\n",
			names: []string{"5 evil.example"},
		},
		{
			name:  "header too late is data",
			input: "evil.example\ndomain,seen\n",
			names: []string{"1 evil.example"},
			rejects: []string{
				"in.csv:2: invalid character ','",
			},
		},
		{
			name:  "no usable column",
			input: "name,seen\nevil.example,1\n",
			rejects: []string{
				"in.csv:1: CSV header without a domain, host, hostname or url column",
				"in.csv:2: invalid character ','",
			},
		},
		{
			name:  "quotes",
			input: "\"domain\",note\n\"evil.example\",\"a \"\"quoted\"\" note\"\nbad\"quote.example,x\n",
			names: []string{"2 evil.example"},
			rejects: []string{
				`in.csv:3: invalid character '"'`,
			},
		},
		{
			name:  "byte order mark",
			input: "\ufeffdomain\nevil.example\n",
			names: []string{"2 evil.example"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := parseString(t, tt.input, "in.csv", Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !slices.Equal(res.names, tt.names) {
				t.Errorf("names:\n got %q\nwant %q", res.names, tt.names)
			}
			if !slices.Equal(res.rejects, tt.rejects) {
				t.Errorf("rejects:\n got %q\nwant %q", res.rejects, tt.rejects)
			}
		})
	}
}

func TestParseStdinName(t *testing.T) {
	for _, name := range []string{"-", ""} {
		res, err := parseString(t, "bad!.example\n", name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"stdin:1: invalid character '!'"}
		if !slices.Equal(res.rejects, want) {
			t.Errorf("name %q: rejects %q; want %q", name, res.rejects, want)
		}
	}
}

func TestParseLongLine(t *testing.T) {
	long := strings.Repeat("a", MaxLineLen+1)
	fits := strings.Repeat("b", MaxLineLen-len(".example")) + ".example"
	input := "one.example\n" + long + "\ntwo.example\n" + fits + "\n" + long // no final newline
	var rejects []Reject
	var names []string
	err := Parse(strings.NewReader(input), "big.txt", Options{},
		func(d string, n int) { names = append(names, fmt.Sprintf("%d %s", n, d)) },
		func(r Reject) { rejects = append(rejects, r) })
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if want := []string{"1 one.example", "3 two.example"}; !slices.Equal(names, want) {
		t.Errorf("names %q; want %q", names, want)
	}
	want := []string{
		"big.txt:2: line longer than 65536 bytes",
		"big.txt:4: label longer than 63 octets", // the line fits; its name does not
		"big.txt:5: line longer than 65536 bytes",
	}
	var got []string
	for _, r := range rejects {
		got = append(got, r.Error())
		if r.Line != 4 && len(r.Text) > 100 {
			t.Errorf("line %d: Reject.Text of %d bytes; want it shortened", r.Line, len(r.Text))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("rejects:\n got %q\nwant %q", got, want)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("evil.example\n"), iotest.ErrReader(boom))
	res, err := parseReader(t, r, "feed.txt", Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("Parse error = %v; want it to wrap %v", err, boom)
	}
	if want := "reading seeds feed.txt: boom"; err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
	if want := []string{"1 evil.example"}; !slices.Equal(res.names, want) {
		t.Errorf("names %q; want %q", res.names, want)
	}
}

func TestParseNilCallbacks(t *testing.T) {
	if err := Parse(strings.NewReader("a.example\nbad!\n"), "x", Options{}, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"plain.txt", "hosts.txt", "adblock.txt", "urls.txt", "tranco.csv", "with-header.csv", "mixed-bad.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add("url\nexample.com/x\n\"a\",\"b\n")
	f.Add("||a.example^$x\n@@||b\n0.0.0.0 c.example d\n1,e.example\nhxxp://f[.]example\n")
	f.Fuzz(func(t *testing.T, input string) {
		last := 0
		err := Parse(strings.NewReader(input), "fuzz", Options{},
			func(domain string, line int) {
				if line < last || line < 1 {
					t.Fatalf("line %d after line %d", line, last)
				}
				last = line
				if again, err := Normalize(domain); err != nil || again != domain {
					t.Fatalf("emitted %q, which normalises to %q, %v", domain, again, err)
				}
			},
			func(r Reject) {
				if r.Line < last || r.Line < 1 || r.Reason == "" {
					t.Fatalf("bad reject %+v after line %d", r, last)
				}
				last = r.Line
			})
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
	})
}

func ExampleParse() {
	list := `# mixed seed list
evil.example
0.0.0.0 ads.example tracker.example
||flux.example^$important
hxxps://phish[.]example/login
*.wild.example
`
	err := Parse(strings.NewReader(list), "-", Options{},
		func(domain string, line int) { fmt.Println(line, domain) },
		func(r Reject) { fmt.Println("rejected:", r) })
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// 2 evil.example
	// 3 ads.example
	// 3 tracker.example
	// 4 flux.example
	// 5 phish.example
	// rejected: stdin:6: wildcard not allowed
}
