//! `mgw deploy-values` and `mgw resolve`: deployment artifacts for a built image,
//! pinned by digest.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::build::Built;
use crate::cli::{DeployValuesArgs, ResolveArgs};
use crate::deploy::{self, Pinned};
use crate::fs::write_atomic;

/// Reads what deployment needs from a build output directory's `build.json`.
pub fn pinned(image_dir: &Path, repository: Option<&str>) -> Result<Pinned> {
    let dir = if image_dir.ends_with("oci") {
        image_dir.parent().unwrap_or(image_dir)
    } else {
        image_dir
    };
    Ok(Built::open(dir)?.pinned(repository))
}

pub fn values(args: &DeployValuesArgs) -> Result<()> {
    let p = pinned(Path::new(&args.image), args.repository.as_deref())?;
    let yaml = deploy::helm_values(&p);
    match &args.out {
        Some(out) => {
            write_atomic(out, yaml.as_bytes())?;
            eprintln!("wrote {} for {}", out.display(), p.image_ref());
        }
        None => print!("{yaml}"),
    }
    Ok(())
}

pub fn resolve(args: &ResolveArgs) -> Result<()> {
    let p = pinned(Path::new(&args.image), args.repository.as_deref())?;
    let mut files: Vec<PathBuf> = Vec::new();
    for f in &args.filename {
        if f.as_os_str() == "-" {
            files.push(f.clone());
        } else if f.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(f)
                .with_context(|| format!("cannot read `{}`", f.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(f.clone());
        }
    }
    if files.is_empty() {
        bail!("no manifests given: pass `-f FILE`, `-f DIR` or `-f -`");
    }
    let mut total = 0;
    let mut out = String::new();
    for f in &files {
        let (name, text) = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read standard input")?;
            ("<stdin>".to_owned(), s)
        } else {
            let s = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read `{}`", f.display()))?;
            (f.display().to_string(), s)
        };
        match deploy::resolve(&text, &name, &p) {
            Ok((yaml, n)) => {
                total += n;
                out.push_str(&yaml);
            }
            // A file without our image (a Service, a ConfigMap) passes through.
            Err(deploy::ResolveError::NothingPinned { .. }) => {
                let (yaml, _) = passthrough(&text, &name)?;
                out.push_str(&yaml);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if total == 0 {
        bail!(
            "no container image named `{}` or `{}` in the manifests; nothing to pin",
            deploy::PLACEHOLDER,
            p.repository
        );
    }
    print!("{out}");
    eprintln!("pinned {total} image reference(s) to {}", p.image_ref());
    Ok(())
}

fn passthrough(text: &str, name: &str) -> Result<(String, usize)> {
    let mut out = String::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)
            .with_context(|| format!("cannot parse manifests from `{name}`"))?;
        if !v.is_null() {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&v)?);
        }
    }
    Ok((out, 0))
}
