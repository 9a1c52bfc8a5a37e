//! One module per subcommand. Each takes its parsed arguments and the output
//! format, prints its result, and returns an error for `main` to map to an exit
//! code; none of them calls `std::process::exit`.

pub mod build;
pub mod deploy;
pub mod init;
pub mod inspect;
pub mod load;
pub mod progress;
pub mod push;
pub mod run;
pub mod validate;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::{Cli, Command, Output};
use crate::project::Diagnostic;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(a) => init::run(&a, cli.output),
        Command::Validate(a) => validate::run(&a, cli.output),
        Command::Build(a) => {
            // Ctrl-C must not leave the build's work folders behind.
            crate::scratch::remove_on_signal();
            build::run(&a, cli.output)
        }
        Command::Inspect(a) => inspect::run(&a, cli.output),
        Command::Run(a) => run::run(&a),
        Command::Push(a) => push::run(&a, cli.output),
        Command::Load(a) => load::run(&a, cli.output),
        Command::DeployValues(a) => deploy::values(&a),
        Command::Resolve(a) => deploy::resolve(&a),
    }
}

/// Prints warnings to stderr (never to stdout, which may be JSON).
/// Identical warnings are grouped into one line with a count and the first places.
pub fn warn_all(warnings: &[Diagnostic]) {
    for w in crate::project::error::grouped(warnings) {
        eprintln!("warning: {w}");
    }
}

/// Prints a JSON document on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Writes a file atomically: a temporary sibling renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    crate::scratch::sweep(dir, name);
    // Mode 0666 minus the umask, like every other output (none holds a secret).
    let mut tmp = crate::oci::output_temp_file(dir, &crate::scratch::prefix(name, "tmp"))
        .with_context(|| format!("cannot write in `{}`", dir.display()))?;
    let _scratch = crate::scratch::register(tmp.path());
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    tmp.as_file().sync_all().ok();
    tmp.persist(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// An image argument: a build output directory (`<out>/<name>`, holding `oci/`)
/// or an OCI layout, with an optional `:TAG`.
pub fn image_location(arg: &str) -> (PathBuf, Option<String>) {
    let (path, tag) = match arg.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') && !p.is_empty() && !Path::new(arg).exists() => {
            (PathBuf::from(p), Some(t.to_owned()))
        }
        _ => (PathBuf::from(arg), None),
    };
    let layout = if path.join("oci").join("index.json").is_file() {
        path.join("oci")
    } else {
        path
    };
    (layout, tag)
}

pub fn human(output: Output) -> bool {
    output == Output::Human
}
