package simnet_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fluxwatch/fluxwatch/simnet"
)

// freePorts finds n consecutive ports free on 127.0.0.1 for UDP and TCP
// (free when looked at: another process may take them before the test
// binds them, which it then reports).
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		free := base+n <= 65535
		for p := base; free && p < base+n; p++ {
			addr := "127.0.0.1:" + strconv.Itoa(p)
			u, uerr := net.ListenPacket("udp", addr)
			l, lerr := net.Listen("tcp", addr)
			free = uerr == nil && lerr == nil
			if u != nil {
				u.Close()
			}
			if l != nil {
				l.Close()
			}
		}
		if free {
			return base
		}
	}
	t.Skip("no run of free ports found")
	return 0
}

func TestFixedPorts(t *testing.T) {
	base := freePorts(t, 3)
	w := start(t, simnet.Config{Seed: 3, Vantages: 2, Port: base})
	if w.ParentPort() != base {
		t.Errorf("registry on port %d; want %d", w.ParentPort(), base)
	}
	want := []string{"127.0.0.1:" + strconv.Itoa(base+1), "127.0.0.1:" + strconv.Itoa(base+2)}
	if got := w.Vantages(); !slices.Equal(got, want) {
		t.Errorf("vantages %q; want %q", got, want)
	}
	if resp := query(t, want[1], "tcp", w.Domains()[0].Name, 1); resp == nil {
		t.Error("no answer from the last vantage over TCP")
	}
	// A second world on the same ports does not start.
	if w2, err := simnet.Start(t.Context(), simnet.Config{Seed: 3, Vantages: 2, Port: base}); err == nil {
		w2.Close()
		t.Error("a second world started on the ports of the first")
	}
}

func TestWriteConfig(t *testing.T) {
	w := start(t, simnet.Config{Seed: 5})
	// Into a directory that does not exist yet, as the README's example
	// writes sim/fluxwatch.yaml.
	dir := filepath.Join(t.TempDir(), "sim")
	files, err := w.WriteConfig(filepath.Join(dir, "sim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (simnet.ConfigFiles{Config: filepath.Join(dir, "sim.yaml"), DB: filepath.Join(dir, "sim.db"),
		ASNTable: filepath.Join(dir, "sim.asn.tsv"), Allowlist: filepath.Join(dir, "sim.allowlist.txt"),
		Seeds: filepath.Join(dir, "sim.seeds.txt")}); files != want {
		t.Fatalf("files %+v; want %+v", files, want)
	}
	b, err := os.ReadFile(files.Config)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		DB         string   `yaml:"db"`
		Resolvers  []string `yaml:"resolvers"`
		ParentPort int      `yaml:"parent_port"`
		QPS        *float64 `yaml:"qps"`
		ASNDB      []string `yaml:"asn_db"`
		Allowlist  []string `yaml:"allowlist"`
		Daemon     struct {
			SeedFiles []string `yaml:"seed_files"`
		} `yaml:"daemon"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if c.DB != files.DB || !slices.Equal(c.Resolvers, w.Vantages()) || c.ParentPort != w.ParentPort() || c.QPS == nil || *c.QPS != 0 ||
		!slices.Equal(c.ASNDB, []string{files.ASNTable}) || !slices.Equal(c.Allowlist, []string{files.Allowlist}) ||
		!slices.Equal(c.Daemon.SeedFiles, []string{files.Seeds}) {
		t.Errorf("config:\n%s", b)
	}
	for path, write := range map[string]func(*strings.Builder) error{
		files.ASNTable:  func(b *strings.Builder) error { return w.WriteASNTable(b) },
		files.Allowlist: func(b *strings.Builder) error { return w.WriteAllowlist(b) },
		files.Seeds:     func(b *strings.Builder) error { return w.WriteSeeds(b) },
	} {
		var want strings.Builder
		write(&want)
		if got, err := os.ReadFile(path); err != nil || string(got) != want.String() {
			t.Errorf("%s: %v\n%.200s", path, err, got)
		}
	}
	if _, err := os.Stat(files.DB); !os.IsNotExist(err) {
		t.Errorf("the database was touched: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
}
