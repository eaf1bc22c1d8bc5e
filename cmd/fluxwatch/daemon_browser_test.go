package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fluxwatch/fluxwatch/simnet"
)

// The daemon's own web view, end to end: the daemon crawls and classifies
// the simulated world and serves the view on its HTTP listener; headless
// Chromium opens a flux domain's page and finds its timeline drawn.
func TestDaemonWebViewInChromium(t *testing.T) {
	exe, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("FLUXWATCH_REQUIRE_TOOLS") == "1" {
			t.Fatal("chromium is not installed and FLUXWATCH_REQUIRE_TOOLS=1: run scripts/install-test-deps.sh")
		}
		t.Skip("chromium is not installed: scripts/install-test-deps.sh installs Debian's chromium")
	}
	w := startWorld(t, 17)
	var flux string
	for _, d := range w.Domains() {
		if d.Class == simnet.ClassSingleFlux {
			flux = d.Name
			break
		}
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	os.Mkdir(filepath.Join(dir, "incoming"), 0o755)
	os.WriteFile(filepath.Join(dir, "token"), []byte("a-token-that-is-long-enough\n"), 0o600)
	seedsFile := filepath.Join(dir, "seeds.txt")
	f, _ := os.Create(seedsFile)
	w.WriteSeeds(f)
	f.Close()
	cfgPath := filepath.Join(dir, "fluxwatch.yaml")
	daemonConfig(t, cfgPath, db, dir, w.Vantages(), "")
	b, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(b), "  seeds: ", "  seed_files: ["+seedsFile+"]\n  seeds: ", 1)), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- execute(ctx, []string{"daemon", "--config", cfgPath}, &stdio{in: strings.NewReader(""), out: &logs, err: &logs})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	base := "http://" + feedWaitForLog(t, &logs, `msg="feed: serving files" addr=(\S+)`)
	feedWaitUntil(t, 30*time.Second, flux+" classified as flux", func() bool {
		resp, err := http.Get(base + "/domain/" + flux + "?format=json")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var page struct {
			Verdict struct {
				Verdict string `json:"verdict"`
			} `json:"verdict"`
		}
		json.Unmarshal(body, &page)
		return page.Verdict.Verdict == "single-flux" || strings.Contains(string(body), `"verdict":"single-flux"`)
	})

	bctxTimeout, stop := context.WithTimeout(t.Context(), 60*time.Second)
	defer stop()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // the tests run as root
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 1600),
	)
	actx, acancel := chromedp.NewExecAllocator(bctxTimeout, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/domain/"+flux), chromedp.WaitVisible(chromedp.CSS(`svg#timeline`))); err != nil {
		t.Fatalf("opening %s in Chromium: %v\n%s", flux, err, logs.String())
	}
	type counts struct {
		Marks  int `json:"marks"`
		Points int `json:"points"`
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[*counts](`(() => {
		const svg = document.querySelector('svg#timeline');
		return {marks: svg.querySelectorAll('rect.m').length, points: Number(svg.dataset.points)};
	})()`))
	if err != nil || got == nil || got.Marks == 0 || got.Marks != got.Points {
		t.Fatalf("timeline of %s: %+v (%v)", flux, got, err)
	}
}
