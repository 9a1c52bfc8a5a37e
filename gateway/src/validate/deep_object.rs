//! `deepObject` values as clients send them: `name[key]=v`, nested brackets
//! (`name[a][b]=v`), and arrays by index or `[]` (`name[0][price]=v`,
//! `name[]=v`) — the bracket nesting of Rails, PHP and `qs`, which Stripe's
//! API and its clients use in query strings and form bodies. OpenAPI defines
//! one level of object; deeper brackets are read the same way, so a document
//! that nests objects and arrays under a `deepObject` property validates what
//! its clients send.

use serde_json::{Map, Value};

use super::{resolve, scalar};

/// A value as sent, before its schema gives it types.
enum Tree {
    Leaf(String),
    /// Keys in the order first sent; `[]` appends.
    Branch(Vec<(String, Tree)>),
}

impl Tree {
    fn insert(&mut self, keys: &[&str], value: String) {
        let Tree::Branch(entries) = self else {
            return;
        };
        let Some((&key, rest)) = keys.split_first() else {
            return;
        };
        if rest.is_empty() {
            entries.push((key.to_owned(), Tree::Leaf(value)));
            return;
        }
        let existing = (!key.is_empty())
            .then(|| entries.iter_mut().rev().find(|(k, _)| k == key))
            .flatten();
        match existing {
            Some((_, child @ Tree::Branch(_))) => child.insert(rest, value),
            _ => {
                let mut child = Tree::Branch(Vec::new());
                child.insert(rest, value);
                entries.push((key.to_owned(), child));
            }
        }
    }
}

/// The bracketed keys of `inner`, the part of a name between its first `[`
/// and its last `]` (`a][0][b` → `a`, `0`, `b`).
fn keys(inner: &str) -> Vec<&str> {
    inner.split("][").collect()
}

/// The JSON value of a `deepObject` parameter or form property whose schema is
/// `schema` (inside `root`), from its `(inner key, value)` pairs.
pub(super) fn value(root: &Value, schema: &Value, pairs: Vec<(String, String)>) -> Value {
    let mut tree = Tree::Branch(Vec::new());
    for (inner, v) in pairs {
        tree.insert(&keys(&inner), v);
    }
    typed(root, schema, tree)
}

/// `schema` and, through `$ref`s, the branches of its `allOf`/`anyOf`/`oneOf`
/// (Stripe's `metadata` is `anyOf: [object, ""]`): where a key's schema, an
/// array's items or a leaf's type may be declared.
fn branches<'a>(root: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let mut out = vec![resolve(root, schema)];
    let mut i = 0;
    while i < out.len() && out.len() < 64 {
        let s = out[i];
        for k in ["allOf", "anyOf", "oneOf"] {
            for b in s.get(k).and_then(Value::as_array).into_iter().flatten() {
                out.push(resolve(root, b));
            }
        }
        i += 1;
    }
    out
}

fn declares(s: &Value, ty: &str) -> bool {
    match s.get("type") {
        Some(Value::String(t)) => t == ty,
        Some(Value::Array(ts)) => ts.iter().any(|t| t == ty),
        _ => false,
    }
}

fn typed(root: &Value, schema: &Value, tree: Tree) -> Value {
    let all = branches(root, schema);
    let entries = match tree {
        Tree::Leaf(text) => {
            // The first branch that gives the text a type (a number, a boolean).
            return all
                .iter()
                .map(|b| scalar(root, b, &text))
                .find(|v| !v.is_string())
                .unwrap_or(Value::String(text));
        }
        Tree::Branch(entries) => entries,
    };
    let indexed = entries
        .iter()
        .all(|(k, _)| k.is_empty() || k.bytes().all(|b| b.is_ascii_digit()));
    let array = all.iter().any(|b| declares(b, "array"));
    let object = all
        .iter()
        .any(|b| declares(b, "object") || b.get("properties").is_some());
    if indexed && (array || !object) {
        let items = all
            .iter()
            .find_map(|b| b.get("items"))
            .unwrap_or(&Value::Null);
        // By index; `[]` items after them, in the order they were sent.
        let (mut numbered, appended): (Vec<_>, Vec<_>) =
            entries.into_iter().partition(|(k, _)| !k.is_empty());
        numbered.sort_by_key(|(k, _)| k.parse::<usize>().unwrap_or(usize::MAX));
        return Value::Array(
            numbered
                .into_iter()
                .chain(appended)
                .map(|(_, t)| typed(root, items, t))
                .collect(),
        );
    }
    let mut m = Map::new();
    for (k, t) in entries {
        let property = all
            .iter()
            .find_map(|b| b.get("properties").and_then(|p| p.get(&k)))
            .or_else(|| {
                all.iter()
                    .find_map(|b| b.get("additionalProperties").filter(|a| a.is_object()))
            })
            .unwrap_or(&Value::Null);
        m.insert(k, typed(root, property, t));
    }
    Value::Object(m)
}
