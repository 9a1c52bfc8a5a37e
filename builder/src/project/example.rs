//! Examples built from schemas, for mocked operations whose document gives
//! none: the value a mock server answers with, valid against its own schema
//! where the schema says enough (formats, bounds, lengths, patterns, the
//! discriminator's first branch, required properties).
//!
//! A `pattern` beyond the regex syntax (look-arounds, back-references) gets a
//! placeholder that may not match it (the document should carry an example then).

use serde_json::{Map, Value};

/// An example of the self-contained schema document `root` (its `$ref`s point
/// into its own definitions).
pub fn synthesize(root: &Value) -> Option<Value> {
    Synth::new(root, true).example()
}

/// [`synthesize`] without the document's own values (`example`, `default`,
/// `examples`; `enum` and `const` still count): what the schema alone gives,
/// to check it against the schema (a document's example may not be valid).
#[cfg(test)]
pub fn synthesize_from_schema(root: &Value) -> Option<Value> {
    Synth::new(root, false).example()
}

/// The value of a string that nothing more is known of.
const PLACEHOLDER: &str = "string";

/// How deep a value may nest at most: a bound on the output of schemas that
/// branch wide (recursion itself stops at the first repeated `$ref`).
const MAX_DEPTH: usize = 48;

/// How many schemas one example may visit: a bound on the work and the size of
/// an answer built from a document whose schemas reference each other widely
/// (Stripe's: thousands of paths through hundreds of schemas, none repeating a
/// reference). Past it there is no example (the document should give one).
const MAX_VISITS: usize = 20_000;

/// An example built from a schema, the way mock servers do: the schema's own
/// `example`/`examples`/`default`/`enum`/`const` where it has one, objects from
/// their properties (`writeOnly` ones left out), arrays of one item, and a
/// placeholder per type otherwise. A `$ref` already being expanded (a
/// recursive schema) gives nothing, so an optional property that recurses is
/// left out.
struct Synth<'a> {
    root: &'a Value,
    /// The references being expanded, outermost first (`""` for a nested
    /// schema that is not one).
    refs: Vec<String>,
    /// Whether the document's `example`/`default`/`examples` are used.
    given: bool,
    /// Schemas visited so far (at most [`MAX_VISITS`]).
    visits: usize,
}

impl<'a> Synth<'a> {
    fn new(root: &'a Value, given: bool) -> Self {
        Synth {
            root,
            refs: Vec::new(),
            given,
            visits: 0,
        }
    }

    /// The example of the whole document, unless building it visits more than
    /// [`MAX_VISITS`] schemas.
    fn example(mut self) -> Option<Value> {
        let value = self.build(self.root);
        value.filter(|_| self.visits <= MAX_VISITS)
    }

    fn build(&mut self, s: &Value) -> Option<Value> {
        self.visits += 1;
        let (root, refs) = (self.root, &mut self.refs);
        if refs.len() > MAX_DEPTH || self.visits > MAX_VISITS {
            return None;
        }
        let mark = refs.len();
        let mut s = s;
        let mut value = None;
        for _ in 0..16 {
            match s
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
            {
                Some(ptr) if refs[..mark].iter().any(|r| r == ptr) => {
                    s = &Value::Null;
                    break;
                }
                Some(ptr) => match root.pointer(ptr) {
                    Some(target) => {
                        refs.push(ptr.to_owned());
                        s = target;
                    }
                    None => {
                        s = &Value::Null;
                        break;
                    }
                },
                None => break,
            }
        }
        if s.is_object() {
            // Every nested schema counts one level, referenced or not.
            refs.push(String::new());
            value = self.build_resolved(s);
        }
        self.refs.truncate(mark);
        value
    }

    /// [`Synth::build`] of a schema that is not a `$ref`.
    fn build_resolved(&mut self, s: &Value) -> Option<Value> {
        if let Some(v) = s.get("const") {
            return Some(v.clone());
        }
        // The document's own values — those of the declared type (an `example: "7"`
        // of an integer is a documentation slip, not an answer).
        let documented = [s.get("example"), s.get("default")]
            .into_iter()
            .flatten()
            .chain(
                s.get("examples")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first()),
            )
            .filter(|_| self.given);
        let given = documented.chain(
            s.get("enum")
                .and_then(Value::as_array)
                .and_then(|a| a.first()),
        );
        for v in given {
            if of_type(s, v) {
                return Some(v.clone());
            }
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            // A discriminator's guards: the first branch, with its value.
            let mut guarded = false;
            let parts: Vec<Value> = all
                .iter()
                .flat_map(|p| match super::discriminator::guard(p) {
                    Some(_) if guarded => vec![],
                    Some((selected, branch)) => {
                        guarded = true;
                        vec![self.build(branch), self.build(selected)]
                    }
                    None => vec![self.build(p)],
                })
                .flatten()
                .collect();
            // Nothing built (every branch recursed): no value, not `{}`.
            if parts.iter().any(|p| !p.is_object()) || parts.is_empty() {
                return parts.into_iter().next();
            }
            let mut m = Map::new();
            for p in parts {
                if let Value::Object(o) = p {
                    for (k, v) in o {
                        // One branch's placeholder never hides another's value.
                        if !(v == PLACEHOLDER && m.contains_key(&k)) {
                            m.insert(k, v);
                        }
                    }
                }
            }
            return Some(Value::Object(m));
        }
        for k in ["oneOf", "anyOf"] {
            if let Some(branches) = s.get(k).and_then(Value::as_array) {
                // The first branch that gives a value; the others are not
                // built (a Stripe field is `anyOf: [string, $ref]`, and the
                // referenced schema's own fields are the same: building every
                // branch visits every path through the document).
                return branches.iter().find_map(|b| self.build(b));
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
                    if let Some(v) = self.build(p) {
                        m.insert(k.clone(), v);
                    }
                }
                // Required but not described (a slip in the document, such as
                // Box's `accessed` beside an `access` property): a placeholder,
                // so the answer still has every required property.
                let described = s.get("properties").and_then(Value::as_object);
                for name in s
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !described.is_some_and(|d| d.contains_key(name)) && !m.contains_key(name) {
                        m.insert(name.to_owned(), Value::String(PLACEHOLDER.to_owned()));
                    }
                }
                Value::Object(m)
            }
            "array" => {
                let item = s.get("items").and_then(|i| self.build(i));
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
        _ => PLACEHOLDER,
    };
    let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0);
    let max = s.get("maxLength").and_then(Value::as_u64);
    if let Some(text) = s
        .get("pattern")
        .and_then(Value::as_str)
        .and_then(|p| matching(p, min, max))
    {
        return Value::String(text);
    }
    let mut text = text.to_owned();
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

/// A string that `pattern` matches whole, of `min..=max` characters, in ASCII
/// where the pattern allows (`\d`, `\w`, `\s` and `.` read as their ASCII
/// ranges): drawn with a fixed seed, so every build answers the same. `None`
/// when the pattern is beyond the regex syntax (look-arounds, back-references)
/// or no draw fits the lengths.
fn matching(pattern: &str, min: u64, max: Option<u64>) -> Option<String> {
    use rand::{SeedableRng, rngs::StdRng};
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(&ascii_classes(unanchored(pattern)))
        .ok()?;
    let generator = rand_regex::Regex::with_hir(hir, 8).ok()?;
    let mut rng = StdRng::seed_from_u64(0);
    (0..32)
        .map(|_| rand::RngExt::sample::<String, _>(&mut rng, &generator))
        .find(|t| {
            let n = t.chars().count() as u64;
            n >= min && max.is_none_or(|max| n <= max)
        })
}

/// `pattern` without a leading `^` and a trailing `$` (the generator draws a
/// whole match, so those anchors hold; it refuses anchors elsewhere).
fn unanchored(pattern: &str) -> &str {
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    match p.strip_suffix('$') {
        Some(rest) if !rest.ends_with('\\') || rest.ends_with("\\\\") => rest,
        _ => p,
    }
}

/// `pattern` with the classes that are Unicode-wide in the regex syntax
/// (`\d`, `\w`, `\s`, and `.` outside brackets) spelled as ASCII ranges.
fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('d') => out.push_str("[0-9]"),
                Some('w') => out.push_str("[A-Za-z0-9_]"),
                Some('s') => out.push_str("[ ]"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '.' if !in_class => out.push_str("[ -~]"),
            _ => out.push(c),
        }
    }
    out
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
            json!({"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"}),
            json!({"type": "string", "pattern": "^.{2,9}$", "maxLength": 3}),
            json!({"type": "string", "pattern": "(\\{a\\}[\\s\\S]*?\\{b\\}|\\{b\\}[\\s\\S]*?\\{a\\})"}),
            json!({"type": "object", "required": ["accessed", "url"], "properties": {"url": {"type": "string"}}}),
            json!({"allOf": [{"required": ["id"]}, {"properties": {"id": {"type": "integer"}}}]}),
        ];
        for d in [Dialect::Draft4, Dialect::Draft202012] {
            for s in &schemas {
                let v = synthesize(s).unwrap();
                let validator = compile_schema(d, s).unwrap();
                assert!(validator.is_valid(&v), "{d:?}: {v} against {s}");
            }
        }
        // Exclusive bounds, in each dialect's form.
        let d4 = json!({"type": "integer", "minimum": 5, "exclusiveMinimum": true});
        assert!(
            compile_schema(Dialect::Draft4, &d4)
                .unwrap()
                .is_valid(&synthesize(&d4).unwrap())
        );
        let d20 = json!({"type": "integer", "exclusiveMinimum": 5});
        assert!(
            compile_schema(Dialect::Draft202012, &d20)
                .unwrap()
                .is_valid(&synthesize(&d20).unwrap())
        );
        let neg = json!({"type": "number", "exclusiveMaximum": 0});
        assert!(
            compile_schema(Dialect::Draft202012, &neg)
                .unwrap()
                .is_valid(&synthesize(&neg).unwrap())
        );
    }

    /// A pattern's string is ASCII where the pattern allows and the same on
    /// every build.
    #[test]
    fn pattern_strings_are_ascii_and_reproducible() {
        let s = json!({"type": "string", "pattern": "^\\w+@\\d+\\.[a-z]{2}$"});
        let v = synthesize(&s).unwrap();
        assert!(v.as_str().unwrap().is_ascii(), "{v}");
        assert_eq!(synthesize(&s), Some(v));
        // Beyond the regex syntax: the placeholder.
        let look = json!({"type": "string", "pattern": "^(?!x)a$"});
        assert_eq!(synthesize(&look), Some(json!("string")));
    }

    /// Stripe's shape: every field of a schema is `anyOf: [string, $ref]` to
    /// another schema whose fields are the same, so the paths through the
    /// document that repeat no reference are astronomically many. Only the
    /// first branch that gives a value is built; and a document whose every
    /// property branches (2^30 paths here) gets no example instead of taking
    /// forever.
    #[test]
    fn wide_documents_are_built_in_bounded_work() {
        let n = 40;
        let defs: Map<String, Value> = (0..n)
            .map(|i| {
                let props: Map<String, Value> = (0..n)
                    .filter(|j| *j != i)
                    .map(|j| {
                        let field = json!({"anyOf": [{"type": "string", "maxLength": 5000},
                                                     {"$ref": format!("#/definitions/d{j}")}]});
                        (format!("f{j}"), field)
                    })
                    .collect();
                let schema = json!({"type": "object", "required": ["id"], "properties": props});
                (format!("d{i}"), schema)
            })
            .collect();
        let doc = json!({"$ref": "#/definitions/d0", "definitions": defs});
        let mut synth = Synth::new(&doc, true);
        let v = synth.build(&doc).unwrap();
        assert_eq!(v.get("f1"), Some(&json!("string")), "{v}");
        assert!(synth.visits < 200, "{} schemas visited", synth.visits);
        assert!(
            compile_schema(Dialect::Draft4, &doc)
                .unwrap()
                .is_valid(&synthesize(&doc).unwrap())
        );

        let defs: Map<String, Value> = (0..30)
            .map(|i| {
                let next = json!({"$ref": format!("#/definitions/c{}", i + 1)});
                let schema = json!({"type": "object", "properties": {"a": next, "b": next}});
                (format!("c{i}"), schema)
            })
            .chain([("c30".to_owned(), json!({"type": "string"}))])
            .collect();
        let chain = json!({"$ref": "#/definitions/c0", "definitions": defs});
        assert_eq!(synthesize(&chain), None);
    }

    /// Nesting does not cut values short (Box's upload answer nests a string
    /// example 13 schemas deep, under `allOf`s: it came out as `{}`), and a
    /// recursive schema stops at its first repeated reference.
    #[test]
    fn deep_schemas_keep_their_leaves_and_recursion_stops() {
        let mut leaf = json!({"allOf": [{"type": ["string", "null"], "example": "3"}, {}]});
        for i in 0..20 {
            leaf = json!({"type": "object", "properties": {format!("p{i}"): {"allOf": [leaf]}}});
        }
        let v = synthesize(&leaf).unwrap();
        let path: String = (0..20).rev().map(|i| format!("/p{i}")).collect();
        assert_eq!(v.pointer(&path), Some(&json!("3")), "{v}");

        let tree = json!({
            "$ref": "#/definitions/node",
            "definitions": {"node": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "example": "root"},
                "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                "parent": {"allOf": [{"$ref": "#/definitions/node"}]},
            }}},
        });
        let v = synthesize(&tree).unwrap();
        // The node's own reference is being expanded: no child and no parent
        // value is made up, and no `{}` stands in for one.
        assert_eq!(v, json!({"name": "root", "children": []}), "{v}");
    }
}
