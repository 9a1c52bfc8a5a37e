#!/usr/bin/env bash
# Instructions per request of the gateway, counted by callgrind: deterministic,
# so a change can be judged on a busy shared machine where CPU time is noise.
#
#   bench/instructions.sh GATEWAY_BINARY [SCENARIO...]
#
# Scenarios: plain (analytics off, the default), analytics (to a file), product
# (JWT RS256 cached + per-consumer limit + analytics), product-miss (the same with
# the JWT cacheSize 0: every request verifies the token). The peers of `make bench`,
# counted the same way: nginx (bench/proxy.conf.in, one worker, no master process,
# access log off: the peer of plain), haproxy (bench/haproxy.cfg.in, one thread) and
# haproxy-jwt (RS256 `jwt_verify` on every request + stick table + log: the peer of
# product-miss). For each, the proxy runs under `valgrind --tool=callgrind` against a
# loopback nginx backend twice, serving N1 and then N2 requests over 8 keep-alive
# connections; (Ir(N2) - Ir(N1)) / (N2 - N1) is what one request costs, start-up and
# shutdown cancel out. Knobs: INSN_N1 (default 500), INSN_N2 (default 2500),
# INSN_KEEP=DIR keeps the callgrind profiles (callgrind_annotate them),
# INSN_CACHE_SIM=1 also simulates the caches and branch predictor and prints the
# instruction-cache misses (I1mr) and mispredicted branches per request.
# Not a test; prints one line per scenario.
set -euo pipefail

GATEWAY=$(realpath "$1")
shift
SCENARIOS=("${@:-plain}")
N1=${INSN_N1:-500}
N2=${INSN_N2:-2500}
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }
CG=(valgrind --tool=callgrind)
[ "${INSN_CACHE_SIM:-0}" = 1 ] && CG+=(--cache-sim=yes --branch-sim=yes)
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
GW_PORT=$PROXY_PORT
GW_ADMIN=$ADMIN_PORT
start_backend

bundle() {
  python3 "$ROOT/bench/bundle.py" --routes 300 --backend "http://127.0.0.1:$BACKEND_PORT" \
    --listen "127.0.0.1:$GW_PORT" --admin "127.0.0.1:$GW_ADMIN" "$@"
}

# load N [HEADER]: N GETs over 8 keep-alive connections, each answer read whole.
load() {
  python3 - "$GW_PORT" "$1" "${2:-}" <<'EOF'
import socket, sys, time
port, n, header = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
extra = (header + "\r\n") if header else ""
req = f"GET /bench/v1/items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()
deadline = time.time() + 60
while True:
    try:
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.2)
bufs = [b""] * 8
def one(i):
    s = conns[i]
    s.sendall(req)
    buf = bufs[i]
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length": length = int(v)
            total = head_end + 4 + length
            if len(buf) >= total:
                status = head.split(" ")[1]
                if status != "200": sys.exit(f"status {status}: {head}")
                bufs[i] = buf[total:]
                return
        chunk = s.recv(65536)
        if not chunk: sys.exit("connection closed")
        buf += chunk
for k in range(n):
    one(k % 8)
EOF
}

# count N [HEADER]: callgrind's event totals ("Ir ..." in the order of its `events:` line)
# for the proxy of $SCENARIO serving N requests.
count() {
  local out=$TMP/cg.$1.out
  case $SCENARIO in
    nginx) "${CG[@]}" --callgrind-out-file="$out" nginx -p "$TMP" -c "$TMP/proxy.conf" \
      -e "$TMP/proxy-error.log" -g 'master_process off;' >/dev/null 2>"$TMP/cg.log" & ;;
    haproxy*) "${CG[@]}" --callgrind-out-file="$out" haproxy -f "$TMP/haproxy.cfg" -db \
      >/dev/null 2>"$TMP/cg.log" & ;;
    *) "${CG[@]}" --callgrind-out-file="$out" "$GATEWAY" --bundle "$TMP/b.json" --workers 1 \
      >/dev/null 2>"$TMP/cg.log" & ;;
  esac
  local pid=$!
  load 20 "${2:-}" # wait until it answers (the same 20 in every run)
  load "$1" "${2:-}"
  kill -TERM "$pid"
  wait "$pid" || true
  local name=$SCENARIO
  case $SCENARIO in nginx | haproxy*) ;; *) name=$(basename "$GATEWAY").$SCENARIO ;; esac
  [ -n "${INSN_KEEP:-}" ] && mkdir -p "$INSN_KEEP" && cp "$out" "$INSN_KEEP/$name.$1.callgrind"
  [ -s "$out" ] || { echo "$SCENARIO: no profile (see $TMP/cg.log): $(tail -3 "$TMP/cg.log")" >&2; exit 1; }
  sed -n 's/^summary: //p; s/^totals: //p' "$out" | head -1
}

# bearer: an RSA key pair and one RS256 token (bench/jwt.py); sets `header` to send it.
bearer() {
  python3 "$ROOT/bench/jwt.py" --dir "$TMP" --counts 1 >/dev/null
  header="Authorization: Bearer $(grep -o '"ey[^"]*"' "$TMP/tokens-1.lua" | tr -d '"')"
}

for SCENARIO in "${SCENARIOS[@]}"; do
  header=
  case $SCENARIO in
    plain) bundle --analytics none --out "$TMP/b.json" ;;
    analytics) bundle --analytics "$TMP/analytics.jsonl" --out "$TMP/b.json" ;;
    product | product-miss)
      bearer
      cache=10000
      [ "$SCENARIO" = product ] || cache=0
      bundle --analytics "$TMP/analytics.jsonl" --jwt-pem "$TMP/jwt-pub.pem" --jwt-cache "$cache" --out "$TMP/b.json"
      ;;
    nginx) write_plain_configs 1 ;; # $TMP/proxy.conf, as `make bench` writes it
    haproxy) python3 "$ROOT/bench/haproxy_cfg.py" plain "$GW_PORT" "$BACKEND_PORT" "$TMP" "$TMP/haproxy.cfg" ;;
    haproxy-jwt)
      bearer
      python3 "$ROOT/bench/haproxy_cfg.py" jwt "$GW_PORT" "$BACKEND_PORT" "$TMP" "$TMP/haproxy.cfg"
      ;;
    *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
  esac
  read -ra e1 <<<"$(count "$N1" "$header")"
  read -ra e2 <<<"$(count "$N2" "$header")"
  per() { echo $(( (e2[$1] - e1[$1]) / (N2 - N1) )); }
  who=$(basename "$GATEWAY")
  case $SCENARIO in nginx | haproxy*) who=$SCENARIO ;; esac
  extra=
  # With the simulation on, callgrind's events are Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim.
  [ "${#e1[@]}" -ge 13 ] && extra=", $(per 3) I1 misses, $(( $(per 10) + $(per 12) )) mispredicted branches"
  echo "$SCENARIO: $(per 0) instructions per request$extra ($who; Ir ${e1[0]} @ $N1, ${e2[0]} @ $N2)"
done
