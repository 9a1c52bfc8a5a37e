//! mgw-bundle: the contract between the builder (`mgw`) and the gateway.
//!
//! Two layers, as in "parse, don't validate": [`Bundle`] is the wire document the
//! builder writes ([`wire`]: serde, unknown fields denied, canonical JSON), and
//! [`Config`] is what the gateway runs on ([`config`]), produced by
//! [`Config::from_bundle`] after every check ([`check`], one file per concern) and
//! after `${VAR}` templates are resolved through the [`env::Env`] seam. Every
//! problem names its key path (`apis[0].operations[2].method`).
//!
//! The rules both programs must agree on live here once: base paths ([`paths`]),
//! path templates and dot segments ([`template`]), upstream URLs
//! ([`parse_target`]), trusted proxy ranges ([`net`]) and inlined JWT keys
//! ([`keys`]). This crate never touches the network, the clock or a runtime; it
//! must stay cheap enough to run on every start and in `mgw validate`.
#![forbid(unsafe_code)]

pub mod check;
pub mod config;
pub mod contract;
pub mod env;
pub mod error;
pub mod keys;
pub mod net;
pub mod paths;
pub mod template;
pub mod transform;
pub mod wire;

pub use check::parse_target;
pub use config::*;
pub use error::{BundleError, Problem};
pub use keys::{KeyFamily, parse_jwk, parse_jwt_key};
pub use paths::{canonical_template, join_paths, normalize_base_path};
pub use wire::*;

use std::path::Path;

use env::Env;

/// Reads a bundle file, checks it against the digest the image recorded (when
/// given) and validates it.
pub fn load(
    path: &Path,
    expected_digest: Option<&str>,
    env: &dyn Env,
) -> Result<Config, BundleError> {
    let bytes = std::fs::read(path).map_err(|source| BundleError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let actual = digest_of(&bytes);
    if let Some(expected) = expected_digest {
        if expected != actual {
            return Err(BundleError::DigestMismatch {
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    let bundle = Bundle::from_json(&bytes)?;
    Config::from_bundle(&bundle, actual, Some(env))
}

#[cfg(test)]
mod tests;
