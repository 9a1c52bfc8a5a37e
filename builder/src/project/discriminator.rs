//! OpenAPI's `discriminator` as plain JSON Schema, so a standard validator
//! picks the branch of a `oneOf`/`anyOf` by the value of one property instead
//! of trying every branch (where overlapping branches make a valid body match
//! two of them, and a `oneOf` then refuses it).
//!
//! The builder's contract reader ([`super::contract`]) finds the branches and
//! the values that select them (`mapping`, then each `$ref` branch's schema
//! name); this module only rewrites the schema: the alternatives become a
//! required property with the known values (so an unknown value is refused at
//! its own pointer) and one guard per branch — `if`/`then` in JSON Schema
//! 2020-12, `anyOf: [{not: selected}, branch]` (the same implication) in draft 4,
//! which has no `if`.
//!
//! Never: rewrite a schema whose branches are not all reachable by a value — it
//! is left as written, as the document says it.

use mgw_bundle::contract::Dialect;
use serde_json::{Map, Value, json};

/// One branch and the discriminator values that select it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// The branch's schema: a `$ref` into the document's definitions.
    pub target: String,
    pub values: Vec<String>,
}

/// Replaces `keyword` (`oneOf` or `anyOf`) and `discriminator` of `schema` by
/// the guards that select each branch by the value of `property`.
pub fn rewrite(
    schema: &mut Map<String, Value>,
    keyword: &str,
    property: &str,
    branches: &[Branch],
    dialect: Dialect,
) {
    schema.remove(keyword);
    schema.remove("discriminator");
    let known: Vec<Value> = branches
        .iter()
        .flat_map(|b| b.values.iter().cloned().map(Value::String))
        .collect();
    let mut guards = vec![json!({
        "required": [property],
        "properties": {property: {"enum": known}},
    })];
    for b in branches {
        let selected = json!({
            "required": [property],
            "properties": {property: {"enum": b.values}},
        });
        let branch = json!({"$ref": b.target});
        guards.push(match dialect {
            Dialect::Draft202012 => json!({"if": selected, "then": branch}),
            Dialect::Draft4 => json!({"anyOf": [{"not": selected}, branch]}),
        });
    }
    match schema.get_mut("allOf") {
        Some(Value::Array(all)) => all.extend(guards),
        _ => {
            schema.insert("allOf".into(), Value::Array(guards));
        }
    }
}

/// The discriminator guard inside an `allOf` part, if it is one: the schema
/// that selects the branch and the branch (for building an example of the
/// first branch).
pub fn guard(part: &Value) -> Option<(&Value, &Value)> {
    if let (Some(sel), Some(then)) = (part.get("if"), part.get("then")) {
        return Some((sel, then));
    }
    match part
        .get("anyOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([not, branch]) => Some((not.get("not")?, branch)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mgw_bundle::contract::compile_schema;

    /// Two overlapping branches (every `Cat` is also a valid `Dog`): a `oneOf`
    /// refuses a valid cat; the rewrite selects by `petType`.
    fn pets(dialect: Dialect) -> Value {
        let defs = match dialect {
            Dialect::Draft4 => "definitions",
            Dialect::Draft202012 => "$defs",
        };
        let mut root = json!({
            "type": "object",
            "oneOf": [{"$ref": format!("#/{defs}/cat")}, {"$ref": format!("#/{defs}/dog")}],
            "discriminator": {"propertyName": "petType"},
        });
        let branches = [
            Branch {
                target: format!("#/{defs}/cat"),
                values: vec!["Cat".into(), "cat".into()],
            },
            Branch {
                target: format!("#/{defs}/dog"),
                values: vec!["Dog".into()],
            },
        ];
        rewrite(
            root.as_object_mut().unwrap(),
            "oneOf",
            "petType",
            &branches,
            dialect,
        );
        root[defs] = json!({
            "cat": {"type": "object", "required": ["name"], "additionalProperties": false,
                    "properties": {"petType": {}, "name": {"type": "string"}, "lives": {"type": "integer"}}},
            "dog": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "bark": {"type": "boolean"}}},
        });
        root
    }

    #[test]
    fn the_discriminator_value_selects_one_branch() {
        for d in [Dialect::Draft4, Dialect::Draft202012] {
            let v = compile_schema(d, &pets(d)).unwrap();
            assert!(
                v.is_valid(&json!({"petType": "Cat", "name": "Tom"})),
                "{d:?}"
            );
            assert!(v.is_valid(&json!({"petType": "cat", "name": "Tom", "lives": 9})));
            assert!(v.is_valid(&json!({"petType": "Dog", "name": "Rex", "bark": true})));
            // The selected branch applies, not any other.
            assert!(!v.is_valid(&json!({"petType": "Cat", "name": "Tom", "lives": "nine"})));
            assert!(!v.is_valid(&json!({"petType": "Dog", "name": "Rex", "bark": 1})));
            assert!(!v.is_valid(&json!({"petType": "Cat"})));
            // An unknown value, or none, is refused at the property.
            let e: Vec<String> = v
                .iter_errors(&json!({"petType": "Cow", "name": "x"}))
                .map(|e| e.instance_path().as_str().to_owned())
                .collect();
            assert_eq!(e, ["/petType"], "{d:?}");
            assert!(!v.is_valid(&json!({"name": "x"})));
        }
    }

    /// A mock's example of a discriminated schema is its first branch, with
    /// the value that selects it, and valid.
    #[test]
    fn an_example_of_a_discriminated_schema_is_valid() {
        for d in [Dialect::Draft4, Dialect::Draft202012] {
            let s = pets(d);
            let v = super::super::example::synthesize(&s).unwrap();
            assert_eq!(v["petType"], "Cat", "{d:?}: {v}");
            assert!(compile_schema(d, &s).unwrap().is_valid(&v), "{d:?}: {v}");
        }
    }

    #[test]
    fn the_first_guard_names_its_branch() {
        for d in [Dialect::Draft4, Dialect::Draft202012] {
            let s = pets(d);
            let all = s["allOf"].as_array().unwrap();
            assert!(guard(&all[0]).is_none());
            let (sel, branch) = guard(&all[1]).unwrap();
            assert_eq!(sel["properties"]["petType"]["enum"][0], "Cat");
            assert!(branch["$ref"].as_str().unwrap().ends_with("/cat"));
        }
    }
}
