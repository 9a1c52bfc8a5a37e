# mgw — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
MUSL_TARGET := x86_64-unknown-linux-musl
GATEWAY_BIN := target/$(MUSL_TARGET)/release/mgw-gateway
MGW := target/release/mgw
CARGO ?= cargo

.PHONY: all setup gateway mgw demo test test-unit lint fmt bench bench-build fuzz clean

all: gateway mgw

## setup: install the musl target and the tools the tests drive (idempotent)
setup:
	bash scripts/setup.sh

## gateway: the static musl release binary that goes into images
gateway:
	@rustup target list --installed | grep -qx $(MUSL_TARGET) || rustup target add $(MUSL_TARGET)
	@command -v musl-gcc >/dev/null || bash scripts/setup.sh
	$(CARGO) build --release --locked --target $(MUSL_TARGET) -p mgw-gateway
	@file $(GATEWAY_BIN) 2>/dev/null | grep -q 'statically linked\|static-pie' || ldd $(GATEWAY_BIN) 2>&1 | grep -q 'not a dynamic\|statically linked' || { echo "error: $(GATEWAY_BIN) is not static"; exit 1; }
	@ls -l $(GATEWAY_BIN)

## mgw: the builder CLI
mgw:
	$(CARGO) build --release --locked -p mgw-builder

## demo: set up, build the example gateway image and serve a request through it
## (the CLI in the dev profile: it compiles in a fraction of the release time)
demo: setup gateway
	$(CARGO) build --locked -p mgw-builder
	MGW=target/debug/mgw bash scripts/demo.sh

## test: lint and the whole test suite (unit, integration, end-to-end with real tools)
test: setup gateway lint
	@# Fuzz targets are linked (not run: a libFuzzer binary fuzzes until stopped).
	$(CARGO) build --locked -p mgw-fuzz --bins
	@# No --all-targets here: it would run the fuzz binaries as tests.
	MGW_GATEWAY_BINARY=$(CURDIR)/$(GATEWAY_BIN) $(CARGO) test --workspace --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@# No import cycle between the top-level modules of a crate (ARCHITECTURE.md).
	@out=$$(python3 scripts/module-cycles.py --top bundle/src gateway/src builder/src) || { echo "$$out"; exit 1; }

fmt:
	$(CARGO) fmt --all

## bench: gateway vs nginx vs direct (not a test; see BENCHMARKS.md)
bench: setup gateway
	bash bench/run.sh

## bench-build: mgw build time for a 50-operation project vs the same image with umoci
bench-build: setup gateway mgw
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
