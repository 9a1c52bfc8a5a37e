//! Project errors: where in which file, and what would be valid.
//!
//! Every problem with a project is a [`Diagnostic`] naming the file (relative to
//! the project directory, `/`-separated, never absolute), the line and column when
//! known, and the key path (`apis[0].include.operations[1]` in `mgw.yaml`, a JSON
//! pointer such as `#/paths/~1pets/get` in a spec). Loading collects as many as it
//! sensibly can and returns them together in [`ProjectError::Invalid`], which the CLI
//! maps to exit code 64. Messages are lowercase, without a trailing period, with
//! values in backticks. This module never decides *whether* something is wrong; it
//! only carries and renders the verdicts of the others.

use std::fmt;

use super::yaml::Mark;

/// Where a value came from: file, position and key path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// Relative to the project directory, `/`-separated.
    pub file: String,
    /// 1-based; `None` when the parser could not tell.
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// `apis[0].spec` for `mgw.yaml`, `#/paths/~1pets/get` for specs; may be empty.
    pub key_path: String,
}

impl Origin {
    pub fn new(file: impl Into<String>, key_path: impl Into<String>, mark: Mark) -> Origin {
        let (line, column) = if mark.is_known() {
            (Some(mark.line), Some(mark.column))
        } else {
            (None, None)
        };
        Origin {
            file: file.into(),
            line,
            column,
            key_path: key_path.into(),
        }
    }

    /// A whole file, no position.
    pub fn file(file: impl Into<String>) -> Origin {
        Origin::new(file, "", Mark::UNKNOWN)
    }

    /// `file:line:column`, or `file` when the position is unknown.
    pub fn position(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            (Some(l), None) => format!("{}:{l}", self.file),
            _ => self.file.clone(),
        }
    }
}

/// One problem in a project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diagnostic {
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub key_path: String,
    pub message: String,
}

impl Diagnostic {
    pub fn new(origin: &Origin, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: origin.file.clone(),
            line: origin.line,
            column: origin.column,
            key_path: origin.key_path.clone(),
            message: message.into(),
        }
    }

    /// The machine-readable form printed by `--output json`.
    pub fn to_json(&self, severity: &str) -> serde_json::Value {
        serde_json::json!({
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "keyPath": self.key_path,
            "message": self.message,
            "severity": severity,
        })
    }

    pub fn origin(&self) -> Origin {
        Origin {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            key_path: self.key_path.clone(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin().position())?;
        if !self.key_path.is_empty() {
            write!(f, "`{}`: ", self.key_path)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a project could not be loaded, compiled or scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The project (or a spec) is wrong; every problem found is listed.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
    /// `mgw init` would overwrite a file.
    #[error(
        "`{path}` already exists; refusing to overwrite it (move it away or choose another directory)"
    )]
    AlreadyExists { path: String },
    /// `mgw init` could not write its output.
    #[error("cannot write `{path}`")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn render(diags: &[Diagnostic]) -> String {
    match diags {
        [one] => format!("invalid project: {one}"),
        many => {
            // Count what the user reads: one cause repeated on many
            // operations is one problem with its places, not many.
            let lines = grouped(many);
            if let [one] = lines.as_slice() {
                return format!("invalid project: {one}");
            }
            let mut s = format!("invalid project: {} problems", lines.len());
            for line in lines {
                s.push_str("\n  - ");
                s.push_str(&line);
            }
            s
        }
    }
}

/// How many places a grouped line names before "and N more".
const GROUP_PLACES: usize = 3;

/// Renders diagnostics one per line, with identical messages grouped into one
/// line that gives the count and the first few places, so one cause repeated on
/// 600 operations reads as one line. Lines keep the order of first appearance.
pub fn grouped(diags: &[Diagnostic]) -> Vec<String> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_message: std::collections::HashMap<&str, Vec<&Diagnostic>> =
        std::collections::HashMap::new();
    for d in diags {
        let places = by_message.entry(d.message.as_str()).or_default();
        if places.is_empty() {
            order.push(d.message.as_str());
        }
        places.push(d);
    }
    order
        .into_iter()
        .map(|message| match by_message[message].as_slice() {
            [one] => one.to_string(),
            many => {
                let mut places: Vec<String> = many
                    .iter()
                    .take(GROUP_PLACES)
                    .map(|d| {
                        let pos = d.origin().position();
                        if d.key_path.is_empty() {
                            pos
                        } else {
                            format!("{pos} `{}`", d.key_path)
                        }
                    })
                    .collect();
                if many.len() > GROUP_PLACES {
                    places.push(format!("{} more", many.len() - GROUP_PLACES));
                }
                format!("{message} ({} places: {})", many.len(), places.join(", "))
            }
        })
        .collect()
}

impl ProjectError {
    /// Wraps diagnostics, sorted by file and position for reading.
    pub fn invalid(mut diags: Vec<Diagnostic>) -> ProjectError {
        sort(&mut diags);
        ProjectError::Invalid(diags)
    }

    /// The problems, when the project itself is wrong.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ProjectError::Invalid(d) => d,
            _ => &[],
        }
    }

    /// The process exit code for this error: 64 for a bad project (or a refused
    /// overwrite), 1 for an I/O failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            ProjectError::Invalid(_) | ProjectError::AlreadyExists { .. } => 64,
            ProjectError::Write { .. } => 1,
        }
    }
}

/// Sorts by file (`mgw.yaml` first), then position; removes exact duplicates.
pub(crate) fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| {
        (a.file != super::MANIFEST_FILE, &a.file, a.line, a.column).cmp(&(
            b.file != super::MANIFEST_FILE,
            &b.file,
            b.line,
            b.column,
        ))
    });
    diags.dedup();
}

/// A key path into `mgw.yaml`, rendered as `apis[0].include.operations[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    pub fn key(&self, k: impl Into<String>) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.into()));
        p
    }

    pub fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// Segments as tree lookups (indexes in decimal).
    pub fn segments(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|s| match s {
                Seg::Key(k) => k.clone(),
                Seg::Index(i) => i.to_string(),
            })
            .collect()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            match s {
                Seg::Index(i) => write!(f, "[{i}]")?,
                Seg::Key(k) => {
                    let plain = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if plain {
                        if !first {
                            f.write_str(".")?;
                        }
                        f.write_str(k)?;
                    } else {
                        write!(f, "[{}]", serde_json::Value::String(k.clone()))?;
                    }
                }
            }
            first = false;
        }
        Ok(())
    }
}

/// "`a`, `b` and `c`" (at most `limit` shown, then "and N more").
pub(crate) fn list(items: impl IntoIterator<Item = impl AsRef<str>>, limit: usize) -> String {
    let items: Vec<String> = items
        .into_iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect();
    match items.len() {
        0 => "none".into(),
        1 => items[0].clone(),
        n if n <= limit => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
        n => format!("{} and {} more", items[..limit].join(", "), n - limit),
    }
}

/// The closest candidate to `word`, if one is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` or nothing.
pub(crate) fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_render_like_serde_paths() {
        let p = KeyPath::root()
            .key("apis")
            .index(0)
            .key("include")
            .key("operations")
            .index(1);
        assert_eq!(p.to_string(), "apis[0].include.operations[1]");
        let l = KeyPath::root()
            .key("image")
            .key("labels")
            .key("org.example.team");
        assert_eq!(l.to_string(), "image.labels[\"org.example.team\"]");
    }

    #[test]
    fn diagnostics_render_file_position_and_key() {
        let o = Origin::new(
            "mgw.yaml",
            "apis[0].spec",
            Mark {
                line: 4,
                column: 11,
            },
        );
        let d = Diagnostic::new(&o, "file `apis/x.yaml` does not exist");
        assert_eq!(
            d.to_string(),
            "mgw.yaml:4:11: `apis[0].spec`: file `apis/x.yaml` does not exist"
        );
        let e = ProjectError::invalid(vec![d.clone(), d]);
        assert!(e.to_string().starts_with("invalid project: mgw.yaml:4:11"));
        assert_eq!(e.exit_code(), 64);
    }

    #[test]
    fn identical_messages_are_grouped_with_count_and_first_places() {
        let at = |line| {
            Diagnostic::new(
                &Origin::new(
                    "api.yaml",
                    format!("#/paths/~1p{line}"),
                    Mark { line, column: 3 },
                ),
                "scheme `k` has no provider",
            )
        };
        let other = Diagnostic::new(&Origin::file("mgw.yaml"), "something else");
        let mut diags: Vec<Diagnostic> = (1..=5).map(at).collect();
        diags.insert(1, other);
        let lines = grouped(&diags);
        assert_eq!(
            lines,
            vec![
                "scheme `k` has no provider (5 places: api.yaml:1:3 `#/paths/~1p1`, api.yaml:2:3 `#/paths/~1p2`, api.yaml:3:3 `#/paths/~1p3`, 2 more)".to_owned(),
                "mgw.yaml: something else".to_owned(),
            ]
        );
        let e = ProjectError::invalid(diags.clone()).to_string();
        assert_eq!(e.lines().count(), 3, "{e}");
        assert!(e.starts_with("invalid project: 2 problems\n"), "{e}");
        // One cause on many operations is one problem, said on one line.
        diags.remove(1);
        let e = ProjectError::invalid(diags).to_string();
        assert_eq!(
            e,
            "invalid project: scheme `k` has no provider (5 places: api.yaml:1:3 `#/paths/~1p1`, api.yaml:2:3 `#/paths/~1p2`, api.yaml:3:3 `#/paths/~1p3`, 2 more)"
        );
    }

    #[test]
    fn lists_and_suggestions() {
        assert_eq!(list(["a", "b", "c"], 10), "`a`, `b` and `c`");
        assert_eq!(list(["a", "b", "c"], 2), "`a`, `b` and 1 more");
        assert_eq!(list(Vec::<String>::new(), 2), "none");
        assert_eq!(
            did_you_mean("upstream", ["upstreams", "apis"]),
            Some("upstreams")
        );
        assert_eq!(did_you_mean("zzz", ["upstreams", "apis"]), None);
    }
}
