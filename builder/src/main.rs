//! The `mgw` binary: parse arguments, set up logging, run the command, map the
//! error to an exit code (0 ok, 1 failure, 2 usage, 64 invalid project).

use std::process::ExitCode;

use clap::Parser;
use mgw_builder::cli::Cli;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match mgw_builder::commands::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(mgw_builder::exit_code(&e))
        }
    }
}

/// `mgw validate … | head -1`: once the reader has gone, writing to stdout fails
/// with EPIPE (Rust ignores SIGPIPE) and `println!` panics. A closed stdout means
/// nobody wants the rest: end quietly with 0, like `rg`, instead of a panic
/// message and exit 101. Outputs are written before anything is printed, so
/// nothing is left half-done.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // std's message: "failed printing to stdout: Broken pipe (os error 32)".
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
