package main

import (
	"os"
	"runtime"
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
