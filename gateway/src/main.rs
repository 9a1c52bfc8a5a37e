//! The stock `mgw-gateway` binary: no native filters. A project's `runtime/`
//! crate is the same file with its filters registered.

use std::process::ExitCode;

// musl's allocator serializes threads on one lock; mimalloc keeps throughput
// (see BENCHMARKS.md for the measurement). The `system-alloc` feature keeps
// musl's malloc, only so that `make bench` can measure the difference.
#[cfg(all(target_env = "musl", not(feature = "system-alloc")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    mgw_gateway::cli::main_with(mgw_gateway::filter::Filters::default())
}
