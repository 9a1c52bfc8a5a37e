#!/usr/bin/env bash
# Installs `cargo-zigbuild` and Zig (both from PyPI: `cargo-zigbuild`, `ziglang`)
# into the project-local virtualenv (`target/tools/venv`, or `$MGW_TOOLS_DIR/venv`)
# and links `cargo-zigbuild` into `target/tools/bin`. Zig is the C cross toolchain
# the aarch64 musl gateway needs (ring and mimalloc compile C); `make gateway`
# runs `cargo zigbuild` with that bin directory first on PATH. Pinned;
# idempotent: does nothing when the pinned versions are already installed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${MGW_TOOLS_DIR:-$ROOT/target/tools}"
BIN="$TOOLS/bin"
VENV="$TOOLS/venv"
ZIGBUILD_VERSION="${MGW_CARGO_ZIGBUILD_VERSION:-0.20.1}"
ZIG_VERSION="${MGW_ZIGLANG_VERSION:-0.13.0.post1}"

installed() {
  "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null
}

if [ -x "$VENV/bin/cargo-zigbuild" ] \
  && [ "$(installed cargo-zigbuild)" = "$ZIGBUILD_VERSION" ] \
  && [ "$(installed ziglang)" = "$ZIG_VERSION" ]; then
  mkdir -p "$BIN"
  ln -sfn "$VENV/bin/cargo-zigbuild" "$BIN/cargo-zigbuild"
  exit 0
fi

PY="$(command -v python3 || true)"
if [ -z "$PY" ]; then
  echo "install-zigbuild: \`python3\` is missing (apt-get install python3 python3-venv)" >&2
  exit 1
fi

echo "install-zigbuild: installing cargo-zigbuild $ZIGBUILD_VERSION and ziglang $ZIG_VERSION into \`$VENV\`" >&2
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    echo "install-zigbuild: \`python3 -m venv\` failed (apt-get install python3-venv)" >&2
    rm -rf "$VENV"
    exit 1
  fi
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "cargo-zigbuild==$ZIGBUILD_VERSION" "ziglang==$ZIG_VERSION"
mkdir -p "$BIN"
ln -sfn "$VENV/bin/cargo-zigbuild" "$BIN/cargo-zigbuild"
