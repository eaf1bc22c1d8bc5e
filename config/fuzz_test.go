package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxwatch/fluxwatch/config"
)

// FuzzLoad loads arbitrary files. A file that loads is valid; a file that
// does not gets errors that each begin with the file's name, so that a
// user with several configs knows which one to fix.
func FuzzLoad(f *testing.F) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(full),
		"",
		"# nothing\n",
		"workers: 0\n",
		"workers: lots\n",
		"wrokers: 3\n",
		"timeout: soon\nretries: -1\n",
		"daemon:\n  crawl: \"@sometimes\"\n  exports:\n    - format: pdf\n      out: \"\"\n",
		"qtypes: [A, BOGUS]\n",
		"resolvers: [\"not an address\"]\n",
		"vantage_qps:\n  192.0.2.1: -1\n",
		"rpz_zone: a..b\n",
		"min_interval: 2h\n",
		"max_interval: 1s\n",
		"base: &b {workers: 2}\n",
		"<<: {workers: 0}\n",
		"<<: [{workers: 2}, {sockets: 0}]\nworkers: 0\n",
		"vantage_qps: &v {workers: 0}\n<<: *v\n",
		"daemon: &d {exports: [{format: pdf, out: x}], <<: *d}\n",
		"a: &a {b: *a}\n",
		"a: &a {k: 1}\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: {<<: [*d, *d]}\n",
		"- a\n- b\n",
		"workers: [\n",
		"\t\tworkers: 1\n",
		"db: \"\"\nlog_level: loud\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path)
		if err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("Load succeeded but Validate() = %v", err)
			}
			return
		}
		errs := []error{err}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			errs = joined.Unwrap()
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), path+":") {
				t.Errorf("error does not begin with %s: %q", path, e)
			}
		}
	})
}
