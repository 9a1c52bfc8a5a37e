//! Examples built from schemas, for mocked operations whose document gives
//! none: the value a mock server answers with, valid against its own schema
//! where the schema says enough (formats, bounds, lengths, the discriminator's
//! first branch).
//!
//! Never: invent a value for a `pattern` — a schema with one and no example
//! gets a placeholder that may not match it (the document should carry an
//! example then).

use serde_json::{Map, Value};

/// An example of the self-contained schema document `root` (its `$ref`s point
/// into its own definitions).
pub fn synthesize(root: &Value) -> Option<Value> {
    build(root, root, 0)
}

/// An example built from a schema, the way mock servers do: the schema's own
/// `example`/`examples`/`default`/`enum`/`const` where it has one, objects from
/// their properties (`writeOnly` ones left out), arrays of one item, and a
/// placeholder per type otherwise.
fn build(root: &Value, s: &Value, depth: usize) -> Option<Value> {
    if depth > 12 {
        return None;
    }
    let mut s = s;
    for _ in 0..16 {
        match s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
        {
            Some(ptr) => s = root.pointer(ptr)?,
            None => break,
        }
    }
    if let Some(v) = s.get("const") {
        return Some(v.clone());
    }
    // The document's own values — those of the declared type (an `example: "7"`
    // of an integer is a documentation slip, not an answer).
    let given = [s.get("example"), s.get("default")]
        .into_iter()
        .flatten()
        .chain(
            ["examples", "enum"]
                .iter()
                .filter_map(|k| s.get(*k).and_then(Value::as_array).and_then(|a| a.first())),
        );
    for v in given {
        if of_type(s, v) {
            return Some(v.clone());
        }
    }
    for k in ["allOf", "oneOf", "anyOf"] {
        if let Some(all) = s.get(k).and_then(Value::as_array) {
            // A discriminator's guards: the first branch, with its value.
            let mut guarded = false;
            let parts: Vec<Value> = all
                .iter()
                .flat_map(|p| match super::discriminator::guard(p) {
                    Some(_) if guarded => vec![],
                    Some((selected, branch)) => {
                        guarded = true;
                        vec![
                            build(root, branch, depth + 1),
                            build(root, selected, depth + 1),
                        ]
                    }
                    None => vec![build(root, p, depth + 1)],
                })
                .flatten()
                .collect();
            if k != "allOf" || parts.iter().any(|p| !p.is_object()) {
                return parts.into_iter().next();
            }
            let mut m = Map::new();
            for p in parts {
                if let Value::Object(o) = p {
                    m.extend(o);
                }
            }
            return Some(Value::Object(m));
        }
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null")?,
        _ if s.get("properties").is_some() => "object",
        _ => return None,
    };
    Some(match ty {
        "object" => {
            let mut m = Map::new();
            for (k, p) in s
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if p.get("writeOnly") == Some(&Value::Bool(true)) {
                    continue;
                }
                if let Some(v) = build(root, p, depth + 1) {
                    m.insert(k.clone(), v);
                }
            }
            Value::Object(m)
        }
        "array" => {
            let item = s.get("items").and_then(|i| build(root, i, depth + 1));
            let n = s
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1);
            Value::Array(match item {
                // Distinct items are not made up; one is as good as any.
                Some(_) if n > 1 && s.get("uniqueItems") == Some(&Value::Bool(true)) => {
                    item.into_iter().collect()
                }
                Some(v) => {
                    std::iter::repeat_n(v, usize::try_from(n.min(16)).unwrap_or(1)).collect()
                }
                None => Vec::new(),
            })
        }
        "string" => string(s),
        "integer" => integer(s),
        "number" => number(s),
        "boolean" => Value::Bool(true),
        _ => Value::Null,
    })
}

/// Whether `v` is of the schema's `type` (any, when it declares none).
fn of_type(s: &Value, v: &Value) -> bool {
    let is = |t: &str| match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    };
    match s.get("type") {
        Some(Value::String(t)) => is(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(is),
        _ => true,
    }
}

/// A string of the schema's `format` (JSON Schema and OpenAPI formats), padded
/// to its `minLength`.
fn string(s: &Value) -> Value {
    let text = match s.get("format").and_then(Value::as_str).unwrap_or_default() {
        "date-time" => "2024-01-01T00:00:00Z",
        "date" => "2024-01-01",
        "time" => "00:00:00Z",
        "duration" => "P1D",
        "uuid" => "00000000-0000-4000-8000-000000000000",
        "email" | "idn-email" => "user@example.com",
        "uri" | "iri" | "url" => "https://example.com/",
        "uri-reference" | "iri-reference" => "/example",
        "uri-template" => "https://example.com/{id}",
        "hostname" | "idn-hostname" => "example.com",
        "ipv4" => "192.0.2.1",
        "ipv6" => "2001:db8::1",
        "byte" => "c3RyaW5n",
        "json-pointer" => "/example",
        "relative-json-pointer" => "0",
        "regex" => ".*",
        _ => "string",
    };
    let mut text = text.to_owned();
    let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0);
    let max = s.get("maxLength").and_then(Value::as_u64);
    while (text.chars().count() as u64) < min.min(4096) {
        text.push('x');
    }
    if let Some(max) = max {
        text = text
            .chars()
            .take(usize::try_from(max).unwrap_or(usize::MAX))
            .collect();
    }
    Value::String(text)
}

/// The bound the schema sets (`minimum`, else `maximum`; draft-4 booleans and
/// 2020-12 numbers for exclusive ones), else 0.
fn bound(s: &Value) -> (f64, bool) {
    let num = |k: &str| s.get(k).and_then(Value::as_f64);
    let exclusive = |k: &str, limit: f64| match s.get(k) {
        Some(Value::Bool(b)) => (limit, *b),
        Some(v) => v
            .as_f64()
            .map_or((limit, false), |e| (e.max(limit), e >= limit)),
        None => (limit, false),
    };
    match (num("minimum"), num("exclusiveMinimum")) {
        (Some(m), _) => exclusive("exclusiveMinimum", m),
        (None, Some(e)) => (e, true),
        (None, None) => match (num("maximum"), num("exclusiveMaximum")) {
            (Some(m), _) if m <= 0.0 => exclusive("exclusiveMaximum", m),
            (None, Some(e)) if e <= 0.0 => (e, true),
            _ => (0.0, false),
        },
    }
}

fn integer(s: &Value) -> Value {
    let (at, exclusive) = bound(s);
    let above =
        s.get("minimum").is_some() || s.get("exclusiveMinimum").is_some_and(Value::is_number);
    let n = match (exclusive, above) {
        (false, _) => at.ceil(),
        (true, true) => at.floor() + 1.0,
        (true, false) => at.ceil() - 1.0,
    };
    #[allow(clippy::cast_possible_truncation)]
    Value::from(n as i64)
}

fn number(s: &Value) -> Value {
    let (at, exclusive) = bound(s);
    let above =
        s.get("minimum").is_some() || s.get("exclusiveMinimum").is_some_and(Value::is_number);
    let n = match (exclusive, above) {
        (false, _) => at,
        (true, true) => at + 1.0,
        (true, false) => at - 1.0,
    };
    serde_json::Number::from_f64(n).map_or(Value::from(0), Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mgw_bundle::contract::{Dialect, compile_schema};
    use serde_json::json;

    /// Each value is valid against the schema it was built from, formats
    /// asserted (the gateway's rule), in both dialects.
    #[test]
    fn built_values_are_valid_against_their_schema() {
        let schemas = [
            json!({"type": "string", "format": "date-time"}),
            json!({"type": "string", "format": "date"}),
            json!({"type": "string", "format": "time"}),
            json!({"type": "string", "format": "uuid"}),
            json!({"type": "string", "format": "email"}),
            json!({"type": "string", "format": "uri"}),
            json!({"type": "string", "format": "uri-reference"}),
            json!({"type": "string", "format": "hostname"}),
            json!({"type": "string", "format": "ipv4"}),
            json!({"type": "string", "format": "ipv6"}),
            json!({"type": "string", "format": "int64"}),
            json!({"type": "string", "minLength": 12}),
            json!({"type": "string", "maxLength": 3}),
            json!({"type": "integer", "minimum": 5}),
            json!({"type": "integer", "maximum": -3}),
            json!({"type": "number", "minimum": 0.5}),
            json!({"type": "array", "minItems": 2, "items": {"type": "integer"}}),
            json!({"type": "object", "required": ["at"], "properties": {"at": {"type": "string", "format": "date-time"}}}),
        ];
        for d in [Dialect::Draft4, Dialect::Draft202012] {
            for s in &schemas {
                let v = build(s, s, 0).unwrap();
                let validator = compile_schema(d, s).unwrap();
                assert!(validator.is_valid(&v), "{d:?}: {v} against {s}");
            }
        }
        // Exclusive bounds, in each dialect's form.
        let d4 = json!({"type": "integer", "minimum": 5, "exclusiveMinimum": true});
        assert!(
            compile_schema(Dialect::Draft4, &d4)
                .unwrap()
                .is_valid(&build(&d4, &d4, 0).unwrap())
        );
        let d20 = json!({"type": "integer", "exclusiveMinimum": 5});
        assert!(
            compile_schema(Dialect::Draft202012, &d20)
                .unwrap()
                .is_valid(&build(&d20, &d20, 0).unwrap())
        );
        let neg = json!({"type": "number", "exclusiveMaximum": 0});
        assert!(
            compile_schema(Dialect::Draft202012, &neg)
                .unwrap()
                .is_valid(&build(&neg, &neg, 0).unwrap())
        );
    }
}
