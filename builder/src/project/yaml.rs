//! Positioned YAML: a document tree whose every node and key remembers its line and
//! column.
//!
//! A project error must point at the offending key even when the document parsed
//! fine (a dangling `$ref`, an unknown operationId), which serde-based YAML loaders
//! cannot do. So project files are read once into this tree with the event parser
//! of [`libyaml_safer`] (a safe port of libyaml, so mgw accepts what libyaml, PyYAML
//! and go-swagger accept), and everything else (the `mgw.yaml` wire structs through
//! [`super::de`], the OpenAPI walk) works on it. JSON is YAML, so `.json` specs go
//! through the same path and keep their positions; a JSON file the YAML parser
//! rejects is retried with `serde_json` (without positions).
//!
//! This module must never panic, recurse without bound or allocate without bound on
//! hostile input: nesting depth, alias expansion and node counts are capped, and the
//! event loop is driven iteratively rather than through the parser's recursive
//! `load`.

use std::collections::HashMap;
use std::fmt;

use libyaml_safer::{EventData, Parser, ScalarStyle};

/// Deepest nesting of lists and mappings accepted.
pub const MAX_DEPTH: usize = 128;
/// Most nodes one document may expand to, aliases included ("billion laughs" guard).
/// Each node counts once; an alias counts as the nodes it expands to.
pub const MAX_NODES: usize = 1_000_000;

/// A position in a file, 1-based. `line == 0` means unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    pub line: u32,
    pub column: u32,
}

impl Mark {
    pub const UNKNOWN: Mark = Mark { line: 0, column: 0 };

    pub fn is_known(self) -> bool {
        self.line > 0
    }

    /// From libyaml's 0-based mark.
    fn from_libyaml(m: libyaml_safer::Mark) -> Mark {
        Mark {
            line: u32::try_from(m.line).unwrap_or(u32::MAX - 1) + 1,
            column: u32::try_from(m.column).unwrap_or(u32::MAX - 1) + 1,
        }
    }
}

/// One node of a parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub mark: Mark,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A scalar as written. Typing (null, bool, number) is decided on use, following
/// the YAML 1.2 core schema for plain scalars; quoted scalars are always strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    /// Written without quotes and without a `!!str` tag.
    pub plain: bool,
}

/// One mapping entry. Keys are always scalars, kept as their text.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_mark: Mark,
    pub value: Node,
}

/// A scalar's value under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    pub fn resolve(&self) -> Resolved<'_> {
        if !self.plain {
            return Resolved::Str(&self.text);
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
            "true" | "True" | "TRUE" => return Resolved::Bool(true),
            "false" | "False" | "FALSE" => return Resolved::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Resolved::Float(f64::INFINITY);
            }
            "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
            _ => {}
        }
        if let Some(i) = parse_int(t) {
            return Resolved::Int(i);
        }
        if is_float(t) {
            if let Ok(f) = t.parse::<f64>() {
                return Resolved::Float(f);
            }
        }
        Resolved::Str(t)
    }
}

fn parse_int(t: &str) -> Option<i128> {
    if let Some(hex) = t.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return i128::from_str_radix(hex, 16).ok();
        }
        return None;
    }
    if let Some(oct) = t.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return i128::from_str_radix(oct, 8).ok();
        }
        return None;
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok();
    }
    None
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(t: &str) -> bool {
    let b = t.strip_prefix(['-', '+']).unwrap_or(t).as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

impl Node {
    pub fn scalar(text: impl Into<String>, plain: bool, mark: Mark) -> Node {
        Node {
            mark,
            kind: Kind::Scalar(Scalar {
                text: text.into(),
                plain,
            }),
        }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The entry for `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key == key)
    }

    /// The value for `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s) if s.resolve() == Resolved::Null)
    }

    /// A string scalar (quoted, or plain and not null/bool/number).
    pub fn as_str(&self) -> Option<&str> {
        match self.as_scalar()?.resolve() {
            Resolved::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The text of any non-null scalar, so `version: 1.0` reads as `"1.0"`.
    pub fn as_text(&self) -> Option<&str> {
        let s = self.as_scalar()?;
        (s.resolve() != Resolved::Null).then_some(s.text.as_str())
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.as_scalar()?.resolve() {
            Resolved::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// What this node is, for messages: "a mapping", "a string", ...
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Map(_) => "a mapping",
            Kind::Seq(_) => "a list",
            Kind::Scalar(s) => match s.resolve() {
                Resolved::Null => "null",
                Resolved::Bool(_) => "a boolean",
                Resolved::Int(_) | Resolved::Float(_) => "a number",
                Resolved::Str(_) => "a string",
            },
        }
    }

    /// The child at one path segment: a mapping key, or a list index in decimal.
    pub fn child(&self, seg: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(m) => m.iter().find(|e| e.key == seg).map(|e| &e.value),
            Kind::Seq(s) => {
                // JSON pointer: no leading zeros, no sign.
                if seg.is_empty() || (seg.len() > 1 && seg.starts_with('0')) {
                    return None;
                }
                if !seg.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                s.get(seg.parse::<usize>().ok()?)
            }
            Kind::Scalar(_) => None,
        }
    }

    /// The mark of the key that leads to `seg` (for mappings), else the child's mark.
    pub fn child_key_mark(&self, seg: &str) -> Option<Mark> {
        match &self.kind {
            Kind::Map(m) => m.iter().find(|e| e.key == seg).map(|e| e.key_mark),
            _ => self.child(seg).map(|n| n.mark),
        }
    }

    /// Converts to JSON. Non-finite floats become `null`; an integer beyond
    /// 64 bits becomes the nearest float, as a JSON parser reads it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Scalar(s) => match s.resolve() {
                Resolved::Null => Value::Null,
                Resolved::Bool(b) => Value::Bool(b),
                Resolved::Int(i) => {
                    if let Ok(v) = i64::try_from(i) {
                        Value::from(v)
                    } else if let Ok(v) = u64::try_from(i) {
                        Value::from(v)
                    } else {
                        #[allow(clippy::cast_precision_loss)]
                        serde_json::Number::from_f64(i as f64)
                            .map_or_else(|| Value::String(s.text.clone()), Value::Number)
                    }
                }
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                Resolved::Str(t) => Value::String(t.to_owned()),
            },
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// Builds a tree from JSON, without positions.
    pub fn from_json(value: &serde_json::Value) -> Node {
        use serde_json::Value;
        let kind = match value {
            Value::Null => Kind::Scalar(Scalar {
                text: "null".into(),
                plain: true,
            }),
            Value::Bool(b) => Kind::Scalar(Scalar {
                text: b.to_string(),
                plain: true,
            }),
            Value::Number(n) => Kind::Scalar(Scalar {
                text: n.to_string(),
                plain: true,
            }),
            Value::String(s) => Kind::Scalar(Scalar {
                text: s.clone(),
                plain: false,
            }),
            Value::Array(a) => Kind::Seq(a.iter().map(Node::from_json).collect()),
            Value::Object(o) => Kind::Map(
                o.iter()
                    .map(|(k, v)| Entry {
                        key: k.clone(),
                        key_mark: Mark::UNKNOWN,
                        value: Node::from_json(v),
                    })
                    .collect(),
            ),
        };
        Node {
            mark: Mark::UNKNOWN,
            kind,
        }
    }
}

/// Why a file is not a YAML (or JSON) document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub mark: Mark,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parses one YAML document. JSON-looking text that YAML rejects is retried as
/// JSON. An empty file is a null document.
pub fn parse(text: &str, json_hint: bool) -> Result<Node, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match parse_yaml(text) {
        Ok(node) => Ok(node),
        Err(yaml_err) => {
            let looks_json = json_hint || matches!(text.trim_start().chars().next(), Some('{'));
            if !looks_json {
                return Err(yaml_err);
            }
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(v) => Ok(Node::from_json(&v)),
                Err(e) => Err(ParseError {
                    mark: Mark {
                        line: u32::try_from(e.line()).unwrap_or(0),
                        column: u32::try_from(e.column()).unwrap_or(0),
                    },
                    message: format!("invalid JSON: {}", strip_json_position(&e.to_string())),
                }),
            }
        }
    }
}

fn strip_json_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

enum Frame {
    Seq {
        mark: Mark,
        anchor: Option<String>,
        items: Vec<Node>,
        count: usize,
    },
    Map {
        mark: Mark,
        anchor: Option<String>,
        entries: Vec<Entry>,
        merges: Vec<(Node, Mark)>,
        seen: HashMap<String, Mark>,
        key: Option<(String, Mark, bool)>,
        count: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes with the number of nodes each expands to.
    anchors: HashMap<String, (Node, usize)>,
    root: Option<Node>,
    nodes: usize,
}

fn err(mark: Mark, message: impl Into<String>) -> ParseError {
    ParseError {
        mark,
        message: message.into(),
    }
}

fn is_str_tag(tag: Option<&str>) -> bool {
    tag == Some(libyaml_safer::STR_TAG)
}

fn parse_yaml(text: &str) -> Result<Node, ParseError> {
    // libyaml-safer 0.3 panics ("unexpected end of input") when a multi-line
    // scalar runs to the end of a file without a final line break (DigitalOcean's
    // and swagger-petstore's files do that). A line break added at the end moves
    // no position; the one value it changes is a `|`/`|+` block scalar that ends
    // the file, which then ends with a line break (a description, in practice).
    // Any other panic of the parser is caught below and reported as invalid YAML
    // rather than taking the process down.
    let owned;
    let text = if text.ends_with(['\n', '\r']) {
        text
    } else {
        owned = format!("{text}\n");
        owned.as_str()
    };
    match std::panic::catch_unwind(|| parse_events(text)) {
        Ok(result) => result,
        Err(_) => Err(err(
            Mark { line: 1, column: 1 },
            "invalid YAML: the parser failed on this file (libyaml-safer panicked); please report it with the file",
        )),
    }
}

fn parse_events(text: &str) -> Result<Node, ParseError> {
    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        nodes: 0,
    };
    let mut documents = 0;
    loop {
        let event = parser.parse().map_err(|e| {
            let mut mark = e
                .problem_mark()
                .or_else(|| e.context_mark())
                .map_or(Mark { line: 1, column: 1 }, Mark::from_libyaml);
            if mark.line == 0 {
                mark.line = 1;
            }
            let message = match e.context() {
                Some(context) => format!("invalid YAML: {}, {context}", e.problem()),
                None => format!("invalid YAML: {}", e.problem()),
            };
            err(mark, message)
        })?;
        let mark = Mark::from_libyaml(event.start_mark);
        match event.data {
            EventData::StreamEnd => break,
            EventData::StreamStart { .. } | EventData::DocumentEnd { .. } => {}
            EventData::DocumentStart { .. } => {
                documents += 1;
                if documents > 1 {
                    return Err(err(
                        mark,
                        "a file may hold only one YAML document (found a second `---`)",
                    ));
                }
            }
            EventData::Scalar {
                value,
                style,
                anchor,
                tag,
                ..
            } => {
                let plain = style == ScalarStyle::Plain && !is_str_tag(tag.as_deref());
                let node = Node::scalar(value, plain, mark);
                b.finish(node, anchor, 1, 1)?;
            }
            EventData::Alias { anchor } => {
                let Some((node, count)) = b.anchors.get(&anchor).cloned() else {
                    return Err(err(
                        mark,
                        format!("alias `*{anchor}` refers to an unknown anchor"),
                    ));
                };
                // An alias expands to a copy of everything under its anchor.
                b.finish(Node { mark, ..node }, None, count, count)?;
            }
            EventData::SequenceStart { anchor, .. } => {
                b.open(mark)?;
                b.stack.push(Frame::Seq {
                    mark,
                    anchor,
                    items: Vec::new(),
                    count: 1,
                });
            }
            EventData::MappingStart { anchor, .. } => {
                b.open(mark)?;
                b.stack.push(Frame::Map {
                    mark,
                    anchor,
                    entries: Vec::new(),
                    merges: Vec::new(),
                    seen: HashMap::new(),
                    key: None,
                    count: 1,
                });
            }
            EventData::SequenceEnd | EventData::MappingEnd => {
                let Some(frame) = b.stack.pop() else {
                    return Err(err(mark, "invalid YAML: unbalanced end of collection"));
                };
                let (node, anchor, count) = match frame {
                    Frame::Seq {
                        mark,
                        anchor,
                        items,
                        count,
                    } => (
                        Node {
                            mark,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                        count,
                    ),
                    Frame::Map {
                        mark,
                        anchor,
                        mut entries,
                        merges,
                        seen,
                        count,
                        ..
                    } => {
                        apply_merges(&mut entries, seen, merges)?;
                        (
                            Node {
                                mark,
                                kind: Kind::Map(entries),
                            },
                            anchor,
                            count,
                        )
                    }
                };
                // The children were counted as they finished; the collection
                // itself is one more node.
                b.finish(node, anchor, count, 1)?;
            }
        }
    }
    Ok(b.root
        .unwrap_or_else(|| Node::scalar("", true, Mark { line: 1, column: 1 })))
}

/// YAML merge keys (`<<: *defaults`): entries written in the mapping win.
fn apply_merges(
    entries: &mut Vec<Entry>,
    mut seen: HashMap<String, Mark>,
    merges: Vec<(Node, Mark)>,
) -> Result<(), ParseError> {
    for (source, mark) in merges {
        let sources: Vec<Node> = match source.kind {
            Kind::Map(_) => vec![source],
            Kind::Seq(items) => items,
            Kind::Scalar(_) => {
                return Err(err(
                    mark,
                    "the merge key `<<` needs a mapping or a list of mappings",
                ));
            }
        };
        for s in sources {
            let Kind::Map(more) = s.kind else {
                return Err(err(
                    mark,
                    "the merge key `<<` needs a mapping or a list of mappings",
                ));
            };
            for e in more {
                if !seen.contains_key(&e.key) {
                    seen.insert(e.key.clone(), e.key_mark);
                    entries.push(e);
                }
            }
        }
    }
    Ok(())
}

impl Builder {
    fn open(&mut self, mark: Mark) -> Result<(), ParseError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(err(
                mark,
                format!("nesting deeper than {MAX_DEPTH} levels is not supported"),
            ));
        }
        Ok(())
    }

    /// Adds a finished node to its parent. `count` is the size of the node's
    /// subtree (what an alias of it would expand to); `added` is how many nodes
    /// this event adds to the document (1, or the expansion of an alias), so
    /// every node is counted exactly once.
    fn finish(
        &mut self,
        node: Node,
        anchor: Option<String>,
        count: usize,
        added: usize,
    ) -> Result<(), ParseError> {
        self.nodes = self.nodes.saturating_add(added);
        if self.nodes > MAX_NODES {
            return Err(err(
                node.mark,
                format!("the document expands to more than {MAX_NODES} nodes (aliases included)"),
            ));
        }
        if let Some(anchor) = anchor {
            self.anchors.insert(anchor, (node.clone(), count));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq {
                items, count: c, ..
            }) => {
                *c = c.saturating_add(count);
                items.push(node);
            }
            Some(Frame::Map {
                mark: map_mark,
                entries,
                merges,
                seen,
                key,
                count: c,
                ..
            }) => {
                *c = c.saturating_add(count);
                match key.take() {
                    None => {
                        let Kind::Scalar(s) = node.kind else {
                            return Err(err(
                                node.mark,
                                "only scalar mapping keys are supported (found a list or mapping used as a key)",
                            ));
                        };
                        // A block mapping's start marker sits after its first key.
                        if entries.is_empty() && merges.is_empty() && node.mark < *map_mark {
                            *map_mark = node.mark;
                        }
                        *key = Some((s.text, node.mark, s.plain));
                    }
                    Some((k, key_mark, plain)) => {
                        if k == "<<" && plain {
                            merges.push((node, key_mark));
                            return Ok(());
                        }
                        if let Some(first) = seen.get(&k) {
                            return Err(err(
                                key_mark,
                                format!(
                                    "duplicate key `{k}` (first defined at line {})",
                                    first.line
                                ),
                            ));
                        }
                        seen.insert(k.clone(), key_mark);
                        entries.push(Entry {
                            key: k,
                            key_mark,
                            value: node,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// JSON pointers
// ---------------------------------------------------------------------------

/// Escapes one JSON pointer segment (`~` → `~0`, `/` → `~1`).
pub fn escape_segment(seg: &str) -> String {
    seg.replace('~', "~0").replace('/', "~1")
}

/// Renders segments as a JSON pointer (`/paths/~1pets/get`); empty for the root.
pub fn pointer_string<S: AsRef<str>>(segs: &[S]) -> String {
    let mut out = String::new();
    for s in segs {
        out.push('/');
        out.push_str(&escape_segment(s.as_ref()));
    }
    out
}

/// Splits a JSON pointer (`/a/b~1c`) into unescaped segments.
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "`{pointer}` is not a JSON pointer (it must start with `/`)"
        ));
    };
    rest.split('/')
        .map(|s| {
            let mut out = String::with_capacity(s.len());
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => {
                            return Err(format!(
                                "`{pointer}` has an invalid escape (`~` must be followed by `0` or `1`)"
                            ));
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// Where a JSON pointer stops matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerMiss {
    /// Segments that did resolve.
    pub matched: usize,
    /// What the last resolved node offers instead (keys, or an index range).
    pub available: Vec<String>,
}

/// Follows a JSON pointer through the tree (without following `$ref`s).
pub fn resolve_pointer<'n, S: AsRef<str>>(
    root: &'n Node,
    segs: &[S],
) -> Result<&'n Node, PointerMiss> {
    let mut node = root;
    for (i, seg) in segs.iter().enumerate() {
        match node.child(seg.as_ref()) {
            Some(n) => node = n,
            None => {
                let available = match &node.kind {
                    Kind::Map(m) => m.iter().map(|e| e.key.clone()).collect(),
                    Kind::Seq(s) if !s.is_empty() => vec![format!("0..{}", s.len() - 1)],
                    _ => Vec::new(),
                };
                return Err(PointerMiss {
                    matched: i,
                    available,
                });
            }
        }
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse("a: 1\nb:\n  c: [x, 'y']\n", false).unwrap();
        let b = n.entry("b").unwrap();
        assert_eq!(b.key_mark, Mark { line: 2, column: 1 });
        let c = b.value.entry("c").unwrap();
        assert_eq!(c.key_mark, Mark { line: 3, column: 3 });
        let y = &c.value.as_seq().unwrap()[1];
        assert_eq!(
            y.mark,
            Mark {
                line: 3,
                column: 10
            }
        );
        assert_eq!(y.as_str(), Some("y"));
        assert_eq!(b.value.mark, Mark { line: 3, column: 3 });
    }

    #[test]
    fn core_schema_typing() {
        let n = parse(
            "a: 1\nb: '1'\nc: 1.0\nd: true\ne: ~\nf: 0x1F\ng: !!str 12\nh: 1.2.3\ni: .inf\n",
            false,
        )
        .unwrap();
        let r = |k: &str| n.get(k).unwrap().as_scalar().unwrap().resolve();
        assert_eq!(r("a"), Resolved::Int(1));
        assert_eq!(r("b"), Resolved::Str("1"));
        assert_eq!(r("c"), Resolved::Float(1.0));
        assert_eq!(n.get("c").unwrap().as_text(), Some("1.0"));
        assert_eq!(r("d"), Resolved::Bool(true));
        assert_eq!(r("e"), Resolved::Null);
        assert_eq!(r("f"), Resolved::Int(31));
        assert_eq!(r("g"), Resolved::Str("12"));
        assert_eq!(r("h"), Resolved::Str("1.2.3"));
        assert_eq!(r("i"), Resolved::Float(f64::INFINITY));
    }

    /// Regression: DigitalOcean's `maximum: 18446744073709552000` (beyond
    /// `u64`) became a string, and its schema did not compile.
    #[test]
    fn integers_beyond_64_bits_are_numbers() {
        let n = parse("a: 18446744073709552000\nb: 18446744073709551615\n", false).unwrap();
        let j = n.to_json();
        assert!(j["a"].is_f64(), "{j}");
        assert_eq!(j["a"].as_f64(), Some(18_446_744_073_709_552_000.0));
        assert_eq!(j["b"].as_u64(), Some(u64::MAX));
    }

    #[test]
    fn json_with_tabs_and_escapes_parses() {
        let n = parse("{\n\t\"a\": 1,\n\t\"b\": [\"\\/x\", 2]\n}", true).unwrap();
        assert_eq!(
            n.get("b").unwrap().as_seq().unwrap()[0].as_str(),
            Some("/x")
        );
        assert_eq!(n.entry("b").unwrap().key_mark, Mark { line: 3, column: 2 });
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1\n", false).unwrap_err();
        assert_eq!(e.mark.line, 2);
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        let e = parse("{\"a\": [1, }", true).unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
        assert_eq!(e.mark.line, 1);
    }

    #[test]
    fn duplicate_keys_and_multiple_documents_are_refused() {
        let e = parse("a: 1\nb: 2\na: 3\n", false).unwrap_err();
        assert_eq!(e.mark, Mark { line: 3, column: 1 });
        assert!(e.message.contains("duplicate key `a`"), "{}", e.message);
        let e = parse("a: 1\n---\nb: 2\n", false).unwrap_err();
        assert!(e.message.contains("one YAML document"), "{}", e.message);
    }

    #[test]
    fn aliases_and_merge_keys() {
        let n = parse(
            "base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n",
            false,
        )
        .unwrap();
        assert_eq!(
            n.get("use").unwrap().to_json(),
            serde_json::json!({"x": 1, "y": 2})
        );
        assert_eq!(
            n.get("merged").unwrap().to_json(),
            serde_json::json!({"x": 1, "y": 3})
        );
    }

    #[test]
    fn hostile_inputs_are_bounded() {
        let deep = "- ".repeat(10_000) + "x";
        assert!(parse(&deep, false).unwrap_err().message.contains("nesting"));
        let flow = "[".repeat(100_000);
        assert!(parse(&flow, false).is_err());
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            laughs.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(
            parse(&laughs, false)
                .unwrap_err()
                .message
                .contains("expands")
        );
    }

    #[test]
    fn no_final_line_break_and_every_prefix_parse_without_panicking() {
        // Regression: libyaml-safer panicked on a block scalar at the end of a
        // file without a final line break.
        // The added final line break shows in a `|`/`|+` scalar that ends the file
        // (libyaml itself would give "one\ntwo").
        let n = parse("a:\n  b: |\n    one\n    two", false).unwrap();
        assert_eq!(
            n.get("a").unwrap().get("b").unwrap().as_str(),
            Some("one\ntwo\n")
        );
        let n = parse("d: >-\n  folded\n  text", false).unwrap();
        assert_eq!(n.get("d").unwrap().as_str(), Some("folded text"));
        let doc = "k: v\nq: \"x\\ny\"\ns: 'it''s'\nl:\n  - |\n    lit\n  - >\n    fold\n  - {a: 1, b: [2, 3]}\nanchor: &x {c: 1}\nalias: *x\n";
        for end in 0..=doc.len() {
            if doc.is_char_boundary(end) {
                let _ = parse(&doc[..end], false);
                let _ = parse(&doc[..end].replace('\n', "\r\n"), false);
            }
        }
    }

    #[test]
    fn flow_mapping_closed_at_parent_indent_is_accepted_like_libyaml() {
        // moby's api/swagger.yaml: a flow mapping whose `}` sits at the parent's
        // indentation, which libyaml/PyYAML accept.
        let text = "definitions:\n  Port:\n    example: {\n      \"PrivatePort\": 8080,\n      \"Type\": \"tcp\"\n    }\n  Next: {}\n";
        let n = parse(text, false).unwrap();
        let port = n.get("definitions").unwrap().get("Port").unwrap();
        assert_eq!(
            port.get("example").unwrap().to_json(),
            serde_json::json!({"PrivatePort": 8080, "Type": "tcp"})
        );
    }

    #[test]
    fn nested_collections_count_each_node_once() {
        // Regression (Stripe's spec3.yaml, 174k nodes, was refused): a node was
        // counted once per enclosing collection. 12,000 leaves under 100 levels
        // are ~12,200 nodes, not 1.2 million.
        let mut text = String::new();
        for depth in 0..100 {
            text.push_str(&"  ".repeat(depth));
            text.push_str("k:\n");
        }
        for i in 0..12_000 {
            text.push_str(&"  ".repeat(100));
            text.push_str(&format!("v{i}: 1\n"));
        }
        let n = parse(&text, false).unwrap();
        let mut cur = &n;
        for _ in 0..100 {
            cur = cur.get("k").unwrap();
        }
        assert_eq!(cur.as_map().unwrap().len(), 12_000);
    }

    #[test]
    fn pointers_round_trip() {
        let segs = vec!["paths".to_string(), "/pets/{id}".into(), "a~b".into()];
        let p = pointer_string(&segs);
        assert_eq!(p, "/paths/~1pets~1{id}/a~0b");
        assert_eq!(parse_pointer(&p).unwrap(), segs);
        assert!(parse_pointer("paths").is_err());
        assert!(parse_pointer("/a~2").is_err());
        let n = parse("a: {b: [1, 2]}\n", false).unwrap();
        assert_eq!(
            resolve_pointer(&n, &["a", "b", "1"]).unwrap().as_text(),
            Some("2")
        );
        let miss = resolve_pointer(&n, &["a", "c"]).unwrap_err();
        assert_eq!(miss.matched, 1);
        assert_eq!(miss.available, vec!["b".to_string()]);
        assert!(resolve_pointer(&n, &["a", "b", "01"]).is_err());
    }
}
