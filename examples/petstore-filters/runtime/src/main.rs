//! The petstore-filters gateway: the stock gateway plus this project's filters.

mod filters;

use std::process::ExitCode;

use mgw_gateway::filter::Filters;

#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before the first allocation: sizes the allocator's first arena.
    mgw_gateway::alloc_release::configure();
    let filters = Filters::new()
        .with(filters::NoCats)
        .with(filters::TenantHeader);
    mgw_gateway::cli::main_with(filters)
}
