//! An mgw project: `mgw.yaml` plus the OpenAPI specs it names, loaded, checked and
//! compiled into the gateway's bundle.
//!
//! The pipeline is [`load`] (read and validate every file on its own: YAML with
//! positions, `mgw.yaml` into [`Manifest`], each spec into [`ApiSpec`] with `$ref`s
//! resolved) then [`compile()`] (what needs several files at once: operation
//! selection, upstreams, route conflicts, features this version cannot honour, and
//! finally the gateway's own validation of the bundle). [`init()`] scaffolds a new
//! project from a spec. Every problem is a [`Diagnostic`] with file, line, column
//! and key path; all of them come back together in [`ProjectError::Invalid`].
//!
//! Architecture invariant: the bundle is a function of the project's file contents
//! only — no clock, no absolute paths, no environment, no network — so the same
//! project gives the same bytes and digest on any machine. This module never
//! resolves `${VAR}` templates; the gateway does that at start.

pub mod compile;
pub mod contract;
pub mod de;
pub mod discriminator;
pub mod error;
pub mod example;
pub mod extensions;
pub mod init;
pub mod interceptors;
pub mod keymap;
pub mod leniency;
pub mod manifest;
pub mod openapi;
pub mod refs;
pub mod transforms;
pub mod units;
pub mod wso2_policies;
pub mod yaml;

use std::path::Path;

pub use compile::{ApiSummary, Compiled, EnvVar, RouteSummary, Summary, compile};
pub use error::{Diagnostic, Origin, ProjectError};
pub use init::{InitOptions, InitOutcome, init};
pub use manifest::Manifest;
pub use openapi::ApiSpec;
pub use refs::Source;

use error::KeyPath;
use refs::Store;

/// The project file's name, at the root of the project directory.
pub const MANIFEST_FILE: &str = "mgw.yaml";

/// A loaded project: every file parsed and checked on its own.
#[derive(Debug, Clone)]
pub struct Project {
    pub manifest: Manifest,
    /// `specs[i]` is the spec of `manifest.apis[i]`.
    pub specs: Vec<ApiSpec>,
    /// Verification key files named by JWT providers: project path → text.
    pub key_files: std::collections::BTreeMap<String, String>,
    /// The project has a `runtime/` crate (native filters, which WSO2
    /// interceptors name); never for a project in memory.
    pub has_runtime: bool,
}

/// Loads the project in `dir` (which holds `mgw.yaml`).
pub fn load(dir: &Path) -> Result<Project, ProjectError> {
    load_from(Source::Dir(dir.to_path_buf()))
}

/// Loads a project from any [`Source`] (a directory, or files in memory).
pub fn load_from(source: Source) -> Result<Project, ProjectError> {
    let text = source.read_text(MANIFEST_FILE, None).map_err(|msg| {
        let hint = if msg.contains("does not exist") {
            "; create one with `mgw init <spec>`"
        } else {
            ""
        };
        ProjectError::invalid(vec![Diagnostic::new(
            &Origin::file(MANIFEST_FILE),
            format!("{msg}{hint}"),
        )])
    })?;
    let manifest = manifest::parse_manifest_in(&text, &source).map_err(ProjectError::invalid)?;
    let mut diags = Vec::new();
    let mut specs = Vec::with_capacity(manifest.apis.len());
    for (i, api) in manifest.apis.iter().enumerate() {
        let referrer = manifest.origin(&KeyPath::root().key("apis").index(i).key("spec"));
        // One store per spec, so `ApiSpec::files` lists exactly that spec's files.
        let mut store = Store::new(source.clone());
        let contracts = contract::Parts {
            request: api.validation.is_some_and(|v| v.request),
            mock: api.mock == Some(true),
            responses: api.validation.is_some_and(|v| v.responses.is_some()),
        };
        match openapi::load_spec_with(&mut store, &api.spec, Some(&referrer), contracts) {
            Ok(spec) => specs.push(spec),
            Err(d) => diags.extend(d),
        }
    }
    let mut key_files = std::collections::BTreeMap::new();
    for (provider, files) in &manifest.auth.key_files {
        for (i, (file, _)) in files.iter().enumerate() {
            if key_files.contains_key(file) {
                continue;
            }
            match source.read_text(file, None) {
                Ok(text) => {
                    key_files.insert(file.clone(), text);
                }
                Err(msg) => diags.push(Diagnostic::new(
                    &manifest.origin(
                        &KeyPath::root()
                            .key("auth")
                            .key("providers")
                            .key(provider.clone())
                            .key("keys")
                            .index(i),
                    ),
                    msg,
                )),
            }
        }
    }
    if !diags.is_empty() {
        return Err(ProjectError::invalid(diags));
    }
    let has_runtime = match &source {
        Source::Dir(dir) => crate::runtime::crate_dir(dir).is_some(),
        Source::Memory(_) => false,
    };
    Ok(Project {
        manifest,
        specs,
        key_files,
        has_runtime,
    })
}

/// Loads and compiles the project in `dir`: what `mgw validate` and `mgw build` run.
pub fn build(dir: &Path) -> Result<Compiled, ProjectError> {
    compile(&load(dir)?)
}
