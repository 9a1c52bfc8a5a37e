//! Base paths and route templates as strings: one rule for the builder and the gateway.

use crate::template::check_template;

/// The one base-path rule, for `mgw validate` and the gateway's start alike.
///
/// Empty (or blank) means `/`. Otherwise it must start with `/`, be a literal path
/// (no parameters, spaces, query or fragment), have no empty segment (`//`) and no
/// dot segment (`.`, `..`, `%2e%2e`: the router's own template rule). The result
/// has no trailing `/` except for the root.
pub fn normalize_base_path(base: &str) -> Result<String, String> {
    let b = base.trim();
    if b.is_empty() {
        return Ok("/".into());
    }
    if !b.starts_with('/') {
        return Err(format!("`{b}` must start with `/`, such as `/{b}`"));
    }
    if b.contains(['{', '}', '?', '#']) || b.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{b}` must be a literal path (no parameters, spaces, query or fragment)"
        ));
    }
    if b.contains("//") {
        return Err(format!("`{b}` has an empty segment (`//`)"));
    }
    let t = b.trim_end_matches('/');
    let normalized: String = if t.is_empty() { "/".into() } else { t.into() };
    check_template(&normalized).map_err(|e| e.to_string())?;
    Ok(normalized)
}

/// `base` + `path`, with exactly one `/` between them.
pub fn join_paths(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if path.is_empty() || path == "/" {
        return if base.is_empty() {
            "/".into()
        } else {
            base.to_owned()
        };
    }
    format!("{base}/{}", path.trim_start_matches('/'))
}

/// A template with parameter names erased, so `/p/{a}` and `/p/{b}` collide.
pub fn canonical_template(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_param = false;
    let mut last = ' ';
    for ch in template.chars() {
        match ch {
            '{' => {
                in_param = true;
                out.push('{');
            }
            // A catch-all (`{path+}`) is not the same route as `{path}`.
            '}' => {
                in_param = false;
                out.push_str(if last == '+' { "+}" } else { "}" });
            }
            _ if in_param => {}
            _ => out.push(ch),
        }
        last = ch;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_normalize() {
        assert_eq!(normalize_base_path("/a/b/").unwrap(), "/a/b");
        assert_eq!(normalize_base_path("/").unwrap(), "/");
        assert_eq!(normalize_base_path("").unwrap(), "/");
        assert_eq!(normalize_base_path(" /a ").unwrap(), "/a");
    }

    #[test]
    fn bad_base_paths_are_refused() {
        for (bad, why) in [
            ("a", "must start with `/`"),
            ("/a/{v}", "literal path"),
            ("/a b", "literal path"),
            ("/a?x", "literal path"),
            ("/a//b", "empty segment"),
            ("/a/../b", "dot segment"),
            ("/a/.", "dot segment"),
            ("/a/%2e%2E/b", "dot segment"),
        ] {
            let e = normalize_base_path(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
