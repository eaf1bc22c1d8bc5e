package seeds

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
)

func TestNormalizeGood(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"EXAMPLE.com.", "example.com"},
		{"  spaced.example\t", "spaced.example"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"ß.de", "xn--zca.de"},               // non-transitional: not "ss.de"
		{"example。com", "example.com"},       // ideographic full stop
		{"ex\u00adample.com", "example.com"}, // soft hyphen is ignored
		{"☃.com", "xn--n3h.com"},
		{"שלום.com", "xn--9dbne9b.com"},
		{"_dmarc.example.com", "_dmarc.example.com"},
		{"r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com"},
		{"-edge-.example", "-edge-.example"},
		{"123.example", "123.example"},
		{"a.b.c.d.e.example", "a.b.c.d.e.example"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
		{name253(), name253()},
		{name253() + ".", name253()},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeBad(t *testing.T) {
	tests := []struct{ in, reason string }{
		{"", "empty name"},
		{"   ", "empty name"},
		{".", "empty name"},
		{"a\xff.com", "invalid UTF-8"},
		{"192.0.2.1", "IP address, not a domain name"},
		{"192.0.2.1.", "IP address, not a domain name"},
		{"2001:db8::1", "IP address, not a domain name"},
		{"::1", "IP address, not a domain name"},
		{"[2001:db8::1]", "IP address, not a domain name"},
		{"fe80::1%eth0", "IP address, not a domain name"},
		{"１９２.０.２.１", "IP address, not a domain name"}, // full-width digits
		{"*.example.com", "wildcard not allowed"},
		{"www.*.example", "wildcard not allowed"},
		{"a..b", "empty label"},
		{".example.com", "empty label"},
		{"example.com..", "empty label"},
		{"..", "empty label"},
		{"bücher..example", "empty label"},
		{"bad!.example", "invalid character '!'"},
		{"a b.example", "invalid character ' '"},
		{"example.com/path", "invalid character '/'"},
		{"example.com:80", "invalid character ':'"},
		{"nul\x00.example", `invalid character '\x00'`},
		{"ex＠mple.com", "invalid character '@'"}, // full-width @ maps to '@'
		{strings.Repeat("a", 64) + ".example", "label longer than 63 octets"},
		{name253() + "a", "name longer than 253 octets"},
		{"localhost", "single-label name"},
		{"com", "single-label name"},
		{"bücher", "single-label name"},
		{"1.2.3", "all-numeric top-level label"},
		{"host.123", "all-numeric top-level label"},
		{"xn--zz.example", `invalid IDN: invalid label "zz"`},
		{"a\u200db.example", `invalid IDN: invalid label "a\u200db"`}, // ZWJ out of context
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err == nil {
			t.Errorf("Normalize(%q) = %q, nil; want error %q", tt.in, got, tt.reason)
			continue
		}
		if err.Error() != tt.reason {
			t.Errorf("Normalize(%q) error = %q; want %q", tt.in, err, tt.reason)
		}
		if got != "" {
			t.Errorf("Normalize(%q) = %q with an error; want \"\"", tt.in, got)
		}
	}
}

// name253 is a name of exactly 253 octets: three 63-octet labels and one of
// 61, with three dots.
func name253() string {
	return strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." +
		strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
}

func TestName253(t *testing.T) {
	if n := len(name253()); n != 253 {
		t.Fatalf("len(name253()) = %d", n)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"example.com", "EXAMPLE.com.", "bücher.example", "xn--bcher-kva.example",
		"XN--ZZ.example", "192.0.2.1", "[::1]", "*.x.com", "a..b", "_srv.example",
		"-a-.example", "ß.de", "example。com", "１.２.３.４", "ex\u00adample.com",
		"שלום.com", "a\u200db.com", "☃.com", name253(), "a\xff.com", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			if out != "" {
				t.Fatalf("Normalize(%q) = %q with error %v", in, out, err)
			}
			return
		}
		if len(out) > maxNameLen {
			t.Fatalf("Normalize(%q) = %q: %d octets", in, out, len(out))
		}
		if strings.IndexFunc(out, unicode.IsUpper) >= 0 {
			t.Fatalf("Normalize(%q) = %q: has upper case", in, out)
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q, %v", in, out, out, again, err)
		}
	})
}

func ExampleNormalize() {
	for _, s := range []string{"Bücher.Example.", "*.example.com", "192.0.2.1"} {
		name, err := Normalize(s)
		if err != nil {
			fmt.Printf("%s: %v\n", s, err)
			continue
		}
		fmt.Println(name)
	}
	// Output:
	// xn--bcher-kva.example
	// *.example.com: wildcard not allowed
	// 192.0.2.1: IP address, not a domain name
}
