# mgw — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
MUSL_TARGET := x86_64-unknown-linux-musl
GATEWAY_BIN := target/$(MUSL_TARGET)/release/mgw-gateway
ARM64_TARGET := aarch64-unknown-linux-musl
ARM64_GATEWAY_BIN := target/$(ARM64_TARGET)/release/mgw-gateway
# cargo-zigbuild and Zig (scripts/install-zigbuild.sh) live in the tools venv; Zig
# is the C cross compiler for ring and mimalloc on aarch64.
ZIG_PATH := $(CURDIR)/target/tools/venv/bin:$(PATH)
# GATEWAY_FAST=1: the same outputs without fat LTO (lto=false, 16 codegen units):
# minutes faster, a slightly larger and slower binary. `make test` builds the arm64
# gateway this way (CI time); `make gateway` alone builds what images ship (fat LTO).
GATEWAY_FAST ?=
GATEWAY_PROFILE_ENV := $(if $(GATEWAY_FAST),CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16)
MGW := target/release/mgw
CARGO ?= cargo

.PHONY: all setup gateway gateway-amd64 gateway-arm64 mgw demo test test-unit lint fmt bench bench-build fuzz clean

all: gateway mgw

## setup: install the musl target and the tools the tests drive (idempotent)
setup:
	bash scripts/setup.sh

## gateway: the static musl release binaries that go into images (linux/amd64, linux/arm64)
gateway: gateway-amd64 gateway-arm64

gateway-amd64:
	@rustup target list --installed | grep -qx $(MUSL_TARGET) || rustup target add $(MUSL_TARGET)
	@command -v musl-gcc >/dev/null || bash scripts/setup.sh
	$(GATEWAY_PROFILE_ENV) $(CARGO) build --release --locked --target $(MUSL_TARGET) -p mgw-gateway
	@file $(GATEWAY_BIN) 2>/dev/null | grep -q 'statically linked\|static-pie' || ldd $(GATEWAY_BIN) 2>&1 | grep -q 'not a dynamic\|statically linked' || { echo "error: $(GATEWAY_BIN) is not static"; exit 1; }
	@ls -l $(GATEWAY_BIN)

## gateway-arm64: the aarch64 musl gateway, cross-compiled with cargo-zigbuild
gateway-arm64:
	@rustup target list --installed | grep -qx $(ARM64_TARGET) || rustup target add $(ARM64_TARGET)
	@bash scripts/install-zigbuild.sh
	PATH="$(ZIG_PATH)" $(GATEWAY_PROFILE_ENV) $(CARGO) zigbuild --release --locked --target $(ARM64_TARGET) -p mgw-gateway
	@file $(ARM64_GATEWAY_BIN) | grep -q 'ARM aarch64.*statically linked\|ARM aarch64.*static-pie' || { echo "error: $(ARM64_GATEWAY_BIN) is not a static aarch64 executable"; file $(ARM64_GATEWAY_BIN); exit 1; }
	@ls -l $(ARM64_GATEWAY_BIN)

## mgw: the builder CLI
mgw:
	$(CARGO) build --release --locked -p mgw-builder

## demo: set up, build the example gateway image and serve a request through it
## (the CLI in the dev profile: it compiles in a fraction of the release time)
demo: setup gateway-amd64
	$(CARGO) build --locked -p mgw-builder
	MGW=target/debug/mgw bash scripts/demo.sh

## test: lint and the whole test suite (unit, integration, end-to-end with real tools)
test: setup gateway-amd64 lint
	$(MAKE) gateway-arm64 GATEWAY_FAST=1
	@# Fuzz targets are linked (not run: a libFuzzer binary fuzzes until stopped).
	$(CARGO) build --locked -p mgw-fuzz --bins
	@# No --all-targets here: it would run the fuzz binaries as tests.
	@# --no-fail-fast: one red test binary does not hide the others' results.
	MGW_GATEWAY_BINARY=$(CURDIR)/$(GATEWAY_BIN) MGW_GATEWAY_BINARY_ARM64=$(CURDIR)/$(ARM64_GATEWAY_BIN) $(CARGO) test --workspace --locked --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@# No import cycle between the top-level modules of a crate (ARCHITECTURE.md).
	@out=$$(python3 scripts/module-cycles.py --top bundle/src gateway/src builder/src) || { echo "$$out"; exit 1; }

fmt:
	$(CARGO) fmt --all

## bench: gateway vs nginx vs direct (not a test; see BENCHMARKS.md)
bench: setup gateway-amd64
	bash bench/run.sh

## bench-build: mgw build time for a 50-operation project vs the same image with umoci
bench-build: setup gateway-amd64 mgw
	bash bench/build.sh

## fuzz: run every fuzz target for FUZZ_SECONDS each, with coverage feedback (stable Rust)
FUZZ_SECONDS ?= 30
FUZZ_FLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing
fuzz:
	@# An explicit --target keeps RUSTFLAGS off build scripts and proc macros.
	@# Thin release: fat LTO over every target takes minutes and finds nothing more.
	CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 RUSTFLAGS="$(FUZZ_FLAGS)" $(CARGO) build --release --locked -p mgw-fuzz --target-dir target/fuzz --target x86_64-unknown-linux-gnu
	@for t in router_path bundle_json openapi_spec env_template image_reference registry_answers forwarded_for auth_credentials; do \
	  mkdir -p target/fuzz/corpus/$$t; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS)s)"; \
	  target/fuzz/x86_64-unknown-linux-gnu/release/$$t -max_total_time=$(FUZZ_SECONDS) target/fuzz/corpus/$$t || exit 1; \
	done

clean:
	$(CARGO) clean
	rm -rf out
