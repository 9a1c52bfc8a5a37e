//! The `mgw` binary: parse arguments, set up logging, run the command, map the
//! error to an exit code (0 ok, 1 failure, 2 usage, 64 invalid project).

use std::process::ExitCode;

use clap::Parser;
use mgw_builder::cli::Cli;

fn main() -> ExitCode {
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
