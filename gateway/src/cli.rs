//! The gateway's command line: flags, logging, the runtime, the exit code. The
//! stock binary (`main.rs`) and a project's `runtime/` crate both call
//! [`main_with`], the latter with its own [`Filters`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::filter::Filters;

/// `--help`.
const HELP: &str = "\
The mgw gateway runtime: serves the APIs of one bundle.

Usage: mgw-gateway [OPTIONS]

Options:
      --bundle <BUNDLE>                The bundle to serve [env: MGW_BUNDLE=] [default: /etc/mgw/bundle.json]
      --bundle-digest <BUNDLE_DIGEST>  Refuse to start unless the bundle file hashes to this `sha256:…` digest
                                       (set by the image so a modified bundle never runs)
      --workers <WORKERS>              Worker threads (default: one per CPU) [env: MGW_WORKERS=]
      --log-format <LOG_FORMAT>        Log format [env: MGW_LOG_FORMAT=] [default: json] [possible values: json, text]
      --list-filters                   Print the names of the native filters compiled in, one per line, and exit
  -h, --help                           Print help
  -V, --version                        Print version
";

/// What the command line asks to run.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    /// The bundle to serve.
    bundle: PathBuf,
    /// Refuse to start unless the bundle file hashes to this `sha256:…` digest
    /// (set by the image so a modified bundle never runs).
    bundle_digest: Option<String>,
    /// Worker threads (default: one per CPU).
    workers: Option<usize>,
    /// Log format: `json` or `text`.
    log_format: String,
    /// Print the names of the native filters compiled in, one per line, and exit.
    list_filters: bool,
}

/// The command line, read.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run(Args),
    Help,
    Version,
}

/// Reads the flags (`args` without the program name), each falling back to
/// its environment variable (`env`; an empty value counts as unset), then to
/// its default.
///
/// `lexopt`, not clap: five flags need no argument-parser framework, and
/// building clap's command at every start touched code in a dozen 64 KiB
/// windows of the binary that stayed resident for the gateway's life
/// (BENCHMARKS.md, "Idle memory, ninth wave").
fn parse_args(
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Command, lexopt::Error> {
    use lexopt::prelude::*;

    fn once<T>(slot: &mut Option<T>, flag: &str, value: T) -> Result<(), lexopt::Error> {
        if slot.replace(value).is_some() {
            return Err(format!("the argument '--{flag}' cannot be used multiple times").into());
        }
        Ok(())
    }
    let (mut bundle, mut bundle_digest, mut workers, mut log_format) = (None, None, None, None);
    let mut list_filters = false;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("bundle") => once(&mut bundle, "bundle", parser.value()?)?,
            Long("bundle-digest") => once(
                &mut bundle_digest,
                "bundle-digest",
                parser.value()?.string()?,
            )?,
            Long("workers") => once(&mut workers, "workers", parser.value()?)?,
            Long("log-format") => once(&mut log_format, "log-format", parser.value()?)?,
            Long("list-filters") => list_filters = true,
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            _ => return Err(arg.unexpected()),
        }
    }
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let workers = match workers.or_else(|| env("MGW_WORKERS")) {
        Some(v) => Some(v.parse::<usize>()?),
        None => None,
    };
    let log_format = match log_format.or_else(|| env("MGW_LOG_FORMAT")) {
        Some(v) => v.string()?,
        None => "json".to_owned(),
    };
    if !matches!(log_format.as_str(), "json" | "text") {
        return Err(format!(
            "invalid value '{log_format}' for '--log-format <LOG_FORMAT>' (possible values: json, text)"
        )
        .into());
    }
    Ok(Command::Run(Args {
        bundle: bundle
            .or_else(|| env("MGW_BUNDLE"))
            .map_or_else(|| PathBuf::from("/etc/mgw/bundle.json"), PathBuf::from),
        bundle_digest,
        workers,
        log_format,
        list_filters,
    }))
}

/// Parses the flags, sets up logging and serves the bundle with `filters`.
pub fn main_with(filters: Filters) -> ExitCode {
    // Before the first allocation: the allocator's first arena is sized then.
    crate::alloc_release::configure();
    let args = match parse_args(std::env::args_os().skip(1), |name| std::env::var_os(name)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        // Usage errors exit 2, as with clap before.
        Err(e) => {
            eprintln!(
                "error: {e}\n\nUsage: mgw-gateway [OPTIONS]\n\nFor more information, try '--help'."
            );
            return ExitCode::from(2);
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Command, String> {
        let env: Vec<(String, OsString)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.into()))
            .collect();
        parse_args(args.iter().map(OsString::from), |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .map_err(|e| e.to_string())
    }

    fn run(
        bundle: &str,
        digest: Option<&str>,
        workers: Option<usize>,
        format: &str,
        list: bool,
    ) -> Command {
        Command::Run(Args {
            bundle: bundle.into(),
            bundle_digest: digest.map(str::to_owned),
            workers,
            log_format: format.to_owned(),
            list_filters: list,
        })
    }

    #[test]
    fn defaults_then_environment_then_flags() {
        assert_eq!(
            parse(&[], &[]),
            Ok(run("/etc/mgw/bundle.json", None, None, "json", false))
        );
        let env = [
            ("MGW_BUNDLE", "/e/b.json"),
            ("MGW_WORKERS", "3"),
            ("MGW_LOG_FORMAT", "text"),
        ];
        assert_eq!(
            parse(&[], &env),
            Ok(run("/e/b.json", None, Some(3), "text", false))
        );
        assert_eq!(
            parse(
                &[
                    "--bundle",
                    "/f/b.json",
                    "--workers=2",
                    "--log-format",
                    "json",
                    "--bundle-digest",
                    "sha256:ab",
                    "--list-filters"
                ],
                &env
            ),
            Ok(run("/f/b.json", Some("sha256:ab"), Some(2), "json", true))
        );
        // An empty variable is unset, as with clap before.
        assert_eq!(
            parse(&[], &[("MGW_BUNDLE", ""), ("MGW_WORKERS", "")]),
            Ok(run("/etc/mgw/bundle.json", None, None, "json", false))
        );
        assert_eq!(parse(&["--bundle", "b", "-h"], &[]), Ok(Command::Help));
        assert_eq!(parse(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(parse(&["-V"], &[]), Ok(Command::Version));
        assert_eq!(parse(&["--version"], &[]), Ok(Command::Version));
    }

    #[test]
    fn usage_errors_name_the_flag_or_value() {
        let err = |args: &[&str], env: &[(&str, &str)]| parse(args, env).unwrap_err();
        assert!(err(&["--bundel", "x"], &[]).contains("--bundel"));
        assert!(err(&["--bundle"], &[]).contains("--bundle"));
        assert!(err(&["--workers", "many"], &[]).contains("many"));
        assert!(err(&[], &[("MGW_WORKERS", "-1")]).contains("-1"));
        let e = err(&["--log-format", "xml"], &[]);
        assert!(e.contains("'xml'") && e.contains("json, text"), "{e}");
        assert!(err(&[], &[("MGW_LOG_FORMAT", "yaml")]).contains("'yaml'"));
        let e = err(&["--bundle", "a", "--bundle", "b"], &[]);
        assert!(e.contains("'--bundle'") && e.contains("multiple"), "{e}");
        assert!(err(&["serve"], &[]).contains("serve"));
    }
}
