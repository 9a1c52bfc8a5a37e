//! How commands print: warnings and notes on stderr, summaries or one JSON
//! document on stdout. A leaf the command modules share (`build --push` prints
//! what `push` prints), so none of them reaches into another.

use crate::build::Built;
use crate::cli::Output;
use crate::commands::progress::human_bytes;
use crate::docker::Loaded;
use crate::project::Diagnostic;
use crate::registry::client::BlobAction;
use crate::transfer::push::PushOutcome;

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

pub fn human(output: Output) -> bool {
    output == Output::Human
}

/// What a build in this process has left to say on stderr (its warnings were
/// printed when it compiled): the digest a `--base` tag resolved to.
pub fn report_build(built: &Built, output: Output) {
    let Some(r) = &built.report else { return };
    if let Some((reference, digest)) = &r.resolved_base {
        if human(output) {
            eprintln!(
                "base `{reference}` resolved to `{digest}`; pin it with `--base {}`",
                reference.with_digest(digest)
            );
        }
    }
}

/// The human summary of a build in this process (without the final reference
/// line); nothing for an image read back from its output directory.
pub fn describe_build(built: &Built) -> Vec<String> {
    let Some(r) = &built.report else {
        return Vec::new();
    };
    let m = &built.meta;
    let mut lines = vec![format!(
        "built `{}` ({} API{}, {} route{}) in {:.2}s",
        m.reference,
        r.apis,
        if r.apis == 1 { "" } else { "s" },
        r.routes,
        if r.routes == 1 { "" } else { "s" },
        r.elapsed.as_secs_f64()
    )];
    lines.push(format!("  bundle  {}", m.bundle_digest));
    lines.push(format!("  layout  {}", built.layout().display()));
    if let Some(t) = built.tarball() {
        lines.push(format!("  tarball {}", t.display()));
    }
    lines.push(format!(
        "  values  {}",
        built.dir.join("values.yaml").display()
    ));
    lines.push(format!("  sbom    {}", built.sbom().display()));
    lines.push(format!("  size    {} bytes compressed", m.size));
    lines
}

/// The human summary of a push (without the final reference line).
pub fn describe_push(o: &PushOutcome) -> Vec<String> {
    let mut lines = Vec::new();
    if o.already_pushed {
        lines.push(format!(
            "`{}` already names this image; nothing to upload",
            o.reference
        ));
    } else {
        let count = |a: BlobAction| o.blobs.iter().filter(|b| b.action == a).count();
        lines.push(format!(
            "pushed `{}`: {} blobs ({} uploaded, {} mounted, {} already there), {} sent",
            o.reference,
            o.blobs.len(),
            count(BlobAction::Uploaded),
            count(BlobAction::Mounted),
            count(BlobAction::Skipped),
            human_bytes(o.uploaded_bytes)
        ));
    }
    if let Some(s) = &o.sbom {
        let how = match &s.tag {
            Some(t) => format!("referrers tag `{t}`"),
            None => "referrers API".to_owned(),
        };
        lines.push(format!("  sbom    {} ({how})", s.digest));
    }
    if o.retries > 0 {
        lines.push(format!(
            "  retried {} times after transient failures",
            o.retries
        ));
    }
    lines
}

/// The human line for an image loaded into Docker.
pub fn describe_load(l: &Loaded) -> String {
    format!(
        "loaded into Docker (`{}`): image id {}, tags {}",
        l.engine,
        l.id,
        l.tags
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
