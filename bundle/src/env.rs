//! The one seam through which the gateway reads its environment.
//!
//! A bundle is identical in dev, staging and prod; what differs per environment
//! (upstream URLs, listener addresses, secret paths) is written in the bundle as
//! `${VAR}` or `${VAR:-default}` and resolved here, once, at start. Tests swap the
//! process environment for a map. Nothing else in the gateway calls `std::env`.

use std::collections::BTreeMap;

/// Where `${VAR}` values come from.
pub trait Env: Send + Sync {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed map, for tests and for `mgw run`.
impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstError {
    #[error(
        "environment variable `{0}` is not set and has no default (write `${{{0}:-default}}` to give one)"
    )]
    Missing(String),
    #[error("unterminated `${{` at byte {0}")]
    Unterminated(usize),
    #[error(
        "`{0}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"
    )]
    BadName(String),
}

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. A `$` not
/// followed by `{` or `$` is kept as it is. Variables set to the empty string
/// count as set for `${VAR}` and as unset for `${VAR:-default}` (as in POSIX sh).
pub fn substitute(template: &str, env: &dyn Env) -> Result<String, SubstError> {
    if !template.contains('$') {
        return Ok(template.to_owned());
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut offset = 0;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            offset += i + 2;
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(SubstError::Unterminated(offset + i))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if !valid_name(name) {
                return Err(SubstError::BadName(name.to_owned()));
            }
            match (env.get(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(SubstError::Missing(name.to_owned())),
            }
            offset += i + 2 + end + 1;
            rest = &body[end + 1..];
        } else {
            out.push('$');
            offset += i + 1;
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The variables a template refers to, with their defaults; used by the builder to
/// list what a deployment must provide.
pub fn variables(template: &str) -> Vec<(String, Option<String>)> {
    let mut vars = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else { break };
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d.to_owned())),
                None => (expr, None),
            };
            if valid_name(name) {
                vars.push((name.to_owned(), default));
            }
            rest = &body[end + 1..];
        } else {
            rest = after;
        }
    }
    vars
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expands_set_default_and_escape() {
        let e = env(&[("HOST", "pets.svc"), ("EMPTY", "")]);
        assert_eq!(
            substitute("http://${HOST}:${PORT:-80}/v1", &e).unwrap(),
            "http://pets.svc:80/v1"
        );
        assert_eq!(substitute("$${HOST} $5", &e).unwrap(), "${HOST} $5");
        assert_eq!(substitute("${EMPTY:-x}", &e).unwrap(), "x");
        assert_eq!(substitute("[${EMPTY}]", &e).unwrap(), "[]");
        assert_eq!(substitute("${D:-}", &e).unwrap(), "");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = env(&[]);
        assert_eq!(
            substitute("http://${UPSTREAM_URL}", &e),
            Err(SubstError::Missing("UPSTREAM_URL".into()))
        );
        assert_eq!(substitute("a${B", &e), Err(SubstError::Unterminated(1)));
        assert_eq!(
            substitute("${1A}", &e),
            Err(SubstError::BadName("1A".into()))
        );
    }

    #[test]
    fn lists_variables() {
        assert_eq!(
            variables("${A}/${B:-x}$${C}"),
            vec![("A".into(), None), ("B".into(), Some("x".into()))]
        );
    }
}
