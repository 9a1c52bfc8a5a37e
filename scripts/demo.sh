#!/usr/bin/env bash
# The main job, end to end: build the example project's gateway image, run it from
# its OCI layout (no daemon) in front of the example backend, and send requests
# through it. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
MGW=${MGW:-target/release/mgw}
OUT=${OUT:-out}
BACKEND_PORT=${BACKEND_PORT:-18081}
API=${API:-127.0.0.1:18080}
ADMIN=${ADMIN:-127.0.0.1:19090}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== mgw validate examples/petstore"
"$MGW" validate examples/petstore
echo
echo "== mgw build examples/petstore --out $OUT"
"$MGW" build examples/petstore --out "$OUT"
echo
echo "== mgw inspect $OUT/petstore"
"$MGW" inspect "$OUT/petstore"
echo

echo "== starting the example backend on 127.0.0.1:$BACKEND_PORT"
python3 examples/petstore-backend.py "$BACKEND_PORT" 2>/dev/null &
pids+=($!)
# The gateway is ready in milliseconds; Python takes longer to listen.
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$BACKEND_PORT/v1/pets" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$BACKEND_PORT/v1/pets" >/dev/null || { echo "the example backend did not start" >&2; exit 1; }
echo "== mgw run $OUT/petstore (API on $API, admin on $ADMIN)"
MGW_LOG_FORMAT=text "$MGW" run "$OUT/petstore" \
  --env PETSTORE_UPSTREAM="http://127.0.0.1:$BACKEND_PORT/v1" \
  --env MGW_LISTEN="$API" --env MGW_ADMIN_LISTEN="$ADMIN" >"$OUT/analytics.jsonl" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

show() { echo "\$ curl $*"; curl -sS -i "$@"; echo; echo; }
show "http://$API/petstore/v1/pets"
show -X POST -H 'content-type: application/json' -d '{"name":"Kitty","tag":"cat"}' "http://$API/petstore/v1/pets"
show "http://$API/petstore/v1/pets/3"
show -X PATCH "http://$API/petstore/v1/pets/3"
show "http://$API/nowhere"
echo "\$ curl http://$ADMIN/metrics | grep mgw_requests_total"
curl -sS "http://$ADMIN/metrics" | grep '^mgw_requests_total' || true
echo
kill -TERM "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true
echo "== analytics events ($OUT/analytics.jsonl)"
cat "$OUT/analytics.jsonl"
echo
echo "demo done: the image is $OUT/petstore/oci (OCI layout) and $OUT/petstore/image.tar (docker load / skopeo)"
