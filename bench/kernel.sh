#!/usr/bin/env bash
# Where a proxy's kernel time goes, per request, side by side: the gateway,
# nginx (the same proxy.conf as `make bench`) and, when it is installed, haproxy
# (bench/haproxy.cfg.in, one thread), one worker each, pinned to CPU 0,
# with wrk and the one-worker nginx backend on CPU 1 (bench/run.sh's method).
#
#   bench/kernel.sh GATEWAY_BINARY [GATEWAY_BINARY2 ...]
#
# For each target, one closed-loop wrk run (-t1 -c64) of KERNEL_DURATION
# seconds (default 5) under `perf stat` attached to the proxy's process:
# CPU (user/sys), context switches, migrations, page faults and the syscalls
# that matter, each divided by the requests wrk completed; TCP segments sent
# by the whole machine (nstat) per request; and one strace of 3 requests on one
# keep-alive connection, to show each request's syscall sequence (sizes,
# epoll_wait results); how much of the run the load generator's CPU was idle and
# the inter-processor interrupts it received (a write that wakes a reader on an
# idle CPU costs the writer one). KERNEL_RECORD=1 also writes a `perf record -g`
# profile per target into KERNEL_OUT (default target/kernel-results).
# Needs root (perf tracepoints). Not a test: it prints, it asserts nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 GATEWAY_BINARY [...]" >&2; exit 2; }
DURATION=${KERNEL_DURATION:-5}
OUT=${KERNEL_OUT:-$ROOT/target/kernel-results}
mkdir -p "$OUT"
for tool in perf strace wrk nginx nstat python3 taskset curl; do
  command -v "$tool" >/dev/null || { echo "\`$tool\` not found" >&2; exit 1; }
done
sysctl -qw kernel.perf_event_paranoid=-1 kernel.kptr_restrict=0 2>/dev/null || true

# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
start_backend taskset -c 1
write_plain_configs 1

wait_up() {
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$URL" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "proxy did not answer $URL" >&2
  exit 1
}

# The process whose CPU and syscalls count: nginx's one worker, or the gateway.
worker_of() {
  local pid=$1 child
  child=$(pgrep -P "$pid" | head -1 || true)
  echo "${child:-$pid}"
}

# Inter-processor interrupts CPU 1 received so far: "CAL RES" (function call, reschedule).
ipis() { awk '$1 == "CAL:" {c = $3} $1 == "RES:" {r = $3} END {print c, r}' /proc/interrupts; }
# CPU 1's time so far, in ticks: "IDLE ALL" (idle + iowait, and every state).
cpu1_ticks() { awk '$1 == "cpu1" {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

EVENTS=task-clock,context-switches,cpu-migrations,page-faults
SYSCALLS=(recvfrom read readv writev write sendto sendmsg recvmsg epoll_wait epoll_pwait
  epoll_pwait2 epoll_ctl futex madvise mmap munmap accept4 sched_yield setsockopt)
for s in "${SYSCALLS[@]}"; do EVENTS+=",syscalls:sys_enter_$s"; done
EVENTS+=",raw_syscalls:sys_enter"

# measure NAME: the proxy on $PROXY_PORT runs as $PROXY_PID.
measure() {
  local name=$1 pid
  pid=$(worker_of "$PROXY_PID")
  taskset -c 1 wrk -t1 -c64 -d1s "$URL" >/dev/null # warm-up
  local segs0
  segs0=$(nstat -az TcpOutSegs | awk '/TcpOutSegs/ {print $2}')
  perf stat -x, -e "$EVENTS" -p "$pid" -o "$OUT/$name.stat" &
  local perf_pid=$!
  local rec_pid=
  if [ "${KERNEL_RECORD:-0}" = 1 ]; then
    perf record -q -e cpu-clock -F 2000 -g -p "$pid" -o "$OUT/$name.perf.data" 2>/dev/null &
    rec_pid=$!
  fi
  sleep 0.2
  local cpu1_0 ipi0
  cpu1_0=$(cpu1_ticks)
  ipi0=$(ipis)
  taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" "$URL" >"$OUT/$name.wrk"
  local cpu1_1 ipi1
  cpu1_1=$(cpu1_ticks)
  ipi1=$(ipis)
  kill -INT "$perf_pid"
  [ -z "$rec_pid" ] || kill -INT "$rec_pid"
  wait "$perf_pid" || true
  [ -z "$rec_pid" ] || wait "$rec_pid" || true
  local segs1 reqs
  segs1=$(nstat -az TcpOutSegs | awk '/TcpOutSegs/ {print $2}')
  reqs=$(awk '/requests in/ {print $1}' "$OUT/$name.wrk")
  # The sequence of one keep-alive connection's requests (after a first one).
  strace -f -tt -s 0 -e trace='!futex,clock_gettime' -p "$pid" -o "$OUT/$name.strace" &
  local st=$!
  sleep 0.5
  python3 - "$PROXY_PORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
req = b"GET /bench/v1/items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
for _ in range(4):
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf or not buf.endswith(b"}\n"):
        buf += s.recv(65536)
EOF
  sleep 0.3
  kill -INT "$st"
  wait "$st" 2>/dev/null || true
  python3 - "$name" "$reqs" "$((segs1 - segs0))" "$OUT/$name.stat" "$DURATION" "$cpu1_0" "$cpu1_1" "$ipi0" "$ipi1" <<'EOF'
import sys
name, reqs, segs, path, dur = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
(idle0, all0), (idle1, all1) = ([int(x) for x in a.split()] for a in sys.argv[6:8])
(cal0, res0), (cal1, res1) = ([int(x) for x in a.split()] for a in sys.argv[8:10])
rows = {}
for line in open(path):
    parts = line.strip().split(",")
    if len(parts) < 3 or line.startswith("#"):
        continue
    try:
        rows[parts[2]] = float(parts[0])
    except ValueError:
        pass
out = [f"{name}: {reqs} requests ({reqs/dur:.0f}/s)"]
out.append(f"  task-clock µs/req {rows.get('task-clock', 0)*1000/reqs:.2f}")
for k, v in rows.items():
    if k == "task-clock" or v == 0:
        continue
    out.append(f"  {k.replace('syscalls:sys_enter_', '')} /req {v/reqs:.3f}")
out.append(f"  TcpOutSegs (whole machine) /req {segs/reqs:.2f}")
# Idle time of the load generator's CPU: a reader woken there while it idles costs
# the waker an inter-processor interrupt (`sock_def_readable` in the kernel profile).
out.append(f"  CPU 1 (wrk + backend) idle {100 * (idle1 - idle0) / max(all1 - all0, 1):.0f} %")
out.append(f"  IPIs received by CPU 1 /req: function call {(cal1 - cal0)/reqs:.3f}, reschedule {(res1 - res0)/reqs:.3f}")
print("\n".join(out))
EOF
}

# user/sys split from /proc around a second wrk run of the same length.
cpu_split() {
  local pid
  pid=$(worker_of "$PROXY_PID")
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" "$URL" >"$TMP/split.wrk"
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  local reqs tck
  reqs=$(awk '/requests in/ {print $1}' "$TMP/split.wrk")
  tck=$(getconf CLK_TCK)
  python3 -c "
r=$reqs; t=$tck
print(f'  user µs/req {($u1-$u0)/t*1e6/r:.2f}, sys µs/req {($s1-$s0)/t*1e6/r:.2f} ({r/$DURATION:.0f} req/s)')"
}

stop_proxy() {
  kill -TERM "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
}

taskset -c 0 nginx -e "$TMP/proxy-error.log" -p "$TMP" -c "$TMP/proxy.conf" &
PROXY_PID=$!
wait_up
measure nginx
cpu_split
stop_proxy

if command -v haproxy >/dev/null; then
  python3 "$ROOT/bench/haproxy_cfg.py" plain "$PROXY_PORT" "$BACKEND_PORT" "$TMP" "$TMP/haproxy.cfg"
  taskset -c 0 haproxy -f "$TMP/haproxy.cfg" -db >/dev/null 2>>"$TMP/haproxy.log" &
  PROXY_PID=$!
  wait_up
  measure haproxy
  cpu_split
  stop_proxy
fi

i=0
for gw in "$@"; do
  i=$((i + 1))
  MGW_LOG=warn taskset -c 0 "$gw" --bundle "$TMP/bundle.json" --workers 1 2>>"$TMP/gateway.log" &
  PROXY_PID=$!
  wait_up
  measure "gateway$i"
  cpu_split
  stop_proxy
done
echo "raw outputs in $OUT"
