package web_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fluxwatch/fluxwatch/web"
)

// chromium finds Debian's chromium. Without it the test is skipped, unless
// FLUXWATCH_REQUIRE_TOOLS=1 (CI), where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if os.Getenv("FLUXWATCH_REQUIRE_TOOLS") == "1" {
		t.Fatal("chromium is not installed and FLUXWATCH_REQUIRE_TOOLS=1: run scripts/install-test-deps.sh")
	}
	t.Skip("chromium is not installed: scripts/install-test-deps.sh installs Debian's chromium")
	return ""
}

// drawn is what the browser reports of a rendered domain page.
type drawn struct {
	Marks       int     `json:"marks"`
	DataPoints  int     `json:"dataPoints"`
	MarkWidth   float64 `json:"markWidth"`
	MarkHeight  float64 `json:"markHeight"`
	ChartWidth  float64 `json:"chartWidth"`
	ChartHeight float64 `json:"chartHeight"`
	Circles     int     `json:"circles"`
	NSMarks     int     `json:"nsMarks"`
	HeaderFlex  bool    `json:"headerFlex"`
}

// measure runs in the page: it counts the marks inside the charts and
// takes the rendered size of the timeline and of its first mark.
const measure = `(() => {
	const svg = document.querySelector('svg#timeline');
	if (!svg) return null;
	const mark = svg.querySelector('rect.m');
	const box = mark ? mark.getBoundingClientRect() : {width: 0, height: 0};
	const size = svg.getBoundingClientRect();
	return {
		marks: svg.querySelectorAll('rect.m').length,
		dataPoints: Number(svg.dataset.points),
		markWidth: box.width, markHeight: box.height,
		chartWidth: size.width, chartHeight: size.height,
		circles: document.querySelectorAll('svg#counts circle').length,
		nsMarks: document.querySelectorAll('svg#ns rect.m').length,
		headerFlex: getComputedStyle(document.querySelector('header.top')).display === 'flex',
	};
})()`

// TestWebBrowserDrawsTimeline serves the web view of a crawled simulated
// world on loopback, and in headless Chromium searches for a double-flux
// domain, follows its link and checks that the timeline is drawn.
func TestWebBrowserDrawsTimeline(t *testing.T) {
	exe := chromium(t)
	w := crawledWorld(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: web.New(w.store, w.meta, web.Options{}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String()

	// The whole browser session is bounded; the browser talks to the test
	// over a pipe (no debugging port) and resolves no name but loopback.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // the tests run as root
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.WindowSize(1280, 1600),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	link := chromedp.CSS(`#domains a[href="/domain/` + w.double + `"]`)
	err = chromedp.Do(bctx,
		chromedp.Navigate(base+"/"),
		chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), w.double+"\r"),
		// The results page, not the page the search was typed on (which
		// lists the link too, and goes away under a click): its field
		// holds the query as an attribute.
		chromedp.WaitVisible(chromedp.CSS(`input[name="q"][value="`+w.double+`"]`)),
		chromedp.WaitVisible(link),
		chromedp.Click(link),
		chromedp.WaitVisible(chromedp.CSS(`svg#timeline`)),
	)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the browser did not show the timeline of %s within 60 s", w.double)
	}
	if err != nil {
		t.Fatalf("browsing to %s: %v", w.double, err)
	}
	url, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil || url != base+"/domain/"+w.double {
		t.Fatalf("the search result led to %q (%v)", url, err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[*drawn](measure))
	if err != nil || got == nil {
		t.Fatalf("measuring the page: %v (%v)", err, got)
	}
	t.Logf("rendered: %+v", *got)
	if got.Marks == 0 || got.Marks != got.DataPoints {
		t.Errorf("the timeline shows %d marks; data-points says %d", got.Marks, got.DataPoints)
	}
	if got.MarkWidth <= 0 || got.MarkHeight <= 0 || got.ChartWidth < 400 || got.ChartHeight < 50 {
		t.Errorf("not drawn: chart %.0f×%.0f px, first mark %.1f×%.1f px", got.ChartWidth, got.ChartHeight, got.MarkWidth, got.MarkHeight)
	}
	if got.Circles == 0 || got.NSMarks == 0 {
		t.Errorf("counts chart %d points, name-server chart %d marks", got.Circles, got.NSMarks)
	}
	if !got.HeaderFlex {
		t.Error("the stylesheet did not apply (blocked by the page's Content-Security-Policy?)")
	}
}

// networkDrawn is what the browser reports of a rendered network page.
type networkDrawn struct {
	Marks       int     `json:"marks"`
	DataMarks   int     `json:"dataMarks"`
	Rows        int     `json:"rows"`
	MarkWidth   float64 `json:"markWidth"`
	MarkHeight  float64 `json:"markHeight"`
	ChartWidth  float64 `json:"chartWidth"`
	ChartHeight float64 `json:"chartHeight"`
	NavCurrent  string  `json:"navCurrent"`
}

const measureNetwork = `(() => {
	const svg = document.querySelector('svg#network');
	if (!svg) return null;
	const mark = svg.querySelector('rect.m');
	const box = mark ? mark.getBoundingClientRect() : {width: 0, height: 0};
	const size = svg.getBoundingClientRect();
	const current = document.querySelector('header.top nav a[aria-current="page"]');
	return {
		marks: svg.querySelectorAll('rect.m').length,
		dataMarks: Number(svg.dataset.marks),
		rows: document.querySelectorAll('#network-domains tbody tr').length,
		markWidth: box.width, markHeight: box.height,
		chartWidth: size.width, chartHeight: size.height,
		navCurrent: current ? current.textContent : '',
	};
})()`

// TestWebBrowserDrawsNetwork opens the networks page in headless Chromium
// from the navigation, follows the largest network's link and checks that
// its picture is drawn.
func TestWebBrowserDrawsNetwork(t *testing.T) {
	exe := chromium(t)
	w := crawledWorld(t)
	n := largestNetwork(t, w)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: web.New(w.store, w.meta, web.Options{}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.WindowSize(1280, 1600),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	link := chromedp.CSS(`#networks a[href="/network/` + n.ID + `"]`)
	err = chromedp.Do(bctx,
		chromedp.Navigate(base+"/"),
		chromedp.Click(chromedp.CSS(`header.top nav a[href="/networks"]`)),
		chromedp.WaitVisible(link),
		chromedp.Click(link),
		chromedp.WaitVisible(chromedp.CSS(`svg#network`)),
	)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the browser did not show the picture of %s within 60 s", n.ID)
	}
	if err != nil {
		t.Fatalf("browsing to %s: %v", n.ID, err)
	}
	url, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil || url != base+"/network/"+n.ID {
		t.Fatalf("the networks page led to %q (%v)", url, err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[*networkDrawn](measureNetwork))
	if err != nil || got == nil {
		t.Fatalf("measuring the page: %v (%v)", err, got)
	}
	t.Logf("rendered: %+v", *got)
	if got.Marks == 0 || got.Marks != got.DataMarks || got.Rows != len(n.Domains) {
		t.Errorf("the picture shows %d marks (data-marks %d), the table %d domains of %d", got.Marks, got.DataMarks, got.Rows, len(n.Domains))
	}
	if got.MarkWidth <= 0 || got.MarkHeight <= 0 || got.ChartWidth < 400 || got.ChartHeight < 12*float64(len(n.Domains)) {
		t.Errorf("not drawn: picture %.0f×%.0f px, first mark %.1f×%.1f px", got.ChartWidth, got.ChartHeight, got.MarkWidth, got.MarkHeight)
	}
	if got.NavCurrent != "Networks" {
		t.Errorf("the navigation marks %q as current", got.NavCurrent)
	}
}
