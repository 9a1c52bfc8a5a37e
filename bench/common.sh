# Shared by the small measurement scripts (instructions.sh, kernel.sh, shape.sh):
# a temp dir removed on exit with every process in PIDS, three free loopback
# ports, and the one-worker nginx backend of bench/backend.conf.in. Sourced, not run.
# After sourcing: ROOT, TMP, PIDS, BACKEND_PORT, PROXY_PORT, ADMIN_PORT.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
read -r BACKEND_PORT PROXY_PORT ADMIN_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

# start_backend [CMD_PREFIX...]: the nginx backend, e.g. `start_backend taskset -c 1`.
start_backend() {
  sed -e "s#@DIR@#$TMP#g" -e "s#@PORT@#$BACKEND_PORT#g" "$ROOT/bench/backend.conf.in" >"$TMP/backend.conf"
  "$@" nginx -e "$TMP/backend-error.log" -p "$TMP" -c "$TMP/backend.conf" &
  local pid=$!
  PIDS+=("$pid")
  # Up, and ours (not another process that took the port meanwhile).
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { echo "the backend did not start: $(cat "$TMP/backend-error.log")" >&2; exit 1; }
    curl -fsS -o /dev/null "http://127.0.0.1:$BACKEND_PORT/" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the backend did not answer on port $BACKEND_PORT" >&2
  exit 1
}

# write_plain_configs WORKERS: the plain-proxying bundle (300 routes, analytics
# off) as $TMP/bundle.json and nginx's proxy.conf (WORKERS workers, access log
# off) as $TMP/proxy.conf, both on PROXY_PORT; sets URL, the route the load hits.
write_plain_configs() {
  python3 "$ROOT/bench/bundle.py" --routes 300 --backend "http://127.0.0.1:$BACKEND_PORT" \
    --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" --analytics none \
    --out "$TMP/bundle.json" --nginx-locations "$TMP/locations.conf"
  sed -e "s#@DIR@#$TMP#g" -e "s#@PORT@#$PROXY_PORT#g" -e "s#@BACKEND_PORT@#$BACKEND_PORT#g" \
    -e "s#@WORKERS@#$1#g" -e "s#@ACCESS_LOG@#access_log off;#g" \
    "$ROOT/bench/proxy.conf.in" >"$TMP/proxy.conf"
  URL=http://127.0.0.1:$PROXY_PORT/bench/v1/items/1
}
