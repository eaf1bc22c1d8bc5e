package simnet

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigFiles are the files WriteConfig writes, and the database the
// config names. Every path is absolute.
type ConfigFiles struct {
	Config    string // the fluxwatch config
	DB        string // the database it names: not written
	ASNTable  string // asn_db: the world's IP-to-ASN table (iptoasn TSV)
	Allowlist string // allowlist: the world's public pools
	Seeds     string // daemon.seed_files: the world's domains
}

// fluxwatchConfig is what WriteConfig sets of fluxwatch's config: its
// YAML keys are fluxwatch's (config.Config), and the rest keeps its
// defaults.
type fluxwatchConfig struct {
	DB         string   `yaml:"db"`
	Resolvers  []string `yaml:"resolvers"`
	ParentPort int      `yaml:"parent_port"`
	QPS        float64  `yaml:"qps"`
	ASNDB      []string `yaml:"asn_db"`
	Allowlist  []string `yaml:"allowlist"`
	Daemon     struct {
		SeedFiles []string `yaml:"seed_files"`
	} `yaml:"daemon"`
}

// WriteConfig writes a fluxwatch config for the running world to path,
// and beside it the world's ASN table, allowlist and seed list, named
// after path (sim.yaml: sim.asn.tsv, sim.allowlist.txt, sim.seeds.txt).
// The config names them by absolute path, with the world's vantages as
// resolvers, its registry's port as parent_port, no rate limit (the
// servers are the world's own) and the database sim.db beside it, so
// that `fluxwatch crawl`, `classify` and `daemon` take it as it is. Each
// file is written whole (a temporary file renamed into place); the
// database is left to the caller.
func (w *World) WriteConfig(path string) (ConfigFiles, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ConfigFiles{}, fmt.Errorf("simnet: writing config: %w", err)
	}
	// The directory is made if missing, as for any output file.
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return ConfigFiles{}, fmt.Errorf("simnet: writing config: %w", err)
	}
	stem := strings.TrimSuffix(abs, filepath.Ext(abs))
	files := ConfigFiles{Config: abs, DB: stem + ".db", ASNTable: stem + ".asn.tsv",
		Allowlist: stem + ".allowlist.txt", Seeds: stem + ".seeds.txt"}
	for _, f := range []struct {
		path  string
		write func(io.Writer) error
	}{{files.ASNTable, w.WriteASNTable}, {files.Allowlist, w.WriteAllowlist}, {files.Seeds, w.WriteSeeds}} {
		if err := writeFile(f.path, f.write); err != nil {
			return ConfigFiles{}, err
		}
	}
	c := fluxwatchConfig{DB: files.DB, Resolvers: w.Vantages(), ParentPort: w.ParentPort(),
		ASNDB: []string{files.ASNTable}, Allowlist: []string{files.Allowlist}}
	c.Daemon.SeedFiles = []string{files.Seeds}
	body, err := yaml.Marshal(c)
	if err != nil {
		return ConfigFiles{}, fmt.Errorf("simnet: writing config: %w", err)
	}
	ports := "Its ports were picked at random: write this file again when the world starts again."
	if w.cfg.Port != 0 {
		ports = fmt.Sprintf("Its ports are fixed (from %d on): this file holds for the world started on them.", w.cfg.Port)
	}
	err = writeFile(abs, func(out io.Writer) error {
		_, err := fmt.Fprintf(out, "# fluxwatch config for the simulated world of seed %d, written by `fluxwatch simnet`.\n"+
			"# %s\n# Its servers are the world's own, on loopback: no rate limit (qps 0).\n%s", w.cfg.Seed, ports, body)
		return err
	})
	return files, err
}

// writeFile writes a file whole: into a temporary file beside it, renamed
// into place once written.
func writeFile(path string, write func(io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("simnet: writing %s: %w", path, err)
	}
	_, err = tmp.Write(b.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("simnet: writing %s: %w", path, err)
	}
	return nil
}
