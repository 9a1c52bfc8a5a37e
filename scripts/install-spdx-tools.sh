#!/usr/bin/env bash
# Installs `spdx-tools` (PyPI; the SPDX project's own parser and validator,
# command `pyspdxtools`) into the project-local virtualenv (`target/tools/venv`,
# or `$MGW_TOOLS_DIR/venv`) and links `pyspdxtools` into `target/tools/bin`, where
# the registry tests look for it to validate the SBOM against SPDX 2.3. Pinned;
# idempotent: does nothing when the pinned version is already installed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${MGW_TOOLS_DIR:-$ROOT/target/tools}"
BIN="$TOOLS/bin"
VENV="$TOOLS/venv"
VERSION="${MGW_SPDX_TOOLS_VERSION:-0.8.5}"

if [ -x "$VENV/bin/pyspdxtools" ] \
  && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("spdx-tools"))' 2>/dev/null)" = "$VERSION" ]; then
  mkdir -p "$BIN"
  ln -sfn "$VENV/bin/pyspdxtools" "$BIN/pyspdxtools"
  exit 0
fi

PY="$(command -v python3 || true)"
if [ -z "$PY" ]; then
  echo "install-spdx-tools: \`python3\` is missing (apt-get install python3 python3-venv)" >&2
  exit 1
fi

echo "install-spdx-tools: installing spdx-tools $VERSION into \`$VENV\`" >&2
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    echo "install-spdx-tools: \`python3 -m venv\` failed (apt-get install python3-venv)" >&2
    rm -rf "$VENV"
    exit 1
  fi
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "spdx-tools==$VERSION"
mkdir -p "$BIN"
ln -sfn "$VENV/bin/pyspdxtools" "$BIN/pyspdxtools"
