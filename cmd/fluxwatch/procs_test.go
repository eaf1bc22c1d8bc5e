package main

import (
	"runtime/debug"
	"testing"
)

func TestProcsFor(t *testing.T) {
	for _, c := range []struct {
		setting int
		envSet  bool
		current int
		want    int
	}{
		{0, false, 2, 1},  // half the CPUs
		{0, false, 1, 1},  // at least one
		{0, false, 16, 8}, //
		{0, true, 16, 16}, // GOMAXPROCS in the environment wins over the default
		{3, true, 16, 3},  // the setting wins over both
		{4, false, 2, 4},
	} {
		if got := procsFor(c.setting, c.envSet, c.current); got != c.want {
			t.Errorf("procsFor(%d, %v, %d) = %d; want %d", c.setting, c.envSet, c.current, got, c.want)
		}
	}
}

// A crawl collects at measureGCPercent, but a command it runs for another
// process (an export, a classification) has Go's default back while any
// such command runs, and the crawl's setting returns when the last ends.
func TestCommandsRunForOthersCollectAtTheDefault(t *testing.T) {
	old := debug.SetGCPercent(measureGCPercent)
	defer debug.SetGCPercent(old)
	measureGC.mu.Lock()
	measureGC.on = true
	measureGC.mu.Unlock()
	defer func() {
		measureGC.mu.Lock()
		measureGC.on = false
		measureGC.mu.Unlock()
	}()
	percent := func() int {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	first, second := defaultGCWhile(), defaultGCWhile()
	if p := percent(); p != 100 {
		t.Fatalf("GOGC %d while two commands run for others; want 100", p)
	}
	first()
	if p := percent(); p != 100 {
		t.Fatalf("GOGC %d while one still runs; want 100", p)
	}
	second()
	if p := percent(); p != measureGCPercent {
		t.Fatalf("GOGC %d once they ended; want %d", p, measureGCPercent)
	}
}
