//! Talking to OCI registries: the distribution protocol (`/v2/`), authentication,
//! references and credentials.
//!
//! Why not a library: `oci-client` (formerly `oci-distribution`) was evaluated and
//! does the token flow well, but it takes blobs as in-memory `Vec<u8>`s (a layer is
//! read whole into memory), has no way to resume an interrupted upload from the
//! offset the registry reports, retries nothing, and would bring its own async stack
//! and error type between us and the registry's answer. mgw pushes a handful of
//! blobs per image, so the protocol layer here is small: [`client`] on `reqwest`
//! (rustls, no OpenSSL) with streamed chunked uploads, resume, retries with backoff,
//! `HEAD`-before-upload, cross-repository mounts and the referrers API;
//! [`auth`] for credentials and challenges; [`mod@reference`] for image names.
//!
//! Architecture invariant: no credential or token is ever printed, logged or
//! written; errors name the registry, the request and the registry's own answer,
//! never a secret. Plain `http://` is used only for loopback registries or with an
//! explicit `--insecure`.

pub mod auth;
pub mod client;
pub mod reference;

pub use client::{Client, ClientOptions, Stats};
pub use reference::{Reference, ReferenceError, is_loopback};

/// Exit code when a tag already names a different image in the registry.
pub const EXIT_TAG_CONFLICT: u8 = 65;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry could not be reached, or the connection broke (after retries).
    #[error("cannot reach registry `{registry}` for {what}: {message}")]
    Network {
        registry: String,
        what: String,
        message: String,
    },
    /// The registry answered with an unexpected status (after retries).
    #[error("registry `{registry}` refused {what}: {status}{message}")]
    Refused {
        registry: String,
        what: String,
        status: String,
        /// `: CODE message (detail)` from its error body, or empty.
        message: String,
    },
    /// The registry needs a login and mgw has none for it.
    #[error(
        "registry `{registry}` needs a login for {what}; run `docker login {registry}` or set `MGW_REGISTRY_USERNAME` and `MGW_REGISTRY_PASSWORD`"
    )]
    NeedsLogin { registry: String, what: String },
    /// The registry (or its token service) refused the credentials mgw sent.
    #[error(
        "registry `{registry}` refused the credentials from {source_desc} for {what}{message}; check them, or log in again with `docker login {registry}`"
    )]
    BadCredentials {
        registry: String,
        source_desc: String,
        what: String,
        message: String,
    },
    /// Plain HTTP to a registry that is not on loopback.
    #[error(
        "refusing plain `http://` for `{url}`: mgw speaks HTTP without TLS only to loopback registries; pass `--insecure` to allow it"
    )]
    Insecure { url: String },
    /// Reading credentials failed.
    #[error(transparent)]
    Credentials(#[from] auth::CredentialError),
    /// The tag exists and names another image: tags are immutable.
    #[error(
        "tag `{reference}` already names {existing} in the registry, not this image ({ours}); tags are immutable: mgw never re-points one, so that everything deployed by tag keeps running exactly what was tested; bump `version` in `mgw.yaml` (the default tag is `<version>-<first 12 hex of the bundle digest>`, so any API change already gets a new tag) or pass a new `--tag`"
    )]
    TagConflict {
        reference: String,
        existing: String,
        ours: String,
    },
    /// Content did not match its digest.
    #[error(
        "registry `{registry}` sent {what} that does not match its digest: expected {expected}, got {actual}"
    )]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },
    /// The registry said something mgw cannot use.
    #[error("registry `{registry}`: {message}")]
    Protocol { registry: String, message: String },
    /// A local file could not be read or written.
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> u8 {
        match self {
            RegistryError::TagConflict { .. } => EXIT_TAG_CONFLICT,
            _ => 1,
        }
    }
}
