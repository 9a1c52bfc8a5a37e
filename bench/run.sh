#!/usr/bin/env bash
# make bench: the gateway against nginx and against the backend directly, plus the
# gateway's time-to-ready, idle RSS and the effect of its allocator.
#
# Not a test: it measures and prints, it asserts nothing about speed. BENCHMARKS.md
# explains the setup and records a run. Everything it starts is stopped on exit,
# its temp dir is removed, and every wait is bounded.
#
# Each round runs every target once, one after the other, so that a burst of
# other work on a shared machine lands on all of them alike rather than on one;
# the table shows the median over the rounds.
#
# Knobs (environment):
#   BENCH_DURATION     seconds per measurement (default 5; "5s" also works)
#   BENCH_ROUNDS       rounds; each round measures every target once, in turn, and
#                      the table shows the median per target (default 3)
#   BENCH_WARMUP       seconds of untimed load before each throughput run (default 1)
#   BENCH_CONNECTIONS  client connections (default 64)
#   BENCH_ROUTES       operations in the benchmark bundle (default 300)
#   BENCH_PIN          1: proxy on its own CPUs, load generator + backend on the
#                      others; 0: no pinning (default: 1 when there are >= 2 CPUs)
#   BENCH_WORKERS      gateway workers = nginx worker_processes (default: the
#                      number of proxy CPUs when pinned, else nproc)
#   BENCH_NICE         niceness of everything the bench starts (default -20 where
#                      allowed, so other jobs on a shared machine disturb less; 0: off)
#   BENCH_RT           1: run everything under SCHED_FIFO instead, so that other
#                      jobs hardly run at all (only for a machine you may take
#                      over; the gateway's analytics thread then only runs when
#                      its worker blocks, so events are dropped: see BENCHMARKS.md)
#   BENCH_RATE         fixed rate for the latency runs (default: half of nginx's max)
#   BENCH_ALLOC        1: also build and measure the musl-malloc variant (default 1)
#   BENCH_READY_RUNS   runs of the time-to-ready measurement (default 9)
#   BENCH_RESULTS      where raw outputs and the table go (default target/bench-results)
#   BENCH_LATENCY      0: skip the fixed-rate latency runs (and installing oha)
#   BENCH_JWT          1: also the JWT scenarios (product, cache miss, 2x cacheSize)
#                      and haproxy as a peer, when haproxy and openssl are there (default 1)
#   BENCH_JWT_CACHE    the JWT cacheSize of the 2x-cacheSize scenario (default 256)
#   BENCH_GLOBAL       1: also the product scenario with its per-consumer limit as
#                      `scope: global` on a redis-server the bench starts on
#                      loopback, vs the same `scope: local` route (default 1 when
#                      BENCH_JWT=1 and redis-server is there)
#   BENCH_REDIS_TIMEOUT_MS  the global policy's Redis deadline (default 100: the
#                      gateway's 5 ms default is missed under closed-loop
#                      saturation, and fallbacks would be measured instead)
#   BENCH_BASELINE     another gateway binary (e.g. built before a change), also run
#                      analytics off and in the 2x-cacheSize and product scenarios,
#                      for a side-by-side
#   BENCH_VALIDATION   1: also a validated POST with a 1 KiB JSON body vs the same
#                      POST without validation (default 1)
#   BENCH_TARGETS      only these throughput targets, space-separated (e.g.
#                      "haproxy-jwt gateway-jwt gateway-jwt-miss baseline-jwt-miss"), for a
#                      quick side-by-side of a few rows; then latency, validation, the
#                      allocator variant and the global limit default to off and the
#                      ready/RSS measurement to one run
set -euo pipefail

if [ -n "${BENCH_TARGETS:-}" ]; then
  : "${BENCH_LATENCY:=0}" "${BENCH_VALIDATION:=0}" "${BENCH_ALLOC:=0}" "${BENCH_GLOBAL:=0}" "${BENCH_READY_RUNS:=1}"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MUSL_TARGET=x86_64-unknown-linux-musl
GATEWAY=$ROOT/target/$MUSL_TARGET/release/mgw-gateway
TOOLS=$ROOT/target/bench-tools
OHA_VERSION=1.16.0

DURATION=${BENCH_DURATION:-5}
DURATION=${DURATION%s}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-1}
WARMUP=${WARMUP%s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
ROUTES=${BENCH_ROUTES:-300}
ALLOC=${BENCH_ALLOC:-1}
READY_RUNS=${BENCH_READY_RUNS:-9}
RESULTS=${BENCH_RESULTS:-$ROOT/target/bench-results}
JWT=${BENCH_JWT:-1}
JWT_CACHE=${BENCH_JWT_CACHE:-256}
BASELINE=${BENCH_BASELINE:-}
GLOBAL=${BENCH_GLOBAL:-$JWT}
NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}

# --- Tools -------------------------------------------------------------------

for tool in wrk nginx curl jq python3 taskset; do
  command -v "$tool" >/dev/null ||
    die "\`$tool\` not found; run \`make setup\` (or \`apt-get install -y wrk nginx-light curl jq python3 util-linux\`)"
done
[ -x "$GATEWAY" ] || die "\`$GATEWAY\` not found; run \`make gateway\`"
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || die "BENCH_BASELINE=\`$BASELINE\` is not an executable"
HAPROXY=
if [ "$JWT" = 1 ]; then
  command -v openssl >/dev/null || die "\`openssl\` not found (JWT scenarios); apt-get install -y openssl, or BENCH_JWT=0"
  if command -v haproxy >/dev/null; then
    HAPROXY=$(command -v haproxy)
  else
    say "haproxy not found (apt-get install -y haproxy): the haproxy peers are skipped"
  fi
fi
if [ "$GLOBAL" = 1 ]; then
  [ "$JWT" = 1 ] || die "BENCH_GLOBAL=1 needs BENCH_JWT=1 (the global limit is the product scenario's)"
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    [ -z "${BENCH_GLOBAL:-}" ] || die "\`redis-server\` not found; apt-get install -y redis-server, or BENCH_GLOBAL=0"
    say "redis-server not found (apt-get install -y redis-server): the global-limit scenario is skipped"
    GLOBAL=0
  fi
fi

# oha: an open-loop load generator that corrects for coordinated omission.
OHA=$TOOLS/bin/oha
if [ "${BENCH_LATENCY:-1}" = 0 ]; then
  say "BENCH_LATENCY=0: latency at a fixed rate is skipped"
  OHA=
elif [ ! -x "$OHA" ]; then
  mkdir -p "$TOOLS"
  say "installing oha $OHA_VERSION into $TOOLS (once; a few minutes)"
  # native-tls instead of the default rustls: no aws-lc C build, and TLS is unused.
  if ! cargo install oha --version "$OHA_VERSION" --locked --no-default-features \
    --features native-tls --root "$TOOLS" --target-dir "$TOOLS/build" \
    >"$TOOLS/oha-install.log" 2>&1; then
    say "could not build oha (see $TOOLS/oha-install.log): latency at a fixed rate is skipped"
    say "wrk2 would do instead, but Debian does not package it"
    OHA=
  fi
fi

# --- CPUs and priority -------------------------------------------------------

PIN=${BENCH_PIN:-}
if [ -z "$PIN" ]; then
  if [ "$NPROC" -ge 2 ]; then PIN=1; else PIN=0; fi
fi
if [ "$PIN" = 1 ]; then
  WORKERS=${BENCH_WORKERS:-$((NPROC / 2))}
  [ "$WORKERS" -ge 1 ] && [ "$WORKERS" -lt "$NPROC" ] ||
    die "BENCH_WORKERS=$WORKERS leaves no CPU for the load generator (nproc = $NPROC); use BENCH_PIN=0"
  PROXY_CPUS="0-$((WORKERS - 1))"
  LOAD_CPUS="$WORKERS-$((NPROC - 1))"
  LOAD_THREADS=$((NPROC - WORKERS))
  PROXY_PIN=(taskset -c "$PROXY_CPUS")
  LOAD_PIN=(taskset -c "$LOAD_CPUS")
  SETUP_TEXT="proxy on CPUs $PROXY_CPUS, load generator and backend on CPUs $LOAD_CPUS"
else
  WORKERS=${BENCH_WORKERS:-$NPROC}
  PROXY_CPUS=
  LOAD_CPUS=
  LOAD_THREADS=$NPROC
  PROXY_PIN=()
  LOAD_PIN=()
  SETUP_TEXT="no pinning"
fi

# On a shared machine, other jobs preempting the proxy or the load generator
# show up as milliseconds of tail latency. A negative niceness makes the
# scheduler favour the benchmark; it cannot remove the noise.
NICE=${BENCH_NICE:--20}
PRIO=()
if [ "${BENCH_RT:-0}" = 1 ]; then
  chrt -f 1 true || die "BENCH_RT=1 needs permission to use SCHED_FIFO (chrt)"
  PRIO=(chrt -f 1)
  SETUP_TEXT="$SETUP_TEXT, SCHED_FIFO"
elif [ "$NICE" != 0 ] && [ "$(nice -n "$NICE" nice 2>/dev/null)" != "$(nice)" ]; then
  PRIO=(nice -n "$NICE")
  SETUP_TEXT="$SETUP_TEXT, nice $NICE"
fi

# --- Processes and cleanup ---------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mgw-bench.XXXXXX")
PIDS=()

# running PID: alive and not a zombie.
running() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != Z ]
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    running "$pid" || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_tracked PID: stops a process started here and forgets it.
stop_tracked() {
  stop_pid "$1"
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# Free loopback ports, chosen by the kernel.
read -r BACKEND_PORT NGINX_PORT GW_PORT GW_ADMIN REDIS_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

# wait_200 URL WHAT PID: waits (bounded) until URL answers 200, while PID runs.
wait_200() {
  local url=$1 what=$2 pid=$3 i
  shift 3
  for ((i = 0; i < 200; i++)); do
    running "$pid" || die "$what exited at start"
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$@" "$url" || true)" = 200 ] && return 0
    sleep 0.025
  done
  die "$what did not answer 200 on $url within 5 s"
}

# port_free PORT: waits (bounded) until nothing accepts on the port, so that a
# proxy that failed to stop is never measured in place of the next one.
port_free() {
  local i rc
  for ((i = 0; i < 100; i++)); do
    rc=0
    curl -s -o /dev/null --max-time 0.5 "http://127.0.0.1:$1/" || rc=$?
    [ "$rc" = 7 ] && return 0
    sleep 0.05
  done
  die "port $1 is still in use"
}

start_backend() {
  sed -e "s#@DIR@#$TMP#g" -e "s#@PORT@#$BACKEND_PORT#g" bench/backend.conf.in >"$TMP/backend.conf"
  "${PRIO[@]}" "${LOAD_PIN[@]}" nginx -e "$TMP/backend-error.log" -p "$TMP" -c "$TMP/backend.conf" &
  BACKEND_PID=$!
  PIDS+=("$BACKEND_PID")
  wait_200 "http://127.0.0.1:$BACKEND_PORT/items/1" backend "$BACKEND_PID"
}

# start_redis: the Redis of the global-limit scenario, on loopback, no persistence,
# on the load generator's CPUs (it stands for a Redis on another node).
start_redis() {
  local i
  "${PRIO[@]}" "${LOAD_PIN[@]}" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save '' --appendonly no --dir "$TMP" --logfile "$TMP/redis.log" &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for ((i = 0; i < 200; i++)); do
    running "$REDIS_PID" || die "redis-server exited at start (see $TMP/redis.log)"
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null || true)" = PONG ] && return 0
    sleep 0.025
  done
  die "redis-server did not answer PING on port $REDIS_PORT within 5 s"
}

# start_nginx on|off: nginx as the proxy, with or without an access log.
start_nginx() {
  local access_log='access_log off;'
  [ "$1" = on ] && access_log="access_log $TMP/access.log bench buffer=64k flush=1s;"
  sed -e "s#@DIR@#$TMP#g" -e "s#@PORT@#$NGINX_PORT#g" -e "s#@BACKEND_PORT@#$BACKEND_PORT#g" \
    -e "s#@WORKERS@#$WORKERS#g" -e "s#@ACCESS_LOG@#$access_log#g" \
    bench/proxy.conf.in >"$TMP/proxy.conf"
  port_free "$NGINX_PORT"
  "${PRIO[@]}" "${PROXY_PIN[@]}" nginx -e "$TMP/proxy-error.log" -p "$TMP" -c "$TMP/proxy.conf" &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_200 "http://127.0.0.1:$NGINX_PORT/bench/v1/items/1" nginx "$PROXY_PID"
}

# start_gateway BINARY BUNDLE [WORKERS [unpinned]]
start_gateway() {
  local workers=${3:-$WORKERS} pin=("${PROXY_PIN[@]}")
  [ "${4:-}" = unpinned ] && pin=()
  port_free "$GW_PORT"
  port_free "$GW_ADMIN"
  MGW_LOG=warn "${PRIO[@]}" "${pin[@]}" "$1" --bundle "$2" --workers "$workers" \
    >/dev/null 2>>"$TMP/gateway.log" &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_200 "http://127.0.0.1:$GW_ADMIN/readyz" gateway "$PROXY_PID"
  wait_200 "http://127.0.0.1:$GW_PORT/bench/v1/items/1" gateway "$PROXY_PID" "${TOKEN_HEADER[@]}"
}

# start_haproxy plain|jwt: haproxy as the proxy (one thread); `jwt` verifies an
# RS256 token per request, tracks `sub` in a stick table and logs each request.
start_haproxy() {
  python3 bench/haproxy_cfg.py "$1" "$NGINX_PORT" "$BACKEND_PORT" "$TMP" "$TMP/haproxy.cfg"
  port_free "$NGINX_PORT"
  "${PRIO[@]}" "${PROXY_PIN[@]}" "$HAPROXY" -f "$TMP/haproxy.cfg" >"$TMP/access.log" 2>>"$TMP/haproxy-error.log" &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_200 "http://127.0.0.1:$NGINX_PORT/bench/v1/items/1" haproxy "$PROXY_PID" "${TOKEN_HEADER[@]}"
}

stop_proxy() {
  stop_tracked "$PROXY_PID"
  rm -f "$TMP/analytics.jsonl" "$TMP/access.log"
}

# gateway_metric NAME: a counter from the admin /metrics, summed over its labels.
gateway_metric() {
  curl -s --max-time 2 "http://127.0.0.1:$GW_ADMIN/metrics" |
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { sum += $2 } END { printf "%d\n", sum }'
}

# vm_mib PID FIELD: VmRSS or VmHWM in MiB.
vm_mib() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# cpu_ticks PID: CPU time (user + system, clock ticks) of a process and its
# children (nginx's workers).
cpu_ticks() {
  local p total=0 kids
  kids=$(cat "/proc/$1/task/"*/children 2>/dev/null || true)
  for p in $1 $kids; do
    # Fields 14 and 15 of /proc/PID/stat; the name in field 2 has no spaces here.
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# --- Measurements ------------------------------------------------------------

declare -A RPS RPS_SPREAD CPU REDIS_CPU P50 P99 P999 NOTE

# add MAP KEY VALUE: appends VALUE to the space-separated list MAP[KEY].
add() {
  local -n map=$1
  map[$2]="${map[$2]:-} $3"
}

# median FORMAT VALUES...: the median, printed with FORMAT.
median() {
  local fmt=$1
  shift
  [ $# -gt 0 ] || return 0
  printf '%s\n' "$@" | sort -g |
    awk -v f="$fmt" '{ a[NR] = $1 } END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf f, m }'
}

# spread VALUES...: "min–max".
spread() {
  [ $# -gt 1 ] || return 0
  printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f–%.0f", lo, hi }'
}

# The targets: how each is started, where it answers, whose CPU time counts,
# and (JWT targets) which wrk script sends the tokens.
start_target() {
  TOKEN_HEADER=()
  TARGET_WRK=()
  case $1 in
    *-jwt-2x) TARGET_WRK=(-s "$TMP/tokens-$((2 * JWT_CACHE)).lua") ;;
    *-jwt*) TARGET_WRK=(-s "$TMP/tokens-1.lua") ;;
    gateway-post*) TARGET_WRK=(-s "$TMP/post.lua") ;;
  esac
  [[ $1 != *-jwt* ]] || TOKEN_HEADER=(-H "Authorization: Bearer $TOKEN")
  case $1 in
    direct) TARGET_PID=$BACKEND_PID ;;
    nginx) start_nginx off ;;
    nginx-log) start_nginx on ;;
    gateway) start_gateway "$GATEWAY" "$TMP/bundle.json" ;;
    gateway-no-analytics) start_gateway "$GATEWAY" "$TMP/bundle-no-analytics.json" ;;
    gateway-musl) start_gateway "$SYSALLOC" "$TMP/bundle.json" ;;
    gateway-threads) start_gateway "$GATEWAY" "$TMP/bundle.json" "$NPROC" unpinned ;;
    gateway-threads-musl) start_gateway "$SYSALLOC" "$TMP/bundle.json" "$NPROC" unpinned ;;
    haproxy) start_haproxy plain ;;
    haproxy-jwt) start_haproxy jwt ;;
    gateway-jwt) start_gateway "$GATEWAY" "$TMP/bundle-jwt.json" ;;
    gateway-jwt-miss) start_gateway "$GATEWAY" "$TMP/bundle-jwt-miss.json" ;;
    gateway-jwt-2x) start_gateway "$GATEWAY" "$TMP/bundle-jwt-2x.json" ;;
    gateway-jwt-global) start_gateway "$GATEWAY" "$TMP/bundle-jwt-global.json" ;;
    baseline-no-analytics) start_gateway "$BASELINE" "$TMP/bundle-no-analytics.json" ;;
    baseline-jwt) start_gateway "$BASELINE" "$TMP/bundle-jwt.json" ;;
    baseline-jwt-miss) start_gateway "$BASELINE" "$TMP/bundle-jwt-miss.json" ;;
    baseline-jwt-2x) start_gateway "$BASELINE" "$TMP/bundle-jwt-2x.json" ;;
    gateway-post) start_gateway "$GATEWAY" "$TMP/bundle-no-analytics.json" ;;
    gateway-post-validated) start_gateway "$GATEWAY" "$TMP/bundle-validate.json" ;;
    *) die "unknown target \`$1\`" ;;
  esac
  [ "$1" = direct ] || TARGET_PID=$PROXY_PID
  case $1 in
    direct) TARGET_URL=http://127.0.0.1:$BACKEND_PORT/items/42 ;;
    nginx* | haproxy*) TARGET_URL=http://127.0.0.1:$NGINX_PORT/bench/v1/items/42 ;;
    gateway-post*) TARGET_URL=http://127.0.0.1:$GW_PORT/bench/v1/items ;;
    gateway* | baseline*) TARGET_URL=http://127.0.0.1:$GW_PORT/bench/v1/items/42 ;;
  esac
}

stop_target() { [ "$1" = direct ] || stop_proxy; }

# throughput NAME: closed-loop wrk with fixed connections and duration; also the
# CPU time the server under test spent per request, which other jobs on the
# machine disturb much less than requests per second.
throughput() {
  local name=$1 out="$RESULTS/wrk-$1-$round.txt" load=("${LOAD_PIN[@]}") threads=$LOAD_THREADS
  if [[ $name == gateway-threads* ]]; then
    load=()
    threads=$NPROC
  fi
  if [ "$WARMUP" -gt 0 ]; then
    "${PRIO[@]}" "${load[@]}" wrk -t "$threads" -c "$CONNECTIONS" -d "${WARMUP}s" "${TARGET_WRK[@]}" "$TARGET_URL" >/dev/null
  fi
  local t0 t1 r0=0 r1=0 rps requests cpu bad
  t0=$(cpu_ticks "$TARGET_PID")
  [[ $name != *-global ]] || r0=$(cpu_ticks "$REDIS_PID")
  "${PRIO[@]}" "${load[@]}" wrk -t "$threads" -c "$CONNECTIONS" -d "${DURATION}s" --latency "${TARGET_WRK[@]}" "$TARGET_URL" >"$out"
  t1=$(cpu_ticks "$TARGET_PID")
  [[ $name != *-global ]] || r1=$(cpu_ticks "$REDIS_PID")
  rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
  requests=$(awk '/requests in/ { print $1 }' "$out")
  per_request() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n }'; }
  cpu=$(per_request $((t1 - t0)))
  add RPS "$name" "$rps"
  add CPU "$name" "$cpu"
  # The Redis server's share of a global decision, which the gateway's CPU leaves out.
  [[ $name != *-global ]] || add REDIS_CPU "$name" "$(per_request $((r1 - r0)))"
  bad=$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
             /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
             END { print n + 0 }' "$out")
  [ "$bad" = 0 ] || NOTE[$name]="${NOTE[$name]:-}$bad errors or non-2xx answers in round $round; "
  say "$(printf 'round %s  %-22s %8s req/s  %6s µs CPU/request' "$round" "$name" "$rps" "$cpu")"
}

# latency NAME RATE: open-loop oha at a fixed rate, corrected for coordinated
# omission (a request's latency counts from when it was due, not when it left).
latency() {
  local name=$1 rate=$2 out="$RESULTS/oha-$1-$round.json"
  "${PRIO[@]}" "${LOAD_PIN[@]}" "$OHA" --no-tui -z "${DURATION}s" -c "$CONNECTIONS" -q "$rate" \
    --latency-correction -w --output-format json "${TOKEN_HEADER[@]}" "$TARGET_URL" >"$out"
  local us='(. * 1e6 | round)' p50 p99 p999 ok achieved
  p50=$(jq ".latencyPercentiles.p50 | $us" "$out")
  p99=$(jq ".latencyPercentiles.p99 | $us" "$out")
  p999=$(jq ".latencyPercentiles[\"p99.9\"] | $us" "$out")
  add P50 "$name" "$p50"
  add P99 "$name" "$p99"
  add P999 "$name" "$p999"
  ok=$(jq '.summary.successRate' "$out")
  achieved=$(jq '.summary.requestsPerSec | round' "$out")
  [ "$ok" = 1 ] || NOTE[$name]="${NOTE[$name]:-}success rate $ok in latency round $round; "
  if awk -v a="$achieved" -v r="$rate" 'BEGIN { exit !(a < 0.95 * r) }'; then
    NOTE[$name]="${NOTE[$name]:-}only $achieved of $rate req/s in latency round $round; "
  fi
  say "$(printf 'round %s  %-22s p50 %6s µs  p99 %6s µs  p99.9 %6s µs' "$round" "$name" "$p50" "$p99" "$p999")"
}

mkdir -p "$RESULTS"
rm -f "$RESULTS"/wrk-*.txt "$RESULTS"/oha-*.json "$RESULTS"/ready-*.json "$RESULTS"/summary.md
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T0=$SECONDS

# The musl-malloc variant, built before any load runs so that the compiler does
# not compete with the measurements. Building with the feature replaces the
# binary in target/, so the default build is run again (a no-op that puts the
# mimalloc binary back).
SYSALLOC=
if [ "$ALLOC" = 1 ]; then
  say "building the gateway without mimalloc (--features system-alloc)"
  build() {
    cargo build --release --locked --target "$MUSL_TARGET" -p mgw-gateway "$@" >"$TMP/build.log" 2>&1 ||
      { cat "$TMP/build.log" >&2; die "cargo build $* failed"; }
  }
  build --features system-alloc
  mkdir -p "$TOOLS"
  SYSALLOC=$TOOLS/mgw-gateway-system-alloc
  cp "$GATEWAY" "$SYSALLOC.tmp" && mv "$SYSALLOC.tmp" "$SYSALLOC"
  build
  # The two binaries must differ in the allocator.
  grep -qa mimalloc "$GATEWAY" || die "\`$GATEWAY\` does not contain mimalloc"
  ! grep -qa mimalloc "$SYSALLOC" || die "\`$SYSALLOC\` still contains mimalloc"
fi

bundle() {
  python3 bench/bundle.py --backend "http://127.0.0.1:$BACKEND_PORT" \
    --listen "127.0.0.1:$GW_PORT" --admin "127.0.0.1:$GW_ADMIN" "$@"
}
bundle --routes "$ROUTES" --analytics "$TMP/analytics.jsonl" --out "$TMP/bundle.json" \
  --nginx-locations "$TMP/locations.conf"
bundle --routes "$ROUTES" --analytics none --out "$TMP/bundle-no-analytics.json"
bundle --routes 1000 --analytics "$TMP/analytics.jsonl" --out "$TMP/bundle-1000.json"
TOKEN=
if [ "$JWT" = 1 ]; then
  say "signing $((2 * JWT_CACHE)) RS256 tokens"
  python3 bench/jwt.py --dir "$TMP" --counts "1,$((2 * JWT_CACHE))"
  TOKEN=$(grep -o '"ey[^"]*"' "$TMP/tokens-1.lua" | tr -d '"')
  jwt_bundle() { bundle --routes "$ROUTES" --analytics "$TMP/analytics.jsonl" --jwt-pem "$TMP/jwt-pub.pem" "$@"; }
  jwt_bundle --out "$TMP/bundle-jwt.json"
  jwt_bundle --jwt-cache 0 --out "$TMP/bundle-jwt-miss.json"
  jwt_bundle --jwt-cache "$JWT_CACHE" --out "$TMP/bundle-jwt-2x.json"
  [ "$GLOBAL" != 1 ] || jwt_bundle --redis-url "redis://127.0.0.1:$REDIS_PORT" \
    --redis-timeout-ms "${BENCH_REDIS_TIMEOUT_MS:-100}" --out "$TMP/bundle-jwt-global.json"
fi
bundle --routes "$ROUTES" --analytics none --validate --out "$TMP/bundle-validate.json" \
  --post-body "$TMP/item.json"
# wrk posts JSON with this script for the gateway-post targets.
cat >"$TMP/post.lua" <<LUA
local f = io.open("$TMP/item.json", "r")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

say "$NPROC CPUs, $SETUP_TEXT; $WORKERS worker(s); $CONNECTIONS connections; $ROUNDS rounds of ${DURATION}s; load average $LOAD_BEFORE"
start_backend
[ "$GLOBAL" != 1 ] || start_redis

THROUGHPUT=(direct nginx nginx-log gateway gateway-no-analytics)
LATENCY=(direct nginx nginx-log gateway)
[ -z "$HAPROXY" ] || THROUGHPUT+=(haproxy)
[ -z "$BASELINE" ] || THROUGHPUT+=(baseline-no-analytics)
if [ "$JWT" = 1 ]; then
  THROUGHPUT+=(gateway-jwt gateway-jwt-miss gateway-jwt-2x)
  [ -z "$HAPROXY" ] || THROUGHPUT+=(haproxy-jwt)
  [ -z "$BASELINE" ] || THROUGHPUT+=(baseline-jwt baseline-jwt-miss baseline-jwt-2x)
fi
if [ "$GLOBAL" = 1 ]; then
  # The same route and policy, `scope: local` (gateway-jwt) vs `scope: global`.
  THROUGHPUT+=(gateway-jwt-global)
  LATENCY+=(gateway-jwt gateway-jwt-global)
fi
if [ -n "$SYSALLOC" ]; then
  # "Slow under threads": the allocators also with one worker per CPU, unpinned.
  THROUGHPUT+=(gateway-musl gateway-threads gateway-threads-musl)
  LATENCY+=(gateway-musl)
fi
if [ -n "${BENCH_TARGETS:-}" ]; then
  KEPT=()
  for t in $BENCH_TARGETS; do
    [[ " ${THROUGHPUT[*]} " == *" $t "* ]] || die "BENCH_TARGETS: \`$t\` is not a target of this run (${THROUGHPUT[*]})"
    KEPT+=("$t")
  done
  THROUGHPUT=("${KEPT[@]}")
  LATENCY=()
fi

say "throughput (wrk, closed loop)"
GW_WRITTEN=0
GW_DROPPED=0
GLOBAL_FALLBACKS=0
GLOBAL_ERRORS=0
for ((round = 1; round <= ROUNDS; round++)); do
  for t in "${THROUGHPUT[@]}"; do
    start_target "$t"
    throughput "$t"
    case $t in
      gateway)
        GW_WRITTEN=$((GW_WRITTEN + $(gateway_metric mgw_analytics_events_written_total)))
        GW_DROPPED=$((GW_DROPPED + $(gateway_metric mgw_analytics_events_dropped_total)))
        GW_LOAD_RSS=$(vm_mib "$TARGET_PID" VmRSS)
        GW_LOAD_HWM=$(vm_mib "$TARGET_PID" VmHWM)
        ;;
      gateway-musl) SYS_LOAD_RSS=$(vm_mib "$TARGET_PID" VmRSS) ;;
      gateway-jwt-global)
        # Decisions Redis did not make in time (the policy's onRedisFailure made them).
        GLOBAL_FALLBACKS=$((GLOBAL_FALLBACKS + $(gateway_metric mgw_ratelimit_redis_fallbacks_total)))
        GLOBAL_ERRORS=$((GLOBAL_ERRORS + $(gateway_metric mgw_ratelimit_redis_errors_total)))
        ;;
    esac
    stop_target "$t"
  done
done

# shellcheck disable=SC2086 # the lists are space-separated numbers
for t in "${THROUGHPUT[@]}"; do
  RPS_SPREAD[$t]=$(spread ${RPS[$t]})
  RPS[$t]=$(median '%.0f' ${RPS[$t]})
  CPU[$t]=$(median '%.1f' ${CPU[$t]})
  REDIS_CPU[$t]=$(median '%.1f' ${REDIS_CPU[$t]:-})
done

RATE=${BENCH_RATE:-$((${RPS[nginx]:-0} / 2))}
if [ -n "$OHA" ]; then
  say "latency at $RATE req/s (oha, open loop, coordinated-omission corrected)"
  for ((round = 1; round <= ROUNDS; round++)); do
    for t in "${LATENCY[@]}"; do
      start_target "$t"
      latency "$t" "$RATE"
      stop_target "$t"
    done
  done
  # shellcheck disable=SC2086
  for t in "${LATENCY[@]}"; do
    P50[$t]=$(median '%.0f' ${P50[$t]})
    P99[$t]=$(median '%.0f' ${P99[$t]})
    P999[$t]=$(median '%.0f' ${P999[$t]})
  done
fi
if [ "${BENCH_VALIDATION:-1}" = 1 ]; then
  say "request validation: POST with a 1 KiB JSON body, validated vs not"
  VALIDATION=(gateway-post gateway-post-validated)
  for ((round = 1; round <= ROUNDS; round++)); do
    for t in "${VALIDATION[@]}"; do
      start_target "$t"
      throughput "$t"
      stop_target "$t"
    done
  done
  # shellcheck disable=SC2086
  for t in "${VALIDATION[@]}"; do
    RPS_SPREAD[$t]=$(spread ${RPS[$t]})
    RPS[$t]=$(median '%.0f' ${RPS[$t]})
    CPU[$t]=$(median '%.1f' ${CPU[$t]})
  done
fi
stop_tracked "$BACKEND_PID"
[ "$GLOBAL" != 1 ] || stop_tracked "$REDIS_PID"

say "time to ready and idle RSS (1,000 routes, $READY_RUNS runs)"
ready() {
  "${PRIO[@]}" python3 bench/ready.py --gateway "$1" --bundle "$TMP/bundle-1000.json" \
    --admin "127.0.0.1:$GW_ADMIN" --workers "$WORKERS" --runs "$READY_RUNS" \
    --gateway-cpus "$PROXY_CPUS" --poll-cpus "$LOAD_CPUS" >"$2"
}
ready "$GATEWAY" "$RESULTS/ready-mimalloc.json"
[ -z "$SYSALLOC" ] || ready "$SYSALLOC" "$RESULTS/ready-musl.json"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- Report ------------------------------------------------------------------

cell() { if [ -n "${1:-}" ]; then printf '%s' "$1"; else printf '–'; fi; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "–" }'; }
minus() { if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then printf '%+d' $(($1 - $2)); else printf '–'; fi; }
ready_field() { if [ -f "$1" ]; then jq -r "$2" "$1"; else printf '–'; fi; }
ms='(. * 10 | round / 10)'

{
  echo "mgw bench, $STARTED: $NPROC × $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $SETUP_TEXT"
  echo "$WORKERS worker(s), $CONNECTIONS connections, $ROUNDS rounds of ${DURATION}s per target, $ROUTES routes; load average $LOAD_BEFORE before, $LOAD_AFTER after"
  echo
  echo "| target | req/s | (min–max) | CPU µs/req | p50 µs | p99 µs | p99.9 µs |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  row() {
    # A BENCH_TARGETS run shows only the rows it measured.
    [ -z "${BENCH_TARGETS:-}" ] || [ -n "${RPS[$1]:-}" ] || return 0
    echo "| $2 | $(cell "${RPS[$1]:-}") | $(cell "${RPS_SPREAD[$1]:-}") | $(cell "${CPU[$1]:-}") | $(cell "${P50[$1]:-}") | $(cell "${P99[$1]:-}") | $(cell "${P999[$1]:-}") |"
  }
  row direct "direct to the backend"
  row nginx "nginx, access_log off"
  row nginx-log "nginx, access_log on (buffered JSON)"
  row gateway "**gateway, analytics to a file**"
  row gateway-no-analytics "gateway, analytics off"
  [ -z "$BASELINE" ] || row baseline-no-analytics "baseline gateway, analytics off"
  [ -z "$HAPROXY" ] || row haproxy "haproxy, 1 thread, http-reuse always"
  if [ "$JWT" = 1 ]; then
    row gateway-jwt "**gateway, product: JWT RS256 (cached) + per-consumer limit + analytics**"
    row gateway-jwt-miss "gateway, product with cacheSize 0 (every request verifies)"
    row gateway-jwt-2x "gateway, product, $((2 * JWT_CACHE)) tokens at random, cacheSize $JWT_CACHE"
    [ -z "$HAPROXY" ] || row haproxy-jwt "haproxy, jwt_verify RS256 + stick-table limit + log"
    [ "$GLOBAL" != 1 ] || row gateway-jwt-global "gateway, product with the limit \`scope: global\` (Redis on loopback)"
    if [ -n "$BASELINE" ]; then
      row baseline-jwt "baseline gateway, product"
      row baseline-jwt-miss "baseline gateway, product with cacheSize 0"
      row baseline-jwt-2x "baseline gateway, product, $((2 * JWT_CACHE)) tokens, cacheSize $JWT_CACHE"
    fi
  fi
  if [ -n "$SYSALLOC" ]; then
    row gateway-musl "gateway, analytics to a file, musl malloc"
    row gateway-threads "gateway, $NPROC workers unpinned, mimalloc"
    row gateway-threads-musl "gateway, $NPROC workers unpinned, musl malloc"
  fi
  if [ "${BENCH_VALIDATION:-1}" = 1 ]; then
    row gateway-post "gateway, POST 1 KiB JSON, analytics off"
    row gateway-post-validated "gateway, same POST with request validation"
  fi
  echo
  echo "Medians over $ROUNDS rounds. req/s: wrk, closed loop, $CONNECTIONS connections. CPU µs/req: CPU"
  echo "time of the server under test (all its threads or processes) per request; for"
  echo "\"direct\", the backend's."
  if [ -n "$OHA" ]; then
    echo "Latency: oha, open loop at a fixed $RATE req/s (half of nginx's max), corrected for"
    echo "coordinated omission."
  else
    echo "Latency: not measured (oha missing)."
  fi
  echo
  echo "- throughput gateway / nginx: $(ratio "${RPS[gateway]:-}" "${RPS[nginx]:-}") against access_log off, $(ratio "${RPS[gateway]:-}" "${RPS[nginx-log]:-}") against access_log on (goal ≥ 1.0)"
  echo "- CPU per request gateway / nginx: $(ratio "${CPU[gateway]:-}" "${CPU[nginx]:-}") against access_log off, $(ratio "${CPU[gateway]:-}" "${CPU[nginx-log]:-}") against access_log on (lower is better)"
  if [ -n "$OHA" ]; then
    echo "- p99 added over direct: gateway $(minus "${P99[gateway]:-}" "${P99[direct]:-}") µs, nginx $(minus "${P99[nginx]:-}" "${P99[direct]:-}") µs, nginx with access_log $(minus "${P99[nginx-log]:-}" "${P99[direct]:-}") µs (goal ≤ 150 µs)"
  fi
  echo "- CPU per request, plain proxying: gateway (analytics off) / nginx $(ratio "${CPU[gateway-no-analytics]:-}" "${CPU[nginx]:-}") (goal ≤ 1.0); haproxy / nginx $(ratio "${CPU[haproxy]:-}" "${CPU[nginx]:-}")$([ -z "$BASELINE" ] || printf '; baseline / nginx %s' "$(ratio "${CPU[baseline-no-analytics]:-}" "${CPU[nginx]:-}")")"
  if [ "$JWT" = 1 ]; then
    echo "- CPU per request, product: gateway / nginx $(ratio "${CPU[gateway-jwt]:-}" "${CPU[nginx]:-}") (goal ≤ 1.2); gateway / haproxy-jwt $(ratio "${CPU[gateway-jwt]:-}" "${CPU[haproxy-jwt]:-}") (goal ≤ 0.5)"
    echo "- CPU per request, every token verified: gateway cacheSize 0 / haproxy-jwt $(ratio "${CPU[gateway-jwt-miss]:-}" "${CPU[haproxy-jwt]:-}") (goal ≤ 0.8)$([ -z "$BASELINE" ] || printf '; baseline %s' "$(ratio "${CPU[baseline-jwt-miss]:-}" "${CPU[haproxy-jwt]:-}")")"
    echo "- CPU per request, 2x cacheSize tokens / one token: $(ratio "${CPU[gateway-jwt-2x]:-}" "${CPU[gateway-jwt]:-}")$([ -z "$BASELINE" ] || printf '; baseline %s' "$(ratio "${CPU[baseline-jwt-2x]:-}" "${CPU[baseline-jwt]:-}")")"
  fi
  if [ "$GLOBAL" = 1 ]; then
    diff_us() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a != "" && b != "") printf "%+.1f", a - b; else printf "–" }'; }
    echo "- global limit vs local, same route and policy: gateway CPU $(diff_us "${CPU[gateway-jwt-global]:-}" "${CPU[gateway-jwt]:-}") µs per request, plus $(cell "${REDIS_CPU[gateway-jwt-global]:-}") µs in redis-server; p99 $(diff_us "${P99[gateway-jwt-global]:-}" "${P99[gateway-jwt]:-}") µs; $GLOBAL_FALLBACKS decisions fell back (Redis past timeoutMs = ${BENCH_REDIS_TIMEOUT_MS:-100} ms, or down), $GLOBAL_ERRORS Redis errors"
  fi
  if [ "${BENCH_VALIDATION:-1}" = 1 ]; then
    echo "- request validation of a 1 KiB JSON body: $(awk -v a="${CPU[gateway-post-validated]:-0}" -v b="${CPU[gateway-post]:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%+.1f", a - b; else printf "–" }') µs CPU per request (goal < 10 µs)"
  fi
  echo "- analytics in the gateway throughput runs: $GW_WRITTEN events written, $GW_DROPPED dropped"
  echo "- ready with 1,000 routes: $(ready_field "$RESULTS/ready-mimalloc.json" "\"\\(.ready_ms.median | $ms) ms median (\\(.ready_ms.min | $ms)–\\(.ready_ms.max | $ms))\"") over $READY_RUNS runs (goal ≤ 10 ms)"
  echo "- idle RSS with 1,000 routes: $(ready_field "$RESULTS/ready-mimalloc.json" "\"\\(.rss_mib.median | $ms) MiB (anonymous \\(.rss_anon_mib.median | $ms), the binary's file pages \\(.rss_file_mib.median | $ms))\"") (goal ≤ 8 MiB); after a throughput run ${GW_LOAD_RSS:-–} MiB, peak ${GW_LOAD_HWM:-–} MiB"
  if [ -n "$SYSALLOC" ]; then
    echo "- mimalloc / musl malloc, throughput: $(ratio "${RPS[gateway]:-}" "${RPS[gateway-musl]:-}") with $WORKERS worker(s) pinned, $(ratio "${RPS[gateway-threads]:-}" "${RPS[gateway-threads-musl]:-}") with $NPROC unpinned; CPU per request: $(ratio "${CPU[gateway]:-}" "${CPU[gateway-musl]:-}") and $(ratio "${CPU[gateway-threads]:-}" "${CPU[gateway-threads-musl]:-}")"
    echo "- musl malloc: ready $(ready_field "$RESULTS/ready-musl.json" "\"\\(.ready_ms.median | $ms) ms\""), idle RSS $(ready_field "$RESULTS/ready-musl.json" "\"\\(.rss_mib.median | $ms) MiB\""), ${SYS_LOAD_RSS:-–} MiB after a throughput run"
  fi
  for k in "${!NOTE[@]}"; do echo "- warning, $k: ${NOTE[$k]}"; done
  echo
  echo "Raw outputs in \`${RESULTS#"$ROOT"/}\`; $((SECONDS - T0)) s in all."
} | tee "$RESULTS/summary.md"
