//! mgw: the builder CLI's library. `main.rs` only parses arguments and maps errors
//! to exit codes; everything else is here so tests can run it in-process.
#![forbid(unsafe_code)]

pub mod bake;
pub mod build;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod docker;
pub mod env;
pub mod fs;
pub mod gateway_binary;
pub mod load;
pub mod oci;
pub mod platform;
pub mod project;
pub mod push;
pub mod registry;
pub mod runtime;
pub mod sbom;
pub mod scratch;
pub mod transfer;

/// Exit code for a project mgw refuses (SPEC: 64).
pub const EXIT_BAD_PROJECT: u8 = 64;

/// Exit code when a push finds its tag naming a different image (immutability).
pub const EXIT_TAG_CONFLICT: u8 = registry::EXIT_TAG_CONFLICT;

/// Exit code for a command line mgw refuses (as clap does for its own checks).
pub const EXIT_USAGE: u8 = 2;

/// A command line that parses but asks for something mgw will not do silently
/// (a build flag given to `mgw push` with an image that is already built).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error from a command: 2 for a usage error, 64 for a bad
/// project, 65 for a tag that already names another image, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return EXIT_USAGE;
        }
        if let Some(p) = cause.downcast_ref::<project::ProjectError>() {
            return p.exit_code();
        }
        if let Some(r) = cause.downcast_ref::<registry::RegistryError>() {
            return r.exit_code();
        }
    }
    1
}
