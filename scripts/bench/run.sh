#!/usr/bin/env bash
# shellcheck disable=SC2154 # the NAME_figure variables are set by eval "$(figures NAME)"
# fluxwatch end-to-end benchmark: how fast the crawler measures names against
# a local authoritative server, compared with the ceiling dnsperf reaches on
# the same server in the same run. Run it as `make bench` or directly; it needs
# Go, root (or the tools already installed) and nothing but loopback.
#
# Phases:
#   1. deps     Install from Debian what is missing: knot (knotd, knotc),
#               dnsperf (dnsperf, resperf) and time (/usr/bin/time).
#   2. build    go build -o $WORK/fluxwatch ./cmd/fluxwatch (or use
#               $FLUXWATCH_BIN).
#   3. corpus   Generate the zone bench.test. and its inputs:
#                 headline  n000000..: NAMES names, one A each (every fourth
#                           also an AAAA); seeds-headline.txt, queries-a.txt
#                 mixed     m000000..: MIXED_NAMES names, 80% one stable A
#                           (half of them also an AAAA), 10% round-robin with
#                           4 A, 10% CNAME to an n-name; seeds-mixed.txt
#               plus SOA, NS ns.bench.test. and its A 127.0.0.1.
#   4. server   knotd -c knot.conf in the foreground as a child with one UDP,
#               one TCP and one background worker on $ADDR@$PORT (first free
#               port from 5353 up); wait until it answers; stopped on exit.
#   5. ceiling  dnsperf on the headline A queries: a few short runs to pick
#               clients/threads/outstanding, then one DNSPERF_SECONDS run with
#               the best; its "Queries per second" is the ceiling.
#   6. crawl    seeds add into a fresh database, then, with the defaults
#               a user gets:
#                 fluxwatch crawl --qps 0 --qtypes A --rounds 1 --json
#               under /usr/bin/time -v: names/s answered and stored, share
#               of the ceiling, CPU-seconds per 100k answers, peak RSS.
#               Alternating with it, the same tuned (--ns-hosts=false
#               --delegation=false --workers $W); each HEADLINE_RUNS times,
#               reported by the run of median names/s (a crawl lasts a few
#               seconds, the ceiling is a 15 s average). Then the mixed
#               corpus, --qtypes A,AAAA,NS
#               --rounds MIXED_ROUNDS --interval 0s, into another fresh
#               database: database bytes per stored observation. If
#               `crawl -h` lists --engine, the headline crawl again with
#               --engine naive.
#   7. dead     The stand-in resolver of scripts/bench/responder: DEAD_NAMES
#               names of which 30 % are never answered and 10 % after
#               800 ms, crawled with default flags but
#                 --qps DEAD_QPS --qtypes A --delegation=false
#                 --ns-hosts=false --rounds 1
#               once with the dead names spread at random and once with
#               them first in name order; elapsed time against the ideal
#               (names / rate + one timeout window). Then a full probe
#               (A, AAAA, NS, name servers' addresses, delegation) of
#               DEAD_NAMES names through a vantage that delays every
#               answer by 50 ms, at --qps SLOW_QPS: elapsed time against
#               queries sent / rate + three round trips.
#   8. report   All figures in one block, and as JSON in $WORK/results.json
#               (also copied to $RESULTS if set). Beside the ceiling and
#               each crawl: the share of the CPUs' time the hypervisor
#               gave to other guests meanwhile (steal in /proc/stat), which
#               slows every figure of a virtual machine.
#
# Settings (environment, or `make bench VAR=value`):
#   NAMES=200000       headline names (the seed list and dnsperf's queries)
#   MIXED_NAMES=50000  names of the mixed corpus
#   MIXED_ROUNDS=10    rounds of the mixed crawl
#   W=128              --workers of the tuned headline run (the others use
#                      the defaults)
#   HEADLINE_RUNS=3    crawls each of the headline and the tuned run; the
#                      median's figures are reported, with every run's names/s
#   DEAD_NAMES=10000   names of the dead-mix and slow-vantage runs
#   DEAD_QPS=1000      --qps of the dead-mix runs
#   SLOW_QPS=2000      --qps of the slow-vantage run
#   DEAD_ADDR=127.0.0.54  loopback address of the stand-in resolvers
#   ADDR=127.0.0.53    loopback address knotd listens on
#   PORT=              port (default: first free from 5353)
#   DNSPERF_SECONDS=15 length of the ceiling run (-l)
#   DNSPERF_TUNE_SECONDS=3  length of each tuning run (0 skips tuning)
#   DNSPERF_ARGS="-c 4 -T 2 -q 100"  dnsperf load when tuning is skipped
#   PIN=0              1 pins knotd to SERVER_CPUS and dnsperf and fluxwatch to
#                      CLIENT_CPUS with taskset (less run-to-run noise)
#   SERVER_CPUS=0      CLIENT_CPUS=1-(nproc-1)
#   BENCH_DIR=         work directory (default: mktemp -d)
#   KEEP=0             1 keeps the work directory
#   FLUXWATCH_BIN=     use this binary instead of building one
#   GO=go              the go command
#   RESULTS=           also copy results.json here
set -euo pipefail

NAMES=${NAMES:-200000}
MIXED_NAMES=${MIXED_NAMES:-50000}
MIXED_ROUNDS=${MIXED_ROUNDS:-10}
W=${W:-128}
HEADLINE_RUNS=${HEADLINE_RUNS:-3}
DEAD_NAMES=${DEAD_NAMES:-10000}
DEAD_QPS=${DEAD_QPS:-1000}
SLOW_QPS=${SLOW_QPS:-2000}
DEAD_ADDR=${DEAD_ADDR:-127.0.0.54}
ADDR=${ADDR:-127.0.0.53}
PORT=${PORT:-}
DNSPERF_SECONDS=${DNSPERF_SECONDS:-15}
DNSPERF_TUNE_SECONDS=${DNSPERF_TUNE_SECONDS:-3}
DNSPERF_ARGS=${DNSPERF_ARGS:-"-c 4 -T 2 -q 100"}
PIN=${PIN:-0}
SERVER_CPUS=${SERVER_CPUS:-0}
LAST_CPU=$(($(nproc) - 1))
CLIENT_CPUS=${CLIENT_CPUS:-$([ "$LAST_CPU" -le 1 ] && echo 1 || echo "1-$LAST_CPU")}
KEEP=${KEEP:-0}
GO=${GO:-go}
FLUXWATCH_BIN=${FLUXWATCH_BIN:-}
RESULTS=${RESULTS:-}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T0=$(date +%s)

log() { printf '[bench %4ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

case $ADDR in 127.*) ;; *) die "ADDR must be a loopback address (127.0.0.0/8), not $ADDR" ;; esac
case $DEAD_ADDR in 127.*) ;; *) die "DEAD_ADDR must be a loopback address (127.0.0.0/8), not $DEAD_ADDR" ;; esac
for v in NAMES MIXED_NAMES MIXED_ROUNDS W DNSPERF_SECONDS DNSPERF_TUNE_SECONDS DEAD_NAMES DEAD_QPS SLOW_QPS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
[ "$NAMES" -ge 1 ] || die "NAMES must be at least 1"
# With PIN=1 the server and the clients run on separate CPUs.
SERVER_PRE=()
CLIENT_PRE=()
if [ "$PIN" = 1 ]; then
	[ "$(nproc)" -ge 2 ] || die "PIN=1 needs at least 2 CPUs"
	SERVER_PRE=(taskset -c "$SERVER_CPUS")
	CLIENT_PRE=(taskset -c "$CLIENT_CPUS")
fi

# ---------------------------------------------------------------- work dir
if [ -n "${BENCH_DIR:-}" ]; then
	mkdir -p "$BENCH_DIR"
	WORK=$(cd "$BENCH_DIR" && pwd)
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/fluxwatch-bench.XXXXXX")
fi
KNOT_PID=
RESPONDER_PIDS=()
cleanup() {
	local rc=$? pid
	for pid in "$KNOT_PID" "${RESPONDER_PIDS[@]}"; do
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if [ "$KEEP" = 1 ]; then
		log "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log "work directory $WORK"
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
awk -v l="$LOAD_BEFORE" 'BEGIN { exit !(l > 0.5) }' &&
	log "warning: load average $LOAD_BEFORE before the run: other work on this machine skews every figure"

# cpu_ticks: the ticks the hypervisor took (steal) and all ticks so far,
# over every CPU (/proc/stat; on bare metal steal stays 0).
cpu_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit }' /proc/stat; }
# steal_pct BEFORE AFTER: the share of the CPUs' time the hypervisor gave
# to others between two cpu_ticks: time this machine's figures lost.
steal_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]
		printf "%.1f\n", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}

# ---------------------------------------------------------------- 1. deps
PATH=$PATH:/usr/sbin:/sbin # knotd and knotc live in /usr/sbin
need=()
command -v knotd >/dev/null 2>&1 && command -v knotc >/dev/null 2>&1 || need+=(knot)
command -v dnsperf >/dev/null 2>&1 && command -v resperf >/dev/null 2>&1 || need+=(dnsperf)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "need root to install: ${need[*]}"
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
KNOT_VERSION=$(knotd --version | sed -n 's/.*version \([^ ]*\).*/\1/p' | head -n1)
DNSPERF_VERSION=$(dnsperf -h 2>&1 | sed -n 's/^Version: *//p' | head -n1 || true)
[ -n "$DNSPERF_VERSION" ] || DNSPERF_VERSION=$(dpkg-query -W -f='${Version}' dnsperf 2>/dev/null || echo unknown)

# ---------------------------------------------------------------- 2. build
if [ -n "$FLUXWATCH_BIN" ]; then
	FW=$FLUXWATCH_BIN
	FW_SOURCE="binary $FW"
	log "using $FW"
else
	log "building fluxwatch"
	FW=$WORK/fluxwatch
	FW_SOURCE=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	git -C "$ROOT" diff --quiet HEAD -- '*.go' 2>/dev/null || FW_SOURCE="$FW_SOURCE with uncommitted changes"
	(cd "$ROOT" && "$GO" build -o "$FW" ./cmd/fluxwatch)
fi
log "building the stand-in resolver"
(cd "$ROOT" && "$GO" build -o "$WORK/responder" ./scripts/bench/responder)
GO_VERSION=$("$GO" env GOVERSION 2>/dev/null || echo unknown)

# ---------------------------------------------------------------- 3. corpus
log "generating zone: $NAMES headline names, $MIXED_NAMES mixed names"
ZONE=$WORK/bench.test.zone
awk -v n="$NAMES" -v m="$MIXED_NAMES" \
	-v zone="$ZONE" -v seeds="$WORK/seeds-headline.txt" -v queries="$WORK/queries-a.txt" \
	-v mseeds="$WORK/seeds-mixed.txt" 'BEGIN {
	print "$ORIGIN bench.test.\n$TTL 300" > zone
	print "@ 3600 IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 900 604800 300" > zone
	print "@ 3600 IN NS ns.bench.test." > zone
	print "ns 3600 IN A 127.0.0.1" > zone
	# headline: one A each, every fourth name also an AAAA
	for (i = 0; i < n; i++) {
		name = sprintf("n%06d", i)
		printf "%s 300 IN A 10.%d.%d.%d\n", name, int(i / 65536) % 128, int(i / 256) % 256, i % 256 > zone
		if (i % 4 == 0)
			printf "%s 300 IN AAAA 2001:db8::%x:%x\n", name, int(i / 65536), i % 65536 > zone
		print name ".bench.test" > seeds
		print name ".bench.test A" > queries
	}
	# mixed: 8 in 10 stable single A (half with AAAA), 1 in 10 round-robin
	# with four A, 1 in 10 CNAME to a headline name
	for (j = 0; j < m; j++) {
		name = sprintf("m%06d", j)
		a = 128 + int(j / 65536) % 64; b = int(j / 256) % 256; c = j % 256
		k = j % 10
		if (k < 8) {
			printf "%s 300 IN A 10.%d.%d.%d\n", name, a, b, c > zone
			if (j % 2 == 0)
				printf "%s 300 IN AAAA 2001:db8:1::%x:%x\n", name, int(j / 65536), j % 65536 > zone
		} else if (k == 8) {
			for (r = 0; r < 4; r++)
				printf "%s 60 IN A 10.%d.%d.%d\n", name, a + 64 * (r % 2), b, (c + 64 * r) % 256 > zone
		} else {
			printf "%s 300 IN CNAME n%06d\n", name, j % n > zone
		}
		print name ".bench.test" > mseeds
	}
	print "ns.bench.test SOA" > (queries ".ready")
}'
ZONE_RECORDS=$(grep -c ' IN ' "$ZONE")

# ---------------------------------------------------------------- 4. server
port_busy() { # port_busy PORT: anything listening on ADDR or a wildcard?
	command -v ss >/dev/null 2>&1 || return 1
	ss -Hlnut 2>/dev/null | awk -v a="$ADDR:$1" -v p=":$1" '
		$5 == a || $5 == "0.0.0.0" p || $5 == "*" p || $5 == "[::]" p { found = 1 } END { exit !found }'
}
if [ -z "$PORT" ]; then
	PORT=5353
	while port_busy "$PORT"; do PORT=$((PORT + 1)); done
fi
mkdir -p "$WORK/knot/run" "$WORK/knot/db"
cat >"$WORK/knot.conf" <<EOF
server:
    rundir: "$WORK/knot/run"
    listen: $ADDR@$PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "$WORK/knot/db"

log:
  - target: stderr
    any: notice

template:
  - id: default
    storage: "$WORK"
    file: "%s.zone"
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole

zone:
  - domain: bench.test.
EOF
log "starting knotd on $ADDR@$PORT (1 UDP worker)"
"${SERVER_PRE[@]}" knotd -c "$WORK/knot.conf" >"$WORK/knotd.log" 2>&1 &
KNOT_PID=$!
ready=0
for _ in $(seq 1 120); do
	kill -0 "$KNOT_PID" 2>/dev/null || {
		cat "$WORK/knotd.log" >&2
		die "knotd exited"
	}
	if dnsperf -s "$ADDR" -p "$PORT" -d "$WORK/queries-a.txt.ready" -n 1 -t 1 2>&1 |
		grep -q 'NOERROR 1 '; then
		ready=1
		break
	fi
	sleep 0.25
done
[ "$ready" = 1 ] || {
	cat "$WORK/knotd.log" >&2
	die "knotd did not answer within 30 s"
}
knotc -c "$WORK/knot.conf" zone-status bench.test. >"$WORK/knot-zone-status.txt" 2>&1 || true
log "knotd answers: $(tr -s ' ' <"$WORK/knot-zone-status.txt" | head -n1)"

# ---------------------------------------------------------------- 5. ceiling
# dnsperf_qps OUT ARGS...: run dnsperf on the headline A queries, keep its
# output in OUT and print its queries per second.
dnsperf_qps() {
	local out=$1
	shift
	"${CLIENT_PRE[@]}" dnsperf -s "$ADDR" -p "$PORT" -d "$WORK/queries-a.txt" -Q 500000 -t 2 "$@" >"$out" 2>&1 || true
	awk '/Queries per second:/ { print $4; found = 1 } END { if (!found) print 0 }' "$out"
}
DP_BEST=$DNSPERF_ARGS
TUNING=()
if [ "$DNSPERF_TUNE_SECONDS" -gt 0 ]; then
	best=0
	for args in "-c 1 -T 1 -q 100" "-c 4 -T 2 -q 100" "-c 4 -T 2 -q 200" "-c 4 -T 1 -q 500" "-c 8 -T 2 -q 1000"; do
		# shellcheck disable=SC2086 # args is a word list on purpose
		q=$(dnsperf_qps "$WORK/dnsperf-tune.txt" -l "$DNSPERF_TUNE_SECONDS" $args)
		lost=$(awk '/Queries lost:/ { print $3 }' "$WORK/dnsperf-tune.txt")
		log "dnsperf tuning $args: $q queries/s (lost ${lost:-?})"
		TUNING+=("{\"args\": \"$args\", \"queries_per_second\": $q, \"queries_lost\": ${lost:-0}}")
		if awk -v a="$q" -v b="$best" 'BEGIN { exit !(a > b) }'; then
			best=$q
			DP_BEST=$args
		fi
	done
fi
log "dnsperf ceiling run: -l $DNSPERF_SECONDS $DP_BEST"
ticks=$(cpu_ticks)
# shellcheck disable=SC2086
CEILING=$(dnsperf_qps "$WORK/dnsperf.txt" -l "$DNSPERF_SECONDS" $DP_BEST)
CEILING_STEAL=$(steal_pct "$ticks" "$(cpu_ticks)")
CEILING_LOST=$(awk '/Queries lost:/ { print $3 }' "$WORK/dnsperf.txt")
DNSPERF_CMD="dnsperf -s $ADDR -p $PORT -d queries-a.txt -Q 500000 -t 2 -l $DNSPERF_SECONDS $DP_BEST"
log "ceiling: $CEILING queries/s (lost $CEILING_LOST; hypervisor steal $CEILING_STEAL %)"
awk -v q="$CEILING" 'BEGIN { exit !(q > 0) }' || {
	cat "$WORK/dnsperf.txt" >&2
	die "dnsperf measured nothing"
}

# ---------------------------------------------------------------- 6. crawl
# jnum KEY FILE: a number from a one-line JSON object.
jnum() { sed -n "s/.*\"$1\": *\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" "$2" | head -n1; }
# tnum LABEL FILE: a figure from /usr/bin/time -v output.
tnum() { awk -F': ' -v l="$1" 'index($0, l) { v = $NF } END { print v + 0 }' "$2"; }

HAS_ENGINE=0
# crawl -h exits non-zero, and grep -q would cut the pipe: read it whole.
CRAWL_HELP=$("$FW" crawl -h 2>&1 || true)
case $CRAWL_HELP in *-engine*) HAS_ENGINE=1 ;; esac

# crawl_run NAME DB SEEDS RESOLVER CRAWL-FLAGS...: fresh DB, seeds add, the
# crawl through RESOLVER under /usr/bin/time -v, with the defaults but for
# CRAWL-FLAGS; leaves NAME.json (the summary), NAME.time, NAME.seeds (its
# output and seconds), NAME.seeded-bytes (the database size after it).
crawl_run() {
	local name=$1 db=$2 seeds=$3 resolver=$4 s
	shift 4
	rm -f "$db"
	s=$(date +%s.%N)
	"$FW" seeds add --db "$db" --source bench --quiet "$seeds" >"$WORK/$name.seeds" 2>&1 ||
		{ cat "$WORK/$name.seeds" >&2; die "seeds add failed"; }
	awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", e - s }' >>"$WORK/$name.seeds"
	stat -c %s "$db" >"$WORK/$name.seeded-bytes"
	log "$name: $(head -n1 "$WORK/$name.seeds"); crawling"
	local ticks
	ticks=$(cpu_ticks)
	"${CLIENT_PRE[@]}" /usr/bin/time -v -o "$WORK/$name.time" \
		"$FW" crawl --db "$db" --resolver "$resolver" --json --log-level warn "$@" >"$WORK/$name.json" 2>"$WORK/$name.log" ||
		{ cat "$WORK/$name.log" "$WORK/$name.time" >&2; die "$name crawl failed"; }
	steal_pct "$ticks" "$(cpu_ticks)" >"$WORK/$name.steal"
	log "$name: $(cat "$WORK/$name.json")"
}

# figures NAME: shell assignments of the figures of crawl NAME (prefix NAME_).
figures() {
	local n=$1 f=$WORK/$1.json t=$WORK/$1.time
	awk -v n="$n" -v c="$CEILING" \
		-v sent="$(jnum queries_sent "$f")" -v ans="$(jnum queries_answered "$f")" \
		-v obs="$(jnum observations_stored "$f")" -v el="$(jnum elapsed_seconds "$f")" \
		-v probes="$(jnum probes "$f")" \
		-v user="$(tnum 'User time (seconds)' "$t")" -v sys="$(tnum 'System time (seconds)' "$t")" \
		-v rss="$(tnum 'Maximum resident set size (kbytes)' "$t")" -v steal="$(cat "$WORK/$1.steal")" 'BEGIN {
		if (el <= 0) el = 1e-9
		printf "%s_probes=%d\n%s_sent=%d\n%s_answered=%d\n%s_stored=%d\n%s_elapsed=%.2f\n", n, probes, n, sent, n, ans, n, obs, n, el
		printf "%s_answered_per_s=%.0f\n%s_stored_per_s=%.0f\n%s_sent_per_s=%.0f\n", n, ans / el, n, obs / el, n, sent / el
		printf "%s_pct_ceiling=%.1f\n", n, 100 * (ans / el) / c
		printf "%s_user=%.2f\n%s_sys=%.2f\n", n, user, n, sys
		printf "%s_cpu_per_100k=%.2f\n", n, (ans > 0 ? (user + sys) / ans * 100000 : 0)
		printf "%s_rss_mib=%.1f\n", n, rss / 1024
		printf "%s_steal_pct=%.1f\n", n, steal
	}'
}

HEAD_DB=$WORK/headline.db
DEFAULT_FLAGS="--qps 0 --qtypes A --rounds 1"
TUNED_FLAGS="--qps 0 --qtypes A --rounds 1 --ns-hosts=false --delegation=false --workers $W"
# median_run NAME: which of the runs NAME1..NAME$HEADLINE_RUNS answered the
# median names/s; its files become NAME's. Sets NAME_runs to every run's
# names/s and CPU-s per 100k, in the order they ran.
median_run() {
	local name=$1 k best ext ps cpu runs=""
	for k in $(seq "$HEADLINE_RUNS"); do
		eval "$(figures "$name$k")"
		ps=${name}${k}_answered_per_s cpu=${name}${k}_cpu_per_100k
		runs+="${runs:+, }${!ps} (${!cpu})"
		printf '%s %s\n' "${!ps}" "$k" >>"$WORK/$name.runs"
	done
	best=$(sort -g "$WORK/$name.runs" | awk -v m=$(((HEADLINE_RUNS + 1) / 2)) 'NR == m { print $2 }')
	for ext in json time steal seeds seeded-bytes log db; do
		cp "$WORK/$name$best.$ext" "$WORK/$name.$ext"
	done
	printf -v "${name}_runs" '%s' "$runs"
}
for k in $(seq "$HEADLINE_RUNS"); do
	# shellcheck disable=SC2086 # the flags are word lists on purpose
	crawl_run "headline$k" "$WORK/headline$k.db" "$WORK/seeds-headline.txt" "$ADDR:$PORT" $DEFAULT_FLAGS
	# shellcheck disable=SC2086
	crawl_run "tuned$k" "$WORK/tuned$k.db" "$WORK/seeds-headline.txt" "$ADDR:$PORT" $TUNED_FLAGS
done
median_run headline
median_run tuned
eval "$(figures headline)"
eval "$(figures tuned)"
HEAD_SEEDS_S=$(tail -n1 "$WORK/headline.seeds")
HEAD_DB_BYTES=$(stat -c %s "$HEAD_DB")

MIX_DB=$WORK/mixed.db
crawl_run mixed "$MIX_DB" "$WORK/seeds-mixed.txt" "$ADDR:$PORT" --qps 0 --ns-hosts=false --delegation=false \
	--qtypes A,AAAA,NS --rounds "$MIXED_ROUNDS" --interval 0s
eval "$(figures mixed)"
MIX_DB_BYTES=$(stat -c %s "$MIX_DB")
# bytes per observation: the whole file, and what the crawl added to the
# freshly seeded database (without the domain table)
per_obs() { awk -v b="$1" -v o="$2" 'BEGIN { printf "%.1f", (o > 0 ? b / o : 0) }'; }
MIX_SEEDED_BYTES=$(cat "$WORK/mixed.seeded-bytes")
HEAD_SEEDED_BYTES=$(cat "$WORK/headline.seeded-bytes")
MIX_BYTES_PER_OBS=$(per_obs "$MIX_DB_BYTES" "$mixed_stored")
MIX_ADDED_PER_OBS=$(per_obs $((MIX_DB_BYTES - MIX_SEEDED_BYTES)) "$mixed_stored")
HEAD_BYTES_PER_OBS=$(per_obs "$HEAD_DB_BYTES" "$headline_stored")
HEAD_ADDED_PER_OBS=$(per_obs $((HEAD_DB_BYTES - HEAD_SEEDED_BYTES)) "$headline_stored")
log "databases:"
ls -l "$HEAD_DB" "$MIX_DB" >&2

if [ "$HAS_ENGINE" = 1 ]; then
	# shellcheck disable=SC2086
	crawl_run naive "$WORK/naive.db" "$WORK/seeds-headline.txt" "$ADDR:$PORT" $DEFAULT_FLAGS --engine naive
	eval "$(figures naive)"
fi

# ---------------------------------------------------------------- 7. dead
# responder NAME ARGS...: start a stand-in resolver; sets NAME_addr.
responder() {
	local name=$1 out=$WORK/responder-$1.out
	shift
	"$WORK/responder" -listen "$DEAD_ADDR:0" -names "$DEAD_NAMES" "$@" >"$out" 2>&1 &
	RESPONDER_PIDS+=($!)
	for _ in $(seq 1 100); do
		grep -q '^listening ' "$out" 2>/dev/null && break
		sleep 0.05
	done
	grep -q '^listening ' "$out" || {
		cat "$out" >&2
		die "responder $name did not start"
	}
	printf -v "${name}_addr" '%s' "$(sed -n 's/^listening //p' "$out")"
}
seq -f 'n%06g.mix.test' 0 $((DEAD_NAMES - 1)) >"$WORK/seeds-dead.txt"
responder random -order random
responder deadfirst -order dead-first
responder slow -dead 0 -slow 0 -delay 50ms
TIMEOUT_S=$(printf '%s\n' "$CRAWL_HELP" | sed -n 's/.*query attempt (default \([0-9.]*\)s).*/\1/p' | head -n1)
TIMEOUT_S=${TIMEOUT_S:-2}
DEAD_FLAGS="--qps $DEAD_QPS --qtypes A --delegation=false --ns-hosts=false --rounds 1"
# shellcheck disable=SC2154,SC2086 # random_addr and the others are set by responder
crawl_run deadrandom "$WORK/dead-random.db" "$WORK/seeds-dead.txt" "$random_addr" $DEAD_FLAGS
eval "$(figures deadrandom)"
# shellcheck disable=SC2154,SC2086
crawl_run deadfirst "$WORK/dead-first.db" "$WORK/seeds-dead.txt" "$deadfirst_addr" $DEAD_FLAGS
eval "$(figures deadfirst)"
# shellcheck disable=SC2154
crawl_run slowvantage "$WORK/slow.db" "$WORK/seeds-dead.txt" "$slow_addr" --qps "$SLOW_QPS" --rounds 1 \
	--parent-port "${slow_addr##*:}"
eval "$(figures slowvantage)"
# The ideal of a dead mix: its names at the allowed rate, then one timeout
# for the last of them; of the slow vantage: its queries at the allowed
# rate, then three 50 ms round trips (NS, then the name servers' addresses;
# the parent's NS, its server's address, the referral).
DEAD_IDEAL=$(awk -v n="$DEAD_NAMES" -v q="$DEAD_QPS" -v t="$TIMEOUT_S" 'BEGIN { printf "%.2f", n / q + t }')
SLOW_IDEAL=$(awk -v s="$slowvantage_sent" -v q="$SLOW_QPS" 'BEGIN { printf "%.2f", s / q + 3 * 0.05 }')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# health_of NAME: the skipped domains, health and canaries of the run's
# only vantage.
health_of() {
	local f=$WORK/$1.json
	printf 'skipped %s, healthy %s, canaries %s' "$(jnum skipped "$f")" \
		"$(sed -n 's/.*"healthy": *\(true\|false\).*/\1/p' "$f" | head -n1)" "$(jnum canaries "$f")"
}
DEADRANDOM_RATIO=$(ratio "$deadrandom_elapsed" "$DEAD_IDEAL")
DEADFIRST_RATIO=$(ratio "$deadfirst_elapsed" "$DEAD_IDEAL")
SLOW_RATIO=$(ratio "$slowvantage_elapsed" "$SLOW_IDEAL")

# ---------------------------------------------------------------- 8. report
T_TOTAL=$(($(date +%s) - T0))
CRAWL_FLAGS="--resolver $ADDR:$PORT $DEFAULT_FLAGS --json"
{
	cat <<EOF

==================== fluxwatch benchmark ====================
machine      $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), load average $LOAD_BEFORE before the run
versions     $GO_VERSION, knot $KNOT_VERSION, dnsperf $DNSPERF_VERSION
fluxwatch    $FW_SOURCE
server       knotd, 1 UDP worker, $ADDR@$PORT, zone bench.test. with $ZONE_RECORDS records
pinning      $([ "$PIN" = 1 ] && echo "knotd on CPU $SERVER_CPUS, dnsperf and fluxwatch on CPU $CLIENT_CPUS" || echo "none (PIN=0)")
ceiling      dnsperf $DP_BEST: $CEILING queries/s (lost $CEILING_LOST; hypervisor steal $CEILING_STEAL %)

headline     $NAMES names, default flags: $DEFAULT_FLAGS
  answered   $headline_answered of $headline_sent queries in ${headline_elapsed}s
  names/s    $headline_answered_per_s answered, $headline_stored_per_s stored ($headline_stored observations)
  ceiling    $headline_pct_ceiling% of dnsperf's
  runs       names/s (CPU-s per 100k) of the $HEADLINE_RUNS crawls in order: $headline_runs; the median's figures here
  CPU        $headline_cpu_per_100k CPU-seconds per 100k answers (user ${headline_user}s, sys ${headline_sys}s); hypervisor steal $headline_steal_pct %
  peak RSS   $headline_rss_mib MiB
  seeds add  ${HEAD_SEEDS_S}s, database $HEAD_SEEDED_BYTES bytes
  database   $HEAD_DB_BYTES bytes after the crawl: $HEAD_BYTES_PER_OBS bytes/observation ($HEAD_ADDED_PER_OBS added by the crawl)

tuned        $NAMES names, $TUNED_FLAGS
  names/s    $tuned_answered_per_s answered, $tuned_stored_per_s stored; $tuned_pct_ceiling% of ceiling
  CPU        $tuned_cpu_per_100k CPU-seconds per 100k answers; peak RSS $tuned_rss_mib MiB; steal $tuned_steal_pct %
  runs       $tuned_runs

mixed        $MIXED_NAMES names, --qtypes A,AAAA,NS --rounds $MIXED_ROUNDS --interval 0s
  answered   $mixed_answered of $mixed_sent queries in ${mixed_elapsed}s ($mixed_answered_per_s/s, $mixed_pct_ceiling% of ceiling)
  stored     $mixed_stored observations; database $MIX_DB_BYTES bytes ($MIX_SEEDED_BYTES after seeds add)
  bytes/obs  $MIX_BYTES_PER_OBS (file size / observations); $MIX_ADDED_PER_OBS added by the crawl
  CPU        $mixed_cpu_per_100k CPU-seconds per 100k answers; peak RSS $mixed_rss_mib MiB; steal $mixed_steal_pct %
EOF
	if [ "$HAS_ENGINE" = 1 ]; then
		cat <<EOF

naive        --engine naive, headline corpus
  names/s    $naive_answered_per_s answered, $naive_stored_per_s stored; $naive_pct_ceiling% of ceiling
  CPU        $naive_cpu_per_100k CPU-seconds per 100k answers; peak RSS $naive_rss_mib MiB
EOF
	else
		echo
		echo "naive        (fluxwatch crawl has no --engine flag)"
	fi
	cat <<EOF

dead mix     $DEAD_NAMES names, 30 % never answered, 10 % after 800 ms; $DEAD_FLAGS
  ideal      ${DEAD_IDEAL}s (names / rate + one ${TIMEOUT_S}s timeout window)
  random     ${deadrandom_elapsed}s = ${DEADRANDOM_RATIO} x ideal; $deadrandom_probes probes, $deadrandom_sent queries; $(health_of deadrandom)
  dead first ${deadfirst_elapsed}s = ${DEADFIRST_RATIO} x ideal; $deadfirst_probes probes, $deadfirst_sent queries; $(health_of deadfirst)
slow vantage $DEAD_NAMES names, every answer 50 ms late; --qps $SLOW_QPS, default probe (A, AAAA, NS, name servers, delegation)
  elapsed    ${slowvantage_elapsed}s = ${SLOW_RATIO} x ideal (${SLOW_IDEAL}s: $slowvantage_sent queries / rate + 3 x 50 ms); $slowvantage_stored observations
EOF
	echo "total        ${T_TOTAL}s"
	echo "============================================================="
} | tee "$WORK/report.txt"

# crawl_json NAME: the figures of one crawl as a JSON object.
crawl_json() {
	local n=$1 v
	printf '{'
	for k in probes sent answered stored elapsed answered_per_s stored_per_s sent_per_s pct_ceiling user sys cpu_per_100k rss_mib steal_pct; do
		v=${n}_$k
		[ "$k" = probes ] || printf ', '
		printf '"%s": %s' "$k" "${!v}"
	done
	printf ', "summary": %s}' "$(head -n1 "$WORK/$n.json")"
}
{
	printf '{\n  "date": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf '  "machine": {"nproc": %d, "cpu": "%s", "mem_kib": %d, "kernel": "%s", "load_before": %s},\n' \
		"$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//; s/"//g')" \
		"$(awk '/MemTotal/ { print $2 }' /proc/meminfo)" "$(uname -r)" "$LOAD_BEFORE"
	printf '  "versions": {"go": "%s", "knot": "%s", "dnsperf": "%s", "fluxwatch": "%s"},\n' \
		"$GO_VERSION" "$KNOT_VERSION" "$DNSPERF_VERSION" "$FW_SOURCE"
	printf '  "settings": {"names": %d, "mixed_names": %d, "mixed_rounds": %d, "workers": %d, "server": "%s:%s", "zone_records": %d},\n' \
		"$NAMES" "$MIXED_NAMES" "$MIXED_ROUNDS" "$W" "$ADDR" "$PORT" "$ZONE_RECORDS"
	printf '  "pin": %s,\n' "$([ "$PIN" = 1 ] && echo "{\"server_cpus\": \"$SERVER_CPUS\", \"client_cpus\": \"$CLIENT_CPUS\"}" || echo null)"
	printf '  "dnsperf": {"command": "%s", "queries_per_second": %s, "queries_lost": %s, "steal_pct": %s, "tuning": [%s]},\n' \
		"$DNSPERF_CMD" "$CEILING" "${CEILING_LOST:-0}" "$CEILING_STEAL" "$(IFS=,; echo "${TUNING[*]:-}")"
	printf '  "crawl_flags": "%s",\n' "$CRAWL_FLAGS"
	printf '  "headline": '
	crawl_json headline
	printf ',\n  "headline_seeds_add_seconds": %s,\n  "headline_seeded_db_bytes": %d,\n  "headline_db_bytes": %d,\n' \
		"$HEAD_SEEDS_S" "$HEAD_SEEDED_BYTES" "$HEAD_DB_BYTES"
	printf '  "headline_db_bytes_per_observation": %s,\n  "headline_added_bytes_per_observation": %s,\n' \
		"$HEAD_BYTES_PER_OBS" "$HEAD_ADDED_PER_OBS"
	printf '  "tuned": '
	crawl_json tuned
	printf ',\n  "tuned_flags": "%s",\n' "$TUNED_FLAGS"
	printf '  "headline_runs": "%s",\n  "tuned_runs": "%s",\n' "$headline_runs" "$tuned_runs"
	printf '  "dead_mix": {"names": %d, "qps": %s, "ideal_seconds": %s, "random_ratio": %s, "dead_first_ratio": %s, "random": ' \
		"$DEAD_NAMES" "$DEAD_QPS" "$DEAD_IDEAL" "$DEADRANDOM_RATIO" "$DEADFIRST_RATIO"
	crawl_json deadrandom
	printf ', "dead_first": '
	crawl_json deadfirst
	printf '},\n  "slow_vantage": {"names": %d, "qps": %s, "ideal_seconds": %s, "ratio": %s, "run": ' \
		"$DEAD_NAMES" "$SLOW_QPS" "$SLOW_IDEAL" "$SLOW_RATIO"
	crawl_json slowvantage
	printf '},\n  "mixed": '
	crawl_json mixed
	printf ',\n  "mixed_seeded_db_bytes": %d,\n  "mixed_db_bytes": %d,\n' "$MIX_SEEDED_BYTES" "$MIX_DB_BYTES"
	printf '  "mixed_db_bytes_per_observation": %s,\n  "mixed_added_bytes_per_observation": %s,\n' \
		"$MIX_BYTES_PER_OBS" "$MIX_ADDED_PER_OBS"
	printf '  "naive": '
	if [ "$HAS_ENGINE" = 1 ]; then crawl_json naive; else printf 'null'; fi
	printf ',\n  "total_seconds": %d\n}\n' "$T_TOTAL"
} >"$WORK/results.json"
[ -z "$RESULTS" ] || cp "$WORK/results.json" "$RESULTS"
if [ -n "$RESULTS" ]; then
	log "results: $RESULTS"
elif [ "$KEEP" = 1 ]; then
	log "results: $WORK/results.json"
else
	log "results.json goes with the work directory: set RESULTS=FILE or KEEP=1 to keep it"
fi
