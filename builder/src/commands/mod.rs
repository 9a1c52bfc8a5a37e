//! Glue, one module per subcommand: each turns its parsed arguments into the
//! library's inputs ([`args`]), calls the library ([`crate::build`],
//! [`crate::push`], [`crate::load`], …), prints the result ([`output`]) and
//! returns an error for `main` to map to an exit code; none of them calls
//! `std::process::exit`, and no library module reaches back into them.

pub mod args;
pub mod build;
pub mod deploy;
pub mod init;
pub mod inspect;
pub mod load;
pub mod output;
pub mod progress;
pub mod push;
pub mod run;
pub mod validate;

use anyhow::Result;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    if matches!(
        cli.command,
        Command::Build(_) | Command::Push(_) | Command::Load(_)
    ) {
        // Ctrl-C must not leave a build's work folders behind (push and load
        // build when given a project).
        crate::scratch::remove_on_signal();
    }
    match cli.command {
        Command::Init(a) => init::run(&a, cli.output),
        Command::Validate(a) => validate::run(&a, cli.output),
        Command::Build(a) => build::run(&a, cli.output),
        Command::Inspect(a) => inspect::run(&a, cli.output),
        Command::Run(a) => run::run(&a),
        Command::Push(a) => push::run(&a, cli.output),
        Command::Load(a) => load::run(&a, cli.output),
        Command::DeployValues(a) => deploy::values(&a),
        Command::Resolve(a) => deploy::resolve(&a),
    }
}
