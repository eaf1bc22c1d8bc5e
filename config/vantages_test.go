package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/config"
)

func TestReadResolvers(t *testing.T) {
	got, err := config.ReadResolvers("testdata/resolvers.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.53:53", "198.51.100.7:5300", "[2001:db8::1]:53", "[2001:db8::2]:8053", "203.0.113.9:53"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadResolvers:\n got %q\nwant %q", got, want)
	}
}

func TestReadResolversErrors(t *testing.T) {
	_, err := config.ReadResolvers("testdata/resolvers_bad.txt")
	want := `testdata/resolvers_bad.txt:4: resolver "resolver.example.test": not an IP address`
	if err == nil || err.Error() != want {
		t.Errorf("ReadResolvers(resolvers_bad.txt) = %v, want %s", err, want)
	}

	tests := []struct {
		name, content, want string // want without the "path:" prefix
	}{
		{"bad port", "192.0.2.1\n192.0.2.2:70000\n", `2: resolver "192.0.2.2:70000": bad port "70000"`},
		{"port zero", "# x\n\n192.0.2.2:0\n", `3: resolver "192.0.2.2:0": bad port "0"`},
		{"port with a sign", "192.0.2.2:+53\n", `1: resolver "192.0.2.2:+53": bad port "+53"`},
		{"comment after a bad address", "\n192.0.2.300 # typo\n", `2: resolver "192.0.2.300": not an IP address`},
		{"address with a zone", "fe80::1%eth0\n", `1: resolver "fe80::1%eth0": not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolvers.txt")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := config.ReadResolvers(path)
			if want := path + ":" + tt.want; err == nil || err.Error() != want {
				t.Errorf("ReadResolvers = %v\nwant %s", err, want)
			}
		})
	}

	if _, err := config.ReadResolvers(filepath.Join(t.TempDir(), "missing.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadResolvers(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestParseQTypes(t *testing.T) {
	tests := []struct {
		in      []string
		want    []uint16
		wantErr string
	}{
		{in: []string{"A,AAAA"}, want: []uint16{dns.TypeA, dns.TypeAAAA}},
		{in: []string{"NS"}, want: []uint16{dns.TypeNS}},
		{in: []string{" a , aaaa,", "ns"}, want: []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeNS}},
		{in: []string{"TXT", "MX"}, want: []uint16{dns.TypeTXT, dns.TypeMX}},
		{in: []string{"ANY"}, wantErr: `unknown or unsupported query type "ANY"`},
		{in: []string{"A,AXFR"}, wantErr: `unknown or unsupported query type "AXFR"`},
		{in: []string{"IXFR"}, wantErr: `unknown or unsupported query type "IXFR"`},
		{in: []string{"A", "BOGUS"}, wantErr: `unknown or unsupported query type "BOGUS"`},
		{in: nil, wantErr: "no query types"},
		{in: []string{""}, wantErr: "no query types"},
		{in: []string{" , ,"}, wantErr: "no query types"},
	}
	for _, tt := range tests {
		got, err := config.ParseQTypes(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseQTypes(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseQTypes(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
