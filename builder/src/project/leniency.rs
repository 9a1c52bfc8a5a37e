//! What public documents write that their schema dialect does not allow, read
//! by its evident meaning, so that validating or mocking their operations builds
//! (OpenAI's OpenAPI 3.1 document writes all of these):
//! - `required` naming a property twice: once (a set, as both dialects mean).
//! - `exclusiveMinimum`/`exclusiveMaximum` in the other dialect's form: draft 4
//!   (OpenAPI 3.0) takes a boolean beside `minimum`/`maximum`, 2020-12 (3.1) the
//!   bound itself.
//! - 2019-09's `$recursiveAnchor: true` / `$recursiveRef: "#"` (not 2020-12
//!   keywords): the copy in [`super::contract`] drops the anchor and writes the
//!   reference as a `$ref` to the definition that carries it ([`recursive_ref`]).

use std::collections::BTreeSet;

use mgw_bundle::contract::Dialect;
use serde_json::{Map, Value};

/// Rewrites one schema object's own keywords (not its subschemas) into what
/// `dialect` allows, keeping their meaning.
pub fn normalise(m: &mut Map<String, Value>, dialect: Dialect) {
    if let Some(Value::Array(required)) = m.get_mut("required") {
        let mut seen = BTreeSet::new();
        required.retain(|r| r.as_str().is_none_or(|name| seen.insert(name.to_owned())));
    }
    for (exclusive, bound, lower) in [
        ("exclusiveMinimum", "minimum", true),
        ("exclusiveMaximum", "maximum", false),
    ] {
        match (dialect, m.get(exclusive)) {
            // 2020-12 written as draft 4: `minimum: 0, exclusiveMinimum: true`.
            (Dialect::Draft202012, Some(Value::Bool(on))) => {
                let on = *on;
                m.remove(exclusive);
                if on {
                    if let Some(n @ Value::Number(_)) = m.remove(bound) {
                        m.insert(exclusive.into(), n);
                    }
                }
            }
            // Draft 4 written as 2020-12: `exclusiveMinimum: 0`, with or
            // without its own `minimum` (both apply; keep the stricter).
            (Dialect::Draft4, Some(Value::Number(n))) => {
                let excl = n.as_f64().unwrap_or_default();
                let value = Value::Number(n.clone());
                m.remove(exclusive);
                let inclusive = m.get(bound).and_then(Value::as_f64);
                let stricter = match inclusive {
                    None => true,
                    Some(b) if lower => excl >= b,
                    Some(b) => excl <= b,
                };
                if stricter {
                    m.insert(bound.into(), value);
                    m.insert(exclusive.into(), Value::Bool(true));
                }
            }
            _ => {}
        }
    }
}

/// The `$ref` that stands for `$recursiveRef: value`, written inside the
/// definition `anchor` (the one whose schema has `$recursiveAnchor: true`, if
/// any), or why it cannot be read.
pub fn recursive_ref(value: &Value, anchor: Option<String>) -> Result<Value, String> {
    if value.as_str() != Some("#") {
        return Err(format!(
            "`$recursiveRef: {value}` is not supported (only `\"#\"`, JSON Schema 2019-09's recursion to the enclosing `$recursiveAnchor: true`)"
        ));
    }
    anchor.map(Value::String).ok_or_else(|| {
        "`$recursiveRef: \"#\"` is read only inside a referenced schema that has `$recursiveAnchor: true` (JSON Schema 2019-09); write a `$ref` to the schema instead".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn norm(v: Value, dialect: Dialect) -> Value {
        let Value::Object(mut m) = v else {
            unreachable!()
        };
        normalise(&mut m, dialect);
        Value::Object(m)
    }

    #[test]
    fn a_property_required_twice_is_required_once() {
        assert_eq!(
            norm(
                json!({"required": ["id", "name", "id"]}),
                Dialect::Draft202012
            ),
            json!({"required": ["id", "name"]})
        );
    }

    #[test]
    fn exclusive_bounds_are_read_in_either_form() {
        let d12 = Dialect::Draft202012;
        assert_eq!(
            norm(json!({"minimum": 0, "exclusiveMinimum": true}), d12),
            json!({"exclusiveMinimum": 0})
        );
        assert_eq!(
            norm(json!({"maximum": 1, "exclusiveMaximum": false}), d12),
            json!({"maximum": 1})
        );
        assert_eq!(norm(json!({"exclusiveMinimum": true}), d12), json!({}));
        let d4 = Dialect::Draft4;
        assert_eq!(
            norm(json!({"exclusiveMinimum": 0}), d4),
            json!({"minimum": 0, "exclusiveMinimum": true})
        );
        // Both apply: the stricter one stays.
        assert_eq!(
            norm(json!({"minimum": 5, "exclusiveMinimum": 0}), d4),
            json!({"minimum": 5})
        );
        assert_eq!(
            norm(json!({"maximum": 5, "exclusiveMaximum": 3}), d4),
            json!({"maximum": 3, "exclusiveMaximum": true})
        );
        // Each dialect's own form is left alone.
        let own = json!({"minimum": 0, "exclusiveMinimum": true});
        assert_eq!(norm(own.clone(), d4), own);
        let own = json!({"exclusiveMaximum": 9});
        assert_eq!(norm(own.clone(), d12), own);
    }

    #[test]
    fn recursive_refs_need_their_anchor() {
        assert_eq!(
            recursive_ref(&json!("#"), Some("#/$defs/3".into())),
            Ok(json!("#/$defs/3"))
        );
        assert!(
            recursive_ref(&json!("#"), None)
                .unwrap_err()
                .contains("$recursiveAnchor")
        );
        assert!(recursive_ref(&json!("#/x"), Some("#/$defs/3".into())).is_err());
    }
}
