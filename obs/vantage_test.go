package obs

import "testing"

func TestParseVantage(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1:53", "127.0.0.1:5353": "127.0.0.1:5353", "::1": "[::1]:53",
		"[::1]:5300": "[::1]:5300", " 9.9.9.10 ": "9.9.9.10:53",
	} {
		if got, err := ParseVantage(in); err != nil || got != want {
			t.Errorf("ParseVantage(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "dns.example", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x"} {
		if _, err := ParseVantage(in); err == nil {
			t.Errorf("ParseVantage(%q) accepted", in)
		}
	}
}
