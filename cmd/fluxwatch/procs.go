package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
)

// Commands that measure (crawl, agent, daemon) run Go code on fewer CPUs
// than the machine has. The work per query is small, and most of a query's
// cost is the kernel's: on loopback the sending CPU also does the
// receiver's half of the network stack. Spread over every CPU, fluxwatch's
// goroutines wake each other across CPUs and compete with the kernel and
// with a local resolver for them; on the 2-core benchmark machine one CPU
// measured 10-20 % more names per second at a fifth less CPU per answer
// (BENCHMARKS.md).

// applyProcs is set by main: tests run commands in the test binary, whose
// GOMAXPROCS they leave alone.
var applyProcs = false

// procsFor is the GOMAXPROCS a measuring command runs with: the procs
// setting if not 0, else the current one if GOMAXPROCS is set in the
// environment, else half the current one (Go's default: the CPUs this
// process may use), at least one.
func procsFor(setting int, envSet bool, current int) int {
	switch {
	case setting > 0:
		return setting
	case envSet:
		return current
	}
	return max(1, current/2)
}

// useProcs applies the procs setting and returns the GOMAXPROCS in force.
func useProcs(setting int) int {
	if !applyProcs {
		return runtime.GOMAXPROCS(0)
	}
	n := procsFor(setting, os.Getenv("GOMAXPROCS") != "", runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(n)
	return n
}

// The commands that only measure (crawl, agent) keep little alive: a
// round's names, their ids and the probes in flight, tens of MB. They
// allocate fast, though (about 1.7 KB and 20 objects per probe), so at Go's
// default GOGC of 100 the collector marks that same small heap several
// times a second: 10-15 % of a crawl's CPU on the knotd benchmark. With
// measureGCPercent the heap may grow to five times what is alive before a
// collection, for a few tens of MB more (BENCHMARKS.md). GOGC in the
// environment wins. The daemon keeps the default: it also classifies and
// exports, whose live heap is larger.
const measureGCPercent = 400

// useMeasureGC sets measureGCPercent unless GOGC is set, and returns the
// GOGC in force, for the log.
func useMeasureGC() string {
	if v := os.Getenv("GOGC"); v != "" {
		return v
	}
	if !applyProcs {
		return "100"
	}
	measureGC.mu.Lock()
	measureGC.on = true
	debug.SetGCPercent(measureGCPercent)
	measureGC.mu.Unlock()
	return strconv.Itoa(measureGCPercent)
}

// measureGC is whether useMeasureGC set measureGCPercent, and how many
// commands run for others (through the control socket) have Go's default
// back meanwhile: an export or a classification keeps far more alive than
// a crawl, and five times that is not what the crawl's setting is for.
var measureGC struct {
	mu     sync.Mutex
	on     bool
	others int
}

// defaultGCWhile gives a command run for another process Go's default
// GOGC until the returned function is called.
func defaultGCWhile() (done func()) {
	measureGC.mu.Lock()
	defer measureGC.mu.Unlock()
	if !measureGC.on {
		return func() {}
	}
	if measureGC.others++; measureGC.others == 1 {
		debug.SetGCPercent(100)
	}
	return func() {
		measureGC.mu.Lock()
		defer measureGC.mu.Unlock()
		if measureGC.others--; measureGC.others == 0 {
			debug.SetGCPercent(measureGCPercent)
		}
	}
}
