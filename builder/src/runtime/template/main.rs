//! This project's gateway: the stock gateway plus the project's filters
//! (`mgw_gateway::filter::Filter`; README "Customising the gateway").

mod filters;

use std::process::ExitCode;

use mgw_gateway::filter::Filters;

#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before the first allocation: sizes the allocator's first arena.
    mgw_gateway::alloc_release::configure();
    // Registration order is the order filters run in.
    let filters = Filters::new().with(filters::ServedBy);
    mgw_gateway::cli::main_with(filters)
}
