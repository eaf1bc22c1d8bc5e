package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/ipmeta"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/simnet"
	"github.com/fluxwatch/fluxwatch/storage"
)

// world is a database made by crawling a small simulated world through
// its loopback vantages and classifying it, shared by the tests of the
// package (building it takes a few seconds).
type world struct {
	store    *storage.Store
	meta     *ipmeta.DB
	vantages []string
	verdicts map[string]classify.Verdict
	// single and double are domains the world made flux of each kind and
	// the classifier listed as such.
	single, double string
}

var (
	worldOnce sync.Once
	shared    *world
	worldErr  error
	worldDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.store.Close()
	}
	if worldDir != "" {
		os.RemoveAll(worldDir)
	}
	os.Exit(code)
}

// crawledWorld returns the shared database, building it on first use.
func crawledWorld(t *testing.T) *world {
	t.Helper()
	worldOnce.Do(func() {
		if worldDir, worldErr = os.MkdirTemp("", "fluxwatch-web-"); worldErr == nil {
			shared, worldErr = buildWorld(worldDir)
		}
	})
	if worldErr != nil {
		t.Fatalf("crawling the simulated world: %v", worldErr)
	}
	return shared
}

func buildWorld(dir string) (*world, error) {
	ctx := context.Background()
	sim, err := simnet.Start(ctx, simnet.Config{Seed: 4, Speed: 300, SingleFlux: 2, DoubleFlux: 2, Benign: 3, Broken: 1,
		GeoDNS: -1, Pools: -1, Migrations: -1, SlowFlux: -1, NarrowFlux: -1,
		BigCDNs: -1, SharedHosting: -1, LoadBalancers: -1}.WithNetworks())
	if err != nil {
		return nil, err
	}
	defer sim.Close()
	store, err := storage.Open(filepath.Join(dir, "fw.db"))
	if err != nil {
		return nil, err
	}
	w, err := crawlAndClassify(ctx, sim, store)
	if err != nil {
		store.Close()
		return nil, err
	}
	return w, nil
}

func crawlAndClassify(ctx context.Context, sim *simnet.World, store *storage.Store) (*world, error) {
	var names []string
	for _, d := range sim.Domains() {
		names = append(names, d.Name)
	}
	if _, err := store.AddDomains(names, "simnet", sim.Now()); err != nil {
		return nil, err
	}
	var asn bytes.Buffer
	if err := sim.WriteASNTable(&asn); err != nil {
		return nil, err
	}
	table, err := ipmeta.Load(&asn, "asn.tsv")
	if err != nil {
		return nil, err
	}
	meta := &ipmeta.DB{}
	meta.AddASN(table)

	w := &world{store: store, meta: meta, vantages: sim.Vantages(), verdicts: map[string]classify.Verdict{}}
	var vantages []scheduler.Vantage
	for _, v := range w.vantages {
		vantages = append(vantages, scheduler.Vantage{Addr: v})
	}
	opts := crawler.ClientOptions{Timeout: time.Second}
	direct := opts
	direct.NoRecursion = true
	c := crawler.Crawler{NSHosts: true, Delegation: true, Direct: crawler.NewClient(direct), ParentPort: sim.ParentPort()}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sched := scheduler.New(crawler.NewClient(opts), c, store, scheduler.Options{Vantages: vantages, Workers: 8, Now: sim.Now, Logger: quiet})
	wr := store.NewWriter(storage.WriterOptions{})
	// Six rounds three simulated minutes apart: longer than the flux TTLs.
	if _, err := sched.Run(ctx, scheduler.Plan{Rounds: 6, Interval: 3 * time.Minute, Sleep: sim.Sleep, Domains: store.Active}, wr); err != nil {
		wr.Close()
		return nil, err
	}
	if err := wr.Close(); err != nil {
		return nil, err
	}
	cl := classify.Classifier{Meta: meta, CDNSuffixes: classify.DefaultCDNSuffixes}
	if _, err := cl.Run(ctx, store, 24*time.Hour, sim.Now(), func(v classify.Verdict) error {
		w.verdicts[v.Domain] = v
		truth, _ := sim.Truth(v.Domain)
		switch {
		case v.Verdict == classify.SingleFlux && truth.Class == simnet.ClassSingleFlux && w.single == "":
			w.single = v.Domain
		case v.Verdict == classify.DoubleFlux && truth.Class == simnet.ClassDoubleFlux && w.double == "":
			w.double = v.Domain
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if w.single == "" || w.double == "" {
		return nil, fmt.Errorf("the classifier found no single-flux (%q) or no double-flux (%q) domain of the world's", w.single, w.double)
	}
	return w, nil
}
