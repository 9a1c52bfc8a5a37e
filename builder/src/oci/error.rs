//! The one error type of the image writer and reader.
//!
//! Every variant carries what a user needs to act on it: the path (in backticks), the
//! value, and what would be valid. Messages are lowercase without a trailing period,
//! so they compose into `anyhow` chains printed with `{:#}`. Nothing here formats
//! secrets: images never contain any.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while writing or reading an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// An I/O operation on a named file failed.
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A path given for an entry inside a layer is not a clean absolute path.
    #[error("invalid path `{path}` for a layer entry: {reason}")]
    InvalidEntryPath { path: String, reason: &'static str },

    /// Two entries of one layer have the same path.
    #[error("layer already has an entry `/{path}`")]
    DuplicateEntry { path: String },

    /// An entry needs a directory where the layer already has a file.
    #[error("`/{parent}` is a file in this layer, so it cannot hold `/{path}`")]
    ParentIsFile { parent: String, path: String },

    /// Metadata outside what a plain ustar header can hold.
    #[error("invalid {field} `{value}` for layer entry `/{path}`: {reason}")]
    InvalidEntryMeta {
        path: String,
        field: &'static str,
        value: String,
        reason: &'static str,
    },

    /// A source file for a layer is a symbolic link.
    #[error(
        "refusing to add `{path}` to a layer: it is a symbolic link, and layers never follow symlinks; pass the path of the file it points to"
    )]
    SymlinkSource { path: PathBuf },

    /// A source for a layer file is a directory, device, socket or fifo.
    #[error("cannot add `{path}` to a layer as a file: it is not a regular file")]
    NotRegularFile { path: PathBuf },

    /// A source file changed between being added and being written.
    #[error(
        "`{path}` changed while the layer was being written (expected a {expected}-byte regular file); rebuild when it is no longer being modified"
    )]
    SourceChanged { path: PathBuf, expected: u64 },

    /// `SOURCE_DATE_EPOCH` is not a usable timestamp.
    #[error(
        "invalid `SOURCE_DATE_EPOCH` value `{value}`: expected a whole number of seconds since 1970-01-01T00:00:00Z, at most 8589934591"
    )]
    SourceDateEpoch { value: String },

    /// The embedded `base-image/base.yaml` is inconsistent (a bug caught by tests).
    #[error("invalid base image declaration `base-image/base.yaml`: {message}")]
    BaseDeclaration { message: String },

    /// The image description cannot produce a valid image.
    #[error("invalid image description: {message}")]
    InvalidSpec { message: String },

    /// `oci-spec` refused a document we assembled.
    #[error("cannot assemble the image {what}")]
    Assemble {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },

    /// A JSON document could not be written or read.
    #[error("cannot {action} {what}")]
    Json {
        action: &'static str,
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// The output path exists and is something this tool must not replace.
    #[error(
        "refusing to replace `{path}`: it exists and is not an OCI image layout directory (no `oci-layout` file); choose another output path or remove it"
    )]
    NotALayout { path: PathBuf },

    /// The tarball output path is a directory.
    #[error("refusing to write the image tarball to `{path}`: it is a directory")]
    TarballIsDirectory { path: PathBuf },

    /// A layout directory cannot be read as an OCI image layout.
    #[error("invalid OCI image layout `{path}`: {message}")]
    InvalidLayout { path: PathBuf, message: String },

    /// The requested tag is not in the layout's `index.json`.
    #[error("no image tagged `{tag}` in `{path}`; tags present: {available}")]
    TagNotFound {
        path: PathBuf,
        tag: String,
        available: String,
    },

    /// A blob's content does not hash to the digest that names it.
    #[error("blob `{path}` is corrupt: expected `{expected}`, its content hashes to `{actual}`")]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// A layer is compressed with something this tool does not read.
    #[error(
        "unsupported layer media type `{media_type}`: only gzip-compressed and uncompressed tar layers are supported"
    )]
    UnsupportedMediaType { media_type: String },

    /// A file inside a layer exists but is not a regular file.
    #[error("`/{path}` in layer `{layer}` is not a regular file")]
    NotAFileInLayer { path: String, layer: String },
}

impl OciError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
