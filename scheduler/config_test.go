package scheduler_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/scheduler"
)

func TestVantages(t *testing.T) {
	builtin := func(qps map[string]float64) []scheduler.Vantage {
		var vs []scheduler.Vantage
		for _, a := range crawler.DefaultVantages {
			vs = append(vs, scheduler.Vantage{Addr: a, QPS: qps[a]})
		}
		return vs
	}
	tests := []struct {
		name string
		edit func(*config.Config)
		want []scheduler.Vantage
	}{
		{"nothing configured: built-in list", func(*config.Config) {}, builtin(nil)},
		{"vantage_qps applies to the built-in list",
			func(c *config.Config) { c.VantageQPS = map[string]float64{"8.8.8.8": 2} },
			builtin(map[string]float64{"8.8.8.8:53": 2})},
		{"resolvers replace the built-in list",
			func(c *config.Config) { c.Resolvers = []string{"127.0.0.1:5301"} },
			[]scheduler.Vantage{{Addr: "127.0.0.1:5301"}}},
		{"resolvers_file replaces the built-in list",
			func(c *config.Config) { c.ResolversFile = "testdata/resolvers.txt" },
			[]scheduler.Vantage{{Addr: "192.0.2.53:53"}, {Addr: "198.51.100.7:5300"}, {Addr: "[2001:db8::1]:53"},
				{Addr: "[2001:db8::2]:8053"}, {Addr: "203.0.113.9:53"}}},
		{"same address in any spelling counted once",
			func(c *config.Config) {
				c.Resolvers = []string{"192.0.2.1", "192.0.2.1:53", " 192.0.2.1 ", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]:53", "[2001:db8::1]"}
			},
			[]scheduler.Vantage{{Addr: "192.0.2.1:53"}, {Addr: "192.0.2.1:5353"}, {Addr: "[2001:db8::1]:53"}}},
		{"vantage_qps keys normalised like the addresses",
			func(c *config.Config) {
				c.Resolvers = []string{"192.0.2.1:53", "2001:db8::1", "192.0.2.2"}
				c.VantageQPS = map[string]float64{"192.0.2.1": 4, "[2001:db8::1]:53": 6, "192.0.2.2:5353": 9}
			},
			[]scheduler.Vantage{{Addr: "192.0.2.1:53", QPS: 4}, {Addr: "[2001:db8::1]:53", QPS: 6}, {Addr: "192.0.2.2:53"}}},
		{"list then file, duplicates across both dropped",
			func(c *config.Config) {
				c.Resolvers = []string{"203.0.113.9", "192.0.2.53"}
				c.ResolversFile = "testdata/resolvers.txt"
				c.VantageQPS = map[string]float64{"198.51.100.7:5300": 1.5}
			},
			[]scheduler.Vantage{{Addr: "203.0.113.9:53"}, {Addr: "192.0.2.53:53"}, {Addr: "198.51.100.7:5300", QPS: 1.5},
				{Addr: "[2001:db8::1]:53"}, {Addr: "[2001:db8::2]:8053"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.edit(c)
			got, err := scheduler.ConfigVantages(c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Vantages:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestVantagesFullConfig(t *testing.T) {
	c, err := config.Load("../config/testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := scheduler.ConfigVantages(c)
	if err != nil {
		t.Fatal(err)
	}
	want := []scheduler.Vantage{
		{Addr: "192.0.2.53:53", QPS: 5},
		{Addr: "[2001:db8::53]:5353"},
		{Addr: "198.51.100.7:5300", QPS: 7.5},
		{Addr: "[2001:db8::1]:53"},
		{Addr: "[2001:db8::2]:8053"},
		{Addr: "203.0.113.9:53"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Vantages:\n got %v\nwant %v", got, want)
	}
}

func TestVantagesErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"bad resolver", func(c *config.Config) { c.Resolvers = []string{"192.0.2.1", "resolver.test"} },
			`resolver "resolver.test": not an IP address`},
		{"bad resolvers_file line", func(c *config.Config) { c.ResolversFile = "testdata/resolvers_bad.txt" },
			`testdata/resolvers_bad.txt:4: resolver "resolver.example.test": not an IP address`},
		{"bad vantage_qps key", func(c *config.Config) { c.VantageQPS = map[string]float64{"192.0.2.1:port": 1} },
			`resolver "192.0.2.1:port": bad port "port"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.edit(c)
			got, err := scheduler.ConfigVantages(c)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Vantages() = %v, %v; want error %s", got, err, tt.want)
			}
		})
	}
	c := config.Default()
	c.ResolversFile = filepath.Join(t.TempDir(), "missing.txt")
	if _, err := scheduler.ConfigVantages(c); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Vantages() with a missing resolvers_file = %v, want fs.ErrNotExist", err)
	}
}
