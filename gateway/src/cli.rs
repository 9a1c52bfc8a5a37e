//! The gateway's command line: flags, logging, the runtime, the exit code. The
//! stock binary (`main.rs`) and a project's `runtime/` crate both call
//! [`main_with`], the latter with its own [`Filters`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::filter::Filters;

/// The mgw gateway runtime: serves the APIs of one bundle.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The bundle to serve.
    #[arg(long, env = "MGW_BUNDLE", default_value = "/etc/mgw/bundle.json")]
    bundle: PathBuf,
    /// Refuse to start unless the bundle file hashes to this `sha256:…` digest
    /// (set by the image so a modified bundle never runs).
    #[arg(long)]
    bundle_digest: Option<String>,
    /// Worker threads (default: one per CPU).
    #[arg(long, env = "MGW_WORKERS")]
    workers: Option<usize>,
    /// Log format.
    #[arg(long, env = "MGW_LOG_FORMAT", default_value = "json", value_parser = ["json", "text"])]
    log_format: String,
    /// Print the names of the native filters compiled in, one per line, and exit.
    #[arg(long)]
    list_filters: bool,
}

/// Parses the flags, sets up logging and serves the bundle with `filters`.
pub fn main_with(filters: Filters) -> ExitCode {
    // Before the first allocation: the allocator's first arena is sized then.
    crate::alloc_release::configure();
    let args = Args::parse();
    if args.list_filters {
        for name in filters.names() {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    init_tracing(&args.log_format);
    // One current-thread runtime per worker, each with its own listener
    // (`workers`): this thread's is the first.
    let workers = args.workers.filter(|n| *n > 0).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let opts = crate::RunOptions {
        bundle: args.bundle,
        expected_digest: args.bundle_digest,
        workers,
    };
    match rt.block_on(crate::run_with(opts, filters)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "gateway stopped");
            eprintln!("error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MGW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; stdout belongs to analytics events.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
