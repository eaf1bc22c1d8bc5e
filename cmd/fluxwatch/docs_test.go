package main

import (
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/fluxwatch/fluxwatch/config"
)

// yamlKeys lists the dotted YAML keys of a config struct.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == t.PkgPath() {
			keys = append(keys, yamlKeys(f.Type, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	return keys
}

// TestEveryConfigKeyIsDocumented keeps the README's table and the example
// file in step with the Config struct.
func TestEveryConfigKeyIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../fluxwatch.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var set map[string]any
	if err := yaml.Unmarshal(example, &set); err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeOf(config.Config{}), "") {
		if !strings.Contains(string(readme), "| `"+key+"` |") {
			t.Errorf("README's configuration table lacks %q", key)
		}
		var v any = set
		found := true
		for _, part := range strings.Split(key, ".") {
			m, _ := v.(map[string]any)
			v, found = m[part]
		}
		if !found {
			t.Errorf("fluxwatch.example.yaml does not set %q", key)
		}
	}
	if _, err := config.Load("../../fluxwatch.example.yaml"); err != nil {
		t.Errorf("the example config does not load: %v", err)
	}
}

// loadSettings runs args on a command tree with one more command,
// "settings", that has the crawl and classify flags and only loads its
// settings; it returns them and the command's flags, loaded.
func loadSettings(t *testing.T, args ...string) (*settings, *config.Config, error) {
	t.Helper()
	std := &stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard}
	cmd := &cobra.Command{Use: "settings", Args: noArgs}
	s := newFlags(cmd, std)
	s.crawlFlags()
	s.classifyFlags()
	var cfg *config.Config
	cmd.RunE = func(*cobra.Command, []string) error {
		var err error
		cfg, err = s.load()
		return err
	}
	root := newRoot(std)
	root.AddCommand(cmd)
	root.SetArgs(args)
	_, err := root.ExecuteC()
	return s, cfg, err
}

// TestFlagsOverrideConfigFile checks the layering: defaults, then the file,
// then only the flags that were given, wherever they stand; a repeatable
// flag replaces the file's list. Loading again (the daemon's SIGHUP) reads
// the file again under the same flags.
func TestFlagsOverrideConfigFile(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	os.WriteFile(path, []byte("qps: 5\nworkers: 3\nresolvers: [192.0.2.1]\nqtypes: [A]\nasn_db: [file.tsv]\nwindow: 2h\n"), 0o644)
	s, cfg, err := loadSettings(t, "--config", path, "settings", "--qps", "7", "--resolver", "192.0.2.8",
		"--resolver", "192.0.2.9:5353", "--qtypes", "A,NS")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QPS != 7 || cfg.Workers != 3 || cfg.Timeout != config.Default().Timeout || cfg.Window != 2*time.Hour ||
		!slices.Equal(cfg.Resolvers, []string{"192.0.2.8", "192.0.2.9:5353"}) ||
		!slices.Equal(cfg.QTypes, []string{"A", "NS"}) || !slices.Equal(cfg.ASNDB, []string{"file.tsv"}) {
		t.Fatalf("layered config: %+v", cfg)
	}
	os.WriteFile(path, []byte("qps: 9\nworkers: 4\nresolvers: [192.0.2.1]\n"), 0o644)
	if cfg, err = s.load(); err != nil {
		t.Fatal(err)
	}
	if cfg.QPS != 7 || cfg.Workers != 4 || cfg.Window != config.Default().Window || len(cfg.Resolvers) != 2 {
		t.Fatalf("loaded again: %+v", cfg)
	}
	if _, _, err := loadSettings(t, "settings", "--config", path, "--qps", "-1"); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "qps: -1 is negative") {
		t.Fatalf("a bad flag value: %v", err)
	}
}

// TestEveryCommandIsDocumented keeps the README naming every command.
func TestEveryCommandIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	root := newRoot(&stdio{})
	for _, p := range commandPaths(root) {
		c, _, _ := root.Find(p)
		if len(p) == 0 || !c.IsAvailableCommand() || p[0] == "completion" && len(p) > 1 {
			continue
		}
		if path := strings.Join(p, " "); !strings.Contains(string(readme), path) {
			t.Errorf("README does not name %q", path)
		}
	}
}
