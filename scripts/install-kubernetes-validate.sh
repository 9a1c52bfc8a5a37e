#!/usr/bin/env bash
# Installs `kubernetes-validate` (PyPI) into a project-local virtualenv
# (`target/tools/venv`, or `$MGW_TOOLS_DIR/venv`) and links its command into
# `target/tools/bin`, where the chart tests look for it. The version is pinned so
# the Kubernetes schemas the tests validate against are the same everywhere.
# Idempotent: does nothing when the pinned version is already installed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${MGW_TOOLS_DIR:-$ROOT/target/tools}"
BIN="$TOOLS/bin"
VENV="$TOOLS/venv"
VERSION="${MGW_KUBERNETES_VALIDATE_VERSION:-1.37.0}"

if [ -x "$VENV/bin/kubernetes-validate" ] \
  && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null)" = "$VERSION" ]; then
  mkdir -p "$BIN"
  ln -sfn "$VENV/bin/kubernetes-validate" "$BIN/kubernetes-validate"
  exit 0
fi

PY="$(command -v python3 || true)"
if [ -z "$PY" ]; then
  echo "install-kubernetes-validate: \`python3\` is missing (apt-get install python3 python3-venv)" >&2
  exit 1
fi

echo "install-kubernetes-validate: installing kubernetes-validate $VERSION into \`$VENV\`" >&2
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    echo "install-kubernetes-validate: \`python3 -m venv\` failed (apt-get install python3-venv)" >&2
    rm -rf "$VENV"
    exit 1
  fi
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$VERSION"
mkdir -p "$BIN"
ln -sfn "$VENV/bin/kubernetes-validate" "$BIN/kubernetes-validate"
"$BIN/kubernetes-validate" --version >&2 || true
