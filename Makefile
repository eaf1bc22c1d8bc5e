# fluxwatch: `make demo` runs the pipeline against the simulated world,
# `make test` installs what the tests need and runs the whole suite.

GO ?= go

.PHONY: all build demo man test test-deps vet bench bench-go fuzz clean

all: build

build:
	$(GO) build -buildvcs=auto -o fluxwatch ./cmd/fluxwatch

demo:
	$(GO) run ./cmd/fluxwatch demo

# A man page per command, from the definitions the help shows, in ./man
# (man -l man/fluxwatch-crawl.1).
man:
	$(GO) run ./cmd/fluxwatch man --out man

test-deps:
	./scripts/install-test-deps.sh

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The tests that need a Debian tool or server (named, unbound, kresd,
# pdns_recursor, chromium, nft, ipset) skip when it is missing, except here:
# test-deps installed them, so a missing one is a failure.
test: test-deps vet
	FLUXWATCH_REQUIRE_SERVERS=1 FLUXWATCH_REQUIRE_TOOLS=1 $(GO) test -race -count=1 ./...

# End-to-end crawl benchmark against a local knotd (scripts/bench/run.sh
# lists its settings: make bench W=128 NAMES=50000 KEEP=1 ...).
bench:
	GO="$(GO)" ./scripts/bench/run.sh

# Every Go benchmark (codec, engine, storage, scheduler, classifier, tables).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# A run of every fuzz target (go test runs one -fuzz target at a time);
# FUZZTIME=10m for a long run. `make test` runs their seed corpora.
FUZZTIME ?= 20s
FUZZ_TARGETS = seeds:FuzzNormalize seeds:FuzzParse storage:FuzzProbeCodec storage:FuzzSetCodec \
	crawler:FuzzNormalize config:FuzzLoad results:FuzzExport simnet:FuzzRespond simnet:FuzzRegistryRespond \
	feed:FuzzIXFR importer:FuzzDig importer:FuzzJSONL crawler:FuzzUnpackAnswer

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

clean:
	rm -rf fluxwatch fluxwatch-demo man
