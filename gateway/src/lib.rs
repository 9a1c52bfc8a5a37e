//! mgw-gateway: the runtime inside every mgw image.
//!
//! It loads one bundle at start ([`bundle`], the `mgw-bundle` crate), builds the
//! request pipeline from it ([`pipeline`]) and serves the API and admin listeners
//! ([`server`]) until SIGTERM.
//! See `ARCHITECTURE.md` for the map.
// `deny`, not `forbid`: `alloc_release` allows its one FFI call.
#![deny(unsafe_code)]

pub mod admin;
pub mod alloc_release;
pub mod analytics;
pub mod auth;
pub mod body;
pub mod bounded_queue;
pub mod cli;
pub mod client_ip;
pub mod conn;
pub mod cors;
pub mod error;
pub mod filter;
pub mod header_names;
pub mod headers;
pub mod histogram;
pub mod local_wake;
pub mod log_gate;
pub mod metrics;
pub mod mock;
pub mod otlp;
pub mod pipeline;
pub mod proxy;
pub mod ratelimit;
pub mod request_body;
pub mod request_id;
pub mod resilience;
pub mod response_check;
pub mod route_series;
pub mod router;
pub mod server;
pub mod tls;
pub mod trace;
pub mod transform;
pub mod upstream_pool;
pub mod upstream_tls;
pub mod validate;
pub mod workers;
pub mod write_batch;

// The bundle contract (wire types, `${VAR}` templates, validation into `Config`)
// lives in the `mgw-bundle` crate, shared with the builder; re-exported so
// `crate::bundle::…` and `crate::env::…` name it here.
pub use mgw_bundle as bundle;
pub use mgw_bundle::env;

use std::path::PathBuf;

/// Exit code for a bundle the gateway refuses (sysexits `EX_DATAERR`-style 64,
/// as the SPEC fixes it).
pub const EXIT_BAD_CONFIG: i32 = 64;

/// What the binary was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub bundle: PathBuf,
    /// `sha256:…` recorded in the image; the bundle file must hash to it.
    pub expected_digest: Option<String>,
    /// Worker threads, each with its own runtime and API listener
    /// ([`workers`]); the calling runtime is the first.
    pub workers: usize,
}

/// Why the gateway stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Bundle(_) => EXIT_BAD_CONFIG,
            RunError::Serve(server::ServeError::Pipeline(_)) => EXIT_BAD_CONFIG,
            RunError::Serve(server::ServeError::Security(_)) => EXIT_BAD_CONFIG,
            RunError::Serve(server::ServeError::Filters(_)) => EXIT_BAD_CONFIG,
            RunError::Serve(_) => 1,
        }
    }
}

/// Loads the bundle, binds the listeners and serves until SIGTERM or SIGINT.
pub async fn run(opts: RunOptions) -> Result<(), RunError> {
    run_with(opts, filter::Filters::default()).await
}

/// [`run`] with native filters: what a project's `runtime/` crate calls.
pub async fn run_with(opts: RunOptions, filters: filter::Filters) -> Result<(), RunError> {
    let config = bundle::load(
        &opts.bundle,
        opts.expected_digest.as_deref(),
        &env::ProcessEnv,
    )?;
    // The bundle's text and wire form are gone: their pages go back now, so
    // the pipeline is built in fresh pages instead of pinning theirs.
    alloc_release::release_free_memory();
    let server = server::Server::bind_workers(config, filters, opts.workers).await?;
    // Start-up is over: what it freed goes back to the OS now, not after the
    // first requests (an idle gateway never makes the allocator purge).
    alloc_release::release_free_memory();
    server.run(shutdown_signal()).await;
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
    }
}
