package ipmeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A tables directory holds the IP tables `fluxwatch ipdb update` keeps, as
// geoipupdate keeps MaxMind's: each update is downloaded into a directory
// of its own (tables-STAMP), checked, and then made current by replacing
// the symbolic link "current" in one rename, so a reader sees the old set
// or the new one, never a mix; a failed or corrupt download leaves the
// current set as it was. manifest.json in each set says where it came
// from and when.

// DefaultSource is where ip-location-db's packages are published as plain
// files: SOURCE + PACKAGE + "/" + FILE.
const DefaultSource = "https://cdn.jsdelivr.net/npm/@ip-location-db/"

// TableFile is one file of a tables directory.
type TableFile struct {
	Package, Name string
	Kind          Kind
}

// TableFiles are what an update fetches: ip-location-db's IP-to-ASN tables
// (RouteViews and DB-IP, CC BY 4.0) and the country tables derived from
// them (CC0).
var TableFiles = []TableFile{
	{"asn", "asn-ipv4.csv", ASN},
	{"asn", "asn-ipv6.csv", ASN},
	{"asn-country", "asn-country-ipv4.csv", Country},
	{"asn-country", "asn-country-ipv6.csv", Country},
}

// Manifest describes one set of tables.
type Manifest struct {
	Source  string         `json:"source"`
	Updated time.Time      `json:"updated"`
	Files   []ManifestFile `json:"files"`
}

// ManifestFile is one table of a set.
type ManifestFile struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	Ranges int    `json:"ranges"`
}

// UpdateOptions configure Update. Dir is required.
type UpdateOptions struct {
	Dir    string
	Source string       // default DefaultSource
	Client *http.Client // default: a client with a 10-minute timeout
	// MaxBytes caps each download (default 512 MiB).
	MaxBytes int64
	Now      func() time.Time
}

// ErrNoTables means a directory holds no current set of tables.
var ErrNoTables = errors.New("no IP tables")

const (
	currentLink  = "current"
	manifestName = "manifest.json"
)

// Update downloads every table into a new set under opts.Dir, checks that
// each parses and that none has fewer than half the ranges of the table it
// replaces (a cut-short download), and makes the set current. Sets older
// than the one replaced are removed.
func Update(ctx context.Context, opts UpdateOptions) (Manifest, error) {
	if opts.Dir == "" {
		return Manifest{}, errors.New("ipdb update: no directory")
	}
	source := opts.Source
	if source == "" {
		source = DefaultSource
	}
	if !strings.HasSuffix(source, "/") {
		source += "/"
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = 512 << 20
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return Manifest{}, fmt.Errorf("ipdb update: %w", err)
	}
	old, _ := ReadManifest(opts.Dir)
	oldRanges := map[string]int{}
	for _, f := range old.Files {
		oldRanges[f.Name] = f.Ranges
	}
	tmp, err := os.MkdirTemp(opts.Dir, ".update-")
	if err != nil {
		return Manifest{}, fmt.Errorf("ipdb update: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	m := Manifest{Source: source, Updated: now().UTC()}
	for _, tf := range TableFiles {
		url := source + tf.Package + "/" + tf.Name
		path := filepath.Join(tmp, tf.Name)
		n, err := download(ctx, client, url, path, limit)
		if err != nil {
			return Manifest{}, fmt.Errorf("ipdb update: %w", err)
		}
		t, err := LoadFile(path)
		if err != nil {
			return Manifest{}, fmt.Errorf("ipdb update: %s does not parse: %w", url, err)
		}
		if t.Len() == 0 {
			return Manifest{}, fmt.Errorf("ipdb update: %s holds no ranges", url)
		}
		if was := oldRanges[tf.Name]; t.Len() < was/2 {
			return Manifest{}, fmt.Errorf("ipdb update: %s holds %d ranges, under half the %d of the tables in use: cut short?", url, t.Len(), was)
		}
		m.Files = append(m.Files, ManifestFile{Name: tf.Name, Bytes: n, Ranges: t.Len()})
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	if err := writeSynced(filepath.Join(tmp, manifestName), append(b, '\n')); err != nil {
		return Manifest{}, fmt.Errorf("ipdb update: %w", err)
	}
	set := "tables-" + m.Updated.Format("20060102T150405.000Z")
	if err := os.Rename(tmp, filepath.Join(opts.Dir, set)); err != nil {
		return Manifest{}, fmt.Errorf("ipdb update: %w", err)
	}
	done = true
	previous, _ := os.Readlink(filepath.Join(opts.Dir, currentLink))
	link := filepath.Join(opts.Dir, ".current-new")
	os.Remove(link)
	if err := os.Symlink(set, link); err != nil {
		return Manifest{}, fmt.Errorf("ipdb update: %w", err)
	}
	if err := os.Rename(link, filepath.Join(opts.Dir, currentLink)); err != nil {
		return Manifest{}, fmt.Errorf("ipdb update: %w", err)
	}
	syncDir(opts.Dir)
	// Keep the set just replaced (a reader may still be loading it); drop
	// the ones before.
	entries, _ := os.ReadDir(opts.Dir)
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "tables-") && n != set && n != previous {
			os.RemoveAll(filepath.Join(opts.Dir, n))
		}
	}
	return m, nil
}

// download fetches url into path, at most limit bytes, and syncs it.
func download(ctx context.Context, client *http.Client, url, path string, limit int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("fetching %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, io.LimitReader(resp.Body, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("fetching %s: larger than %d bytes", url, limit)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("fetching %s: %w", url, err)
	}
	return n, nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// ReadManifest reads the manifest of dir's current set, or fails with
// ErrNoTables.
func ReadManifest(dir string) (Manifest, error) {
	set, err := currentSet(dir)
	if err != nil {
		return Manifest{}, err
	}
	return readManifest(set)
}

// currentSet resolves dir's current link once: the directory of one set.
func currentSet(dir string) (string, error) {
	target, err := os.Readlink(filepath.Join(dir, currentLink))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w in %s (run fluxwatch ipdb update)", ErrNoTables, dir)
	}
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, target), nil
}

func readManifest(set string) (Manifest, error) {
	path := filepath.Join(set, manifestName)
	b, err := os.ReadFile(path)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// LoadDir loads dir's current set of tables into db and returns its
// manifest; ErrNoTables when there is none. The link is resolved once, so
// an update that swaps sets meanwhile cannot hand it a mix of two (the
// set it resolved stays until the update after).
func (db *DB) LoadDir(dir string) (Manifest, error) {
	set, err := currentSet(dir)
	if err != nil {
		return Manifest{}, err
	}
	m, err := readManifest(set)
	if err != nil {
		return Manifest{}, err
	}
	for _, tf := range TableFiles {
		if err := db.Open(filepath.Join(set, tf.Name), tf.Kind); err != nil {
			return Manifest{}, fmt.Errorf("loading IP tables: %w", err)
		}
	}
	return m, nil
}
