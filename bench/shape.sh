#!/usr/bin/env bash
# The runtime shape, side by side: two gateway binaries (e.g. before and after a
# change of runtime shape) and nginx, each with SHAPE_WORKERS workers, measured
# in interleaved rounds (each round runs every target once, in turn).
#
#   bench/shape.sh BASELINE_BINARY NEW_BINARY
#
# Unpinned: proxy, wrk (-t2 -c64) and the one-worker nginx backend share all
# CPUs, so on a 2-CPU machine a 2-worker proxy competes with its own load
# generator: CPU per request (the proxy's user + system time from /proc over
# the requests wrk completed) compares the shapes, req/s mostly shows how the
# CPUs were shared. Knobs: SHAPE_WORKERS (default 2), SHAPE_ROUNDS (3),
# SHAPE_DURATION (5 s). Not a test: prints a table, asserts nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 BASELINE_BINARY NEW_BINARY" >&2; exit 2; }
WORKERS=${SHAPE_WORKERS:-2}
ROUNDS=${SHAPE_ROUNDS:-3}
DURATION=${SHAPE_DURATION:-5}
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
start_backend
write_plain_configs "$WORKERS"
TCK=$(getconf CLK_TCK)

# ticks PID: user + system clock ticks of PID and its (reaped or live) children.
ticks() {
  local pid=$1 t c
  t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat")
  for c in $(pgrep -P "$pid" || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$c/stat")))
  done
  echo "$t"
}

run() {
  local name=$1
  shift
  "$@" &
  local pid=$!
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$URL" 2>/dev/null && break
    sleep 0.1
  done
  wrk -t2 -c64 -d1s "$URL" >/dev/null
  local t0 t1 reqs
  t0=$(ticks "$pid")
  wrk -t2 -c64 -d"${DURATION}s" "$URL" >"$TMP/wrk"
  t1=$(ticks "$pid")
  reqs=$(awk '/requests in/ {print $1}' "$TMP/wrk")
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  python3 -c "print(f'$name\t{$reqs/$DURATION:.0f}\t{($t1-$t0)/$TCK*1e6/$reqs:.1f}')" | tee -a "$TMP/rows"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $WORKERS workers, unpinned, $ROUNDS rounds of ${DURATION}s"
echo -e "target\treq/s\tCPU µs/req"
for round in $(seq "$ROUNDS"); do
  run nginx nginx -e "$TMP/proxy-error.log" -p "$TMP" -c "$TMP/proxy.conf"
  run baseline env MGW_LOG=warn "$1" --bundle "$TMP/bundle.json" --workers "$WORKERS"
  run new env MGW_LOG=warn "$2" --bundle "$TMP/bundle.json" --workers "$WORKERS"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians:"
python3 - "$TMP/rows" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, rps, cpu = line.split("\t")
    rows[name].append((float(rps), float(cpu)))
for name, v in rows.items():
    print(f"{name}\t{statistics.median(r for r, _ in v):.0f} req/s\t{statistics.median(c for _, c in v):.1f} µs/req\t(cpu {', '.join(f'{c:.1f}' for _, c in v)})")
EOF
