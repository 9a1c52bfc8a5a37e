#!/usr/bin/env bash
# make bench-build: how long `mgw build` takes to bake an image from a prebuilt
# gateway binary and a 50-operation project, next to the same image assembled
# with umoci commands (init, new, insert base + binary + bundle, config, tag).
# Not a test: it measures and prints. Temp files are removed on exit.
#
# First builds get an empty layer cache each; rebuilds share a warm one
# (MGW_CACHE_DIR in the temp dir; the user's cache is never touched).
# Knobs: BENCH_BUILD_RUNS (default 7), BENCH_OPS (default 50).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUNS=${BENCH_BUILD_RUNS:-7}
OPS=${BENCH_OPS:-50}
MGW=${MGW:-$ROOT/target/release/mgw}
GATEWAY=${MGW_GATEWAY_BINARY:-$ROOT/target/x86_64-unknown-linux-musl/release/mgw-gateway}
for f in "$MGW" "$GATEWAY"; do
  [ -x "$f" ] || { echo "bench-build: \`$f\` is missing: run \`make mgw gateway\`" >&2; exit 1; }
done
command -v umoci >/dev/null || { echo "bench-build: umoci is missing: bash scripts/setup.sh" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A project with $OPS operations.
mkdir -p "$work/p/apis"
python3 - "$work/p" "$OPS" <<'PY'
import sys, pathlib
root, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
paths = []
for i in range(n // 2 + n % 2):
    ops = [f"    get:\n      operationId: get{i}\n      responses: {{'200': {{description: ok}}}}\n"]
    if 2 * i + 1 < n:
        ops.append(f"    delete:\n      operationId: del{i}\n      responses: {{'204': {{description: gone}}}}\n")
    paths.append(f"  /things{i}/{{id}}:\n" + "".join(ops))
(root / "apis/api.yaml").write_text(
    "openapi: 3.0.3\ninfo: {title: bench, version: 1.0.0}\npaths:\n" + "".join(paths))
(root / "mgw.yaml").write_text(
    "name: bench\nversion: 1.0.0\nupstreams:\n  up:\n    urls: ['${UP:-http://127.0.0.1:8081}']\n"
    "apis:\n  - name: bench\n    spec: apis/api.yaml\n    basePath: /bench\n    upstream: up\n")
PY

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m/1e9}'; }

# First builds: an empty layer cache each time (the gateway layer is compressed).
cold_times=()
for i in $(seq "$RUNS"); do
  rm -rf "$work/out"
  t0=$(now)
  MGW_CACHE_DIR="$work/cold-cache-$i" "$MGW" build "$work/p" --out "$work/out" --gateway-binary "$GATEWAY" >/dev/null
  t1=$(now)
  cold_times+=("$((t1 - t0))")
done
# Rebuilds (a spec change, the same gateway binary): the layer cache is warm.
export MGW_CACHE_DIR="$work/cache"
"$MGW" build "$work/p" --out "$work/out" --gateway-binary "$GATEWAY" >/dev/null
mgw_times=()
for _ in $(seq "$RUNS"); do
  rm -rf "$work/out"
  t0=$(now)
  "$MGW" build "$work/p" --out "$work/out" --gateway-binary "$GATEWAY" >/dev/null
  t1=$(now)
  mgw_times+=("$((t1 - t0))")
done
mgw_notar=()
for _ in $(seq "$RUNS"); do
  rm -rf "$work/out"
  t0=$(now)
  "$MGW" build "$work/p" --out "$work/out" --gateway-binary "$GATEWAY" --no-tarball >/dev/null
  t1=$(now)
  mgw_notar+=("$((t1 - t0))")
done

# The same three layers with umoci (as root; --rootless otherwise).
rootless=""
[ "$(id -u)" = 0 ] || rootless="--rootless"
cp "$work/out/bench/bundle.json" "$work/bundle.json"
mkdir -p "$work/base/etc/ssl/certs" "$work/base/tmp" "$work/bin/usr/local/bin" "$work/cfg/etc/mgw"
cp base-image/rootfs/etc/passwd base-image/rootfs/etc/group "$work/base/etc/"
cp base-image/rootfs/etc/ssl/certs/ca-certificates.crt "$work/base/etc/ssl/certs/"
chmod 1777 "$work/base/tmp"
cp "$GATEWAY" "$work/bin/usr/local/bin/mgw-gateway"
cp "$work/bundle.json" "$work/cfg/etc/mgw/bundle.json"
umoci_times=()
for _ in $(seq "$RUNS"); do
  rm -rf "$work/u"
  t0=$(now)
  umoci init --layout "$work/u"
  umoci new --image "$work/u:t"
  umoci insert $rootless --image "$work/u:t" "$work/base" /
  umoci insert $rootless --image "$work/u:t" "$work/bin" /
  umoci insert $rootless --image "$work/u:t" "$work/cfg" /
  umoci config --image "$work/u:t" --config.user 65532:65532 \
    --config.entrypoint /usr/local/bin/mgw-gateway --config.exposedports 8080/tcp \
    --config.stopsignal SIGTERM --clear=config.env
  t1=$(now)
  umoci_times+=("$((t1 - t0))")
done

printf '\n%-44s %10s\n' "image from a prebuilt binary, $OPS operations" "median s"
printf '%-44s %10s\n' "mgw build, first (layout + tarball)" "$(printf '%s\n' "${cold_times[@]}" | median)"
printf '%-44s %10s\n' "mgw build, rebuild (layout + tarball)" "$(printf '%s\n' "${mgw_times[@]}" | median)"
printf '%-44s %10s\n' "mgw build --no-tarball, rebuild (layout)" "$(printf '%s\n' "${mgw_notar[@]}" | median)"
printf '%-44s %10s\n' "umoci init/new/insert x3/config (layout)" "$(printf '%s\n' "${umoci_times[@]}" | median)"
printf '\n(%s runs each; mgw %s; %s)\n' "$RUNS" "$("$MGW" --version)" "$(umoci --version)"
