//! Maps a request's method and raw path to the route that serves it.
//!
//! Every request reaches the router first, with a path nobody has checked yet, so this
//! module exists to make that one decision cheaply and predictably: the cost of a
//! lookup depends on the request path and on the shape of the templates, never on how
//! many routes the bundle holds; it allocates only for parameter values that had to be
//! percent-decoded, and it takes no lock. It must never panic, whatever the path or
//! method; it must never rewrite a path into another one (no dot-segment resolution,
//! no slash merging, no `%2F` turned into a separator), and it must never match a path
//! with a `.` or `..` segment, so nothing it lets through can walk up a tree upstream.
//!
//! # Rules
//!
//! - **Split, then decode.** The raw path is split on `/` first and each segment is
//!   percent-decoded after, so `%2F` is data inside its segment. Templates are written
//!   decoded: a `%` in a template is a literal percent sign. Literal segments compare
//!   with the decoded request segment byte for byte (case-sensitive).
//! - **Invalid paths.** A path that does not start with `/`, that has an invalid
//!   percent escape (`%zz`, `%4`), or that has a segment decoding to `.` or `..`
//!   (`%2e%2E` included) is [`Lookup::InvalidPath`]. The whole path is checked before
//!   routing, so the answer does not depend on which routes exist.
//! - **Trailing slash is significant.** `/pets/` and `/pets` are different paths; a
//!   template ending in `/` matches only requests ending in `/`. The root `/` is a
//!   path like any other and can be routed.
//! - **Empty segments.** A request with an empty segment before its end (`/a//b`,
//!   `//a`) matches no route, and a template with one is rejected. We do not merge
//!   slashes: the upstream would then see a different path from the one we routed.
//! - **Priority.** Per segment, a literal beats a pattern (`{name}.{ext}`,
//!   `v{version}`), which beats a whole-segment parameter (`{id}`). If the preferred
//!   branch fails deeper down, the next one is tried: with `/a/{x}/c` and `/a/b/d`,
//!   `/a/b/c` matches `/a/{x}/c`. Among patterns of one segment, the one with more
//!   literal bytes goes first.
//! - **Path first, then method.** The most specific matching path decides; if it has
//!   no route for the method, the answer is [`Lookup::MethodNotAllowed`] with that
//!   path's `Allow` value, even if a less specific template has the method (as in
//!   OpenAPI, where a concrete path is its own resource).
//! - **Methods.** Exact [`Method`] comparison, extension methods allowed. `HEAD` is
//!   served by the `GET` route when there is no `HEAD` route, and `Allow` lists `HEAD`
//!   whenever it lists `GET`. `OPTIONS` is not answered automatically.
//! - **Parameters.** A parameter matches one whole, non-empty segment. In a pattern,
//!   each separator is found at its last occurrence, working right to left, with no
//!   backtracking inside the segment: `{name}.{ext}` splits `a.tar.gz` into `a.tar`
//!   and `gz`; every value must be non-empty or the pattern does not match. Patterns
//!   match against the decoded segment.
//! - **Catch-all.** A last segment `{name+}` matches the rest of the path: one or
//!   more segments, the first non-empty (`/proxy/{path+}` takes `/proxy/a/b/`, not
//!   `/proxy/` or `/proxy`). It is tried after everything else at its level, so
//!   `/files/{f}` wins for `/files/a` and `/files/{f+}` for `/files/a/b`. Its value is
//!   the raw rest, percent-decoded as a whole. The path checks above still apply to
//!   every segment it takes (no `..`, no empty inner segment).
//! - **Non-UTF-8.** Decoded bytes need not be UTF-8: literals and pattern separators
//!   compare bytes, and parameter values are returned decoded lossily (invalid
//!   sequences become U+FFFD). A caller that needs the exact bytes has the raw path.
//!
//! # Cost
//!
//! Templates form a segment trie. At each node the request segment is looked up among
//! the literal children by binary search (sorted by length, then bytes, in one shared
//! table: no hashing, no allocation per literal), then tried against the node's patterns, then
//! against its parameter child. Each node also knows at which depths below it routes
//! end (a `u128` bit set), so a branch that cannot end at the request's segment count
//! is not entered at all; a request whose segment count no template has is
//! [`Lookup::NotFound`] without a walk, which also bounds the recursion depth by
//! [`MAX_SEGMENTS`].
//!
//! Backtracking cannot blow up. The trie is a tree and a lookup only moves down, so
//! it enters each node at most once: the work is never more than the trie, never
//! exponential in the request. Tighter, the most nodes any lookup can enter is
//! computed once at build time ([`Router::max_lookup_steps`]): a node costs one step,
//! plus the *largest* of its literal children (only one literal can match a segment),
//! plus all of its pattern children, plus its parameter child. That figure depends on
//! how templates overlap, not on how many there are: APIs under distinct base paths
//! are literal siblings, so adding them does not raise it. Memoizing would not help
//! here (no node is reached twice), and cutting backtracking short would give wrong
//! answers; a bundle whose templates overlap pathologically (a literal and a
//! parameter at every level of deep templates) shows up in that figure, which the
//! gateway can log and the builder can refuse.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::num::NonZeroU32;

use http::{HeaderValue, Method};
use percent_encoding::percent_decode_str;
use smallvec::SmallVec;

// Templates are parsed by `mgw_bundle::template`, the one rule `mgw validate` also runs.
pub use mgw_bundle::template::{MAX_SEGMENTS, PathError, RouteError, check_template};
use mgw_bundle::template::{Pattern, SegmentSpec, check_segment, parse_template};

/// Decoded segments up to this length are decoded on the stack.
const INLINE_SEGMENT: usize = 128;

// ---------------------------------------------------------------------------
// Lookup results
// ---------------------------------------------------------------------------

/// The outcome of [`Router::lookup`]. `'r` borrows from the router, `'p` from the path.
#[derive(Debug)]
pub enum Lookup<'r, 'p, T> {
    /// A route serves this method and path.
    Found(Match<'r, 'p, T>),
    /// The path is routed, but not for this method. `allow` is the path's `Allow`
    /// header value, such as `GET, HEAD, POST`.
    MethodNotAllowed { allow: &'r HeaderValue },
    /// No template matches the path.
    NotFound,
    /// The path is malformed or unsafe to forward; answer `400`.
    InvalidPath(PathError),
}

/// A matched route: its value and the decoded path parameters.
#[derive(Debug)]
pub struct Match<'r, 'p, T> {
    pub value: &'r T,
    pub params: Params<'r, 'p>,
}

/// Path parameters in template order, values percent-decoded. Values are borrowed
/// from the request path when they needed no decoding; up to four live inline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params<'r, 'p> {
    items: SmallVec<[(&'r str, Cow<'p, str>); 4]>,
}

impl<'r, 'p> Params<'r, 'p> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The value of the parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// `(name, value)` pairs in template order.
    pub fn iter(&self) -> impl Iterator<Item = (&'r str, &str)> + '_ {
        self.items.iter().map(|(n, v)| (*n, v.as_ref()))
    }
}

impl<'r, 'p> IntoIterator for Params<'r, 'p> {
    type Item = (&'r str, Cow<'p, str>);
    type IntoIter = ParamsIntoIter<'r, 'p>;

    fn into_iter(self) -> Self::IntoIter {
        ParamsIntoIter(self.items.into_iter())
    }
}

/// Owning iterator over [`Params`].
pub struct ParamsIntoIter<'r, 'p>(smallvec::IntoIter<[(&'r str, Cow<'p, str>); 4]>);

impl<'r, 'p> Iterator for ParamsIntoIter<'r, 'p> {
    type Item = (&'r str, Cow<'p, str>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl fmt::Debug for ParamsIntoIter<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParamsIntoIter").finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// The trie
// ---------------------------------------------------------------------------

/// A node's id in the frozen router: its index in [`Router::nodes`]. The root is
/// never anyone's child, so a child id is never zero and `Option<Child>` costs
/// no more than the id.
type Child = NonZeroU32;

/// A node of the frozen trie, 64 bytes; literal children and leaves live in the
/// router's shared tables.
#[derive(Debug)]
struct Node {
    /// Bit `k` is set when a route ends `k` segments below this node.
    ends: u128,
    /// Most nodes a lookup can enter from here, this one included.
    worst: usize,
    /// Pattern children, most literal bytes first.
    patterns: Box<[(Pattern, Child)]>,
    /// This node's literal children: `Router::literals[first..end]`, sorted by
    /// length, then bytes.
    literals: (u32, u32),
    /// The whole-segment parameter child.
    param: Option<Child>,
    /// The catch-all child (`{name+}`), a leaf.
    catch_all: Option<Child>,
    /// Routes ending here: an index into `Router::leaves`.
    leaf: Option<u32>,
}

/// A literal child: its decoded segment is `Router::bytes[start..start + len]`.
#[derive(Debug)]
struct LiteralEdge {
    start: u32,
    len: u32,
    child: Child,
}

#[derive(Debug)]
struct Leaf<T> {
    endpoints: Box<[Endpoint<T>]>,
    /// The `Allow` value for this path.
    allow: HeaderValue,
}

impl<T> Leaf<T> {
    fn endpoint(&self, method: &Method) -> Option<&Endpoint<T>> {
        let exact = self.endpoints.iter().find(|e| e.method == *method);
        if exact.is_none() && *method == Method::HEAD {
            return self.endpoints.iter().find(|e| e.method == Method::GET);
        }
        exact
    }
}

#[derive(Debug)]
struct Endpoint<T> {
    method: Method,
    value: T,
    /// Parameter names in template order.
    names: Box<[Box<str>]>,
}

// ---------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------

/// Index of a node in the builder's arena.
type NodeId = usize;

const ROOT: NodeId = 0;

/// A trie node while routes are added.
#[derive(Debug)]
struct BuildNode<T> {
    /// Literal children in insertion order (sorted when frozen).
    literals: Vec<(Box<[u8]>, NodeId)>,
    patterns: Vec<(Pattern, NodeId)>,
    param: Option<NodeId>,
    catch_all: Option<NodeId>,
    /// Routes ending here, each with its template (for duplicate errors only).
    leaf: Vec<(Endpoint<T>, Box<str>)>,
}

impl<T> Default for BuildNode<T> {
    fn default() -> Self {
        Self {
            literals: Vec::new(),
            patterns: Vec::new(),
            param: None,
            catch_all: None,
            leaf: Vec::new(),
        }
    }
}

/// Collects routes, then freezes them into a [`Router`].
#[derive(Debug)]
pub struct RouterBuilder<T> {
    nodes: Vec<BuildNode<T>>,
    /// `(parent, decoded segment)` → literal child, so inserting stays linear.
    literal_index: HashMap<(NodeId, Box<[u8]>), NodeId>,
    /// Bytes of every distinct literal edge, to keep the frozen tables' `u32`
    /// offsets in range.
    literal_bytes: usize,
}

impl<T> Default for RouterBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RouterBuilder<T> {
    pub fn new() -> Self {
        Self {
            nodes: vec![BuildNode::default()],
            literal_index: HashMap::new(),
            literal_bytes: 0,
        }
    }

    /// Adds the route `method template`. The template is a full, decoded path
    /// template such as `/petstore/v1/pets/{petId}`. Parameter names do not count
    /// when looking for duplicates: `/p/{a}` and `/p/{b}` are the same path.
    pub fn insert(&mut self, method: Method, template: &str, value: T) -> Result<(), RouteError> {
        let parsed = parse_template(template)?;
        // The frozen router numbers nodes and literal bytes with `u32`: refuse a
        // table that could outgrow them (billions of segments; no real bundle).
        let room = u32::MAX as usize - MAX_SEGMENTS;
        if self.nodes.len() + parsed.segments.len() > room
            || self.literal_bytes.saturating_add(template.len()) > room
        {
            return Err(RouteError::TooManyRoutes {
                template: template.to_owned(),
            });
        }
        let mut id = ROOT;
        for spec in parsed.segments {
            id = self.child(id, spec);
        }
        // Ids come only from pushing onto the arena, so indexing cannot fail.
        let leaf = &mut self.nodes[id].leaf;
        if let Some((existing, existing_template)) = leaf.iter().find(|(e, _)| e.method == method) {
            return Err(RouteError::Duplicate {
                method: existing.method.clone(),
                template: template.to_owned(),
                existing: existing_template.to_string(),
            });
        }
        let endpoint = Endpoint {
            method,
            value,
            names: parsed.names.into_boxed_slice(),
        };
        leaf.push((endpoint, template.into()));
        Ok(())
    }

    /// The child of `id` for `spec`, created if missing.
    fn child(&mut self, id: NodeId, spec: SegmentSpec) -> NodeId {
        let next = self.nodes.len();
        let node = &mut self.nodes[id];
        match spec {
            SegmentSpec::Literal(lit) => match self.literal_index.entry((id, lit)) {
                Entry::Occupied(e) => return *e.get(),
                Entry::Vacant(e) => {
                    self.literal_bytes += e.key().1.len();
                    node.literals.push((e.key().1.clone(), next));
                    e.insert(next);
                }
            },
            SegmentSpec::Param => match node.param {
                Some(child) => return child,
                None => node.param = Some(next),
            },
            SegmentSpec::Pattern(p) => match node.patterns.iter().find(|(q, _)| *q == p) {
                Some((_, child)) => return *child,
                None => node.patterns.push((p, next)),
            },
            SegmentSpec::CatchAll => match node.catch_all {
                Some(child) => return child,
                None => node.catch_all = Some(next),
            },
        }
        self.nodes.push(BuildNode::default());
        next
    }

    /// Freezes the routes: orders literals and patterns, computes every `Allow`
    /// value, the depth sets and the worst-case lookup cost, and packs the trie
    /// into its tables.
    pub fn build(self) -> Router<T> {
        let count = self.nodes.len();
        // `(ends, worst)` per node. A child is always pushed after its parent, so
        // walking the arena backwards sees every child before its parent.
        let mut cost = vec![(0u128, 0usize); count];
        for (id, node) in self.nodes.iter().enumerate().rev() {
            let child = |c: &NodeId| cost.get(*c).copied().unwrap_or((0, 0));
            let mut ends = u128::from(!node.leaf.is_empty());
            let (mut literal_worst, mut others_worst) = (0usize, 0usize);
            for (child_ends, child_worst) in node.literals.iter().map(|(_, c)| child(c)) {
                ends |= child_ends << 1;
                literal_worst = literal_worst.max(child_worst);
            }
            let others = node.patterns.iter().map(|(_, c)| c).chain(&node.param);
            for (child_ends, child_worst) in others.map(child) {
                ends |= child_ends << 1;
                others_worst = others_worst.saturating_add(child_worst);
            }
            // A catch-all ends at every depth from one segment down.
            if let Some((_, child_worst)) = node.catch_all.as_ref().map(child) {
                ends |= u128::MAX << 1;
                others_worst = others_worst.saturating_add(child_worst);
            }
            let worst = 1usize
                .saturating_add(literal_worst)
                .saturating_add(others_worst);
            cost[id] = (ends, worst);
        }

        // `insert` keeps node counts and literal bytes below `u32::MAX`, so
        // these conversions cannot fail; the fallbacks keep `build` panic-free.
        let id = |n: NodeId| Child::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(Child::MIN);
        let offset = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let edge_count = self.nodes.iter().map(|n| n.literals.len()).sum();
        let mut literals = Vec::with_capacity(edge_count);
        let mut bytes = Vec::with_capacity(self.literal_bytes);
        // Sized up front, like the other tables: no outgrown copies left
        // behind among the long-lived route state.
        let mut leaves =
            Vec::with_capacity(self.nodes.iter().filter(|n| !n.leaf.is_empty()).count());
        let mut nodes = Vec::with_capacity(count);
        let mut max_literal_len = 0;
        for (node, (ends, worst)) in self.nodes.into_iter().zip(cost) {
            let mut node_literals = node.literals;
            node_literals.sort_unstable_by(|(a, _), (b, _)| literal_order(a, b));
            let first = offset(literals.len());
            for (lit, child) in node_literals {
                max_literal_len = max_literal_len.max(lit.len());
                literals.push(LiteralEdge {
                    start: offset(bytes.len()),
                    len: offset(lit.len()),
                    child: id(child),
                });
                bytes.extend_from_slice(&lit);
            }
            let mut patterns: Vec<(Pattern, Child)> =
                node.patterns.into_iter().map(|(p, c)| (p, id(c))).collect();
            patterns.sort_by(|(a, _), (b, _)| {
                b.literal_len().cmp(&a.literal_len()).then_with(|| a.cmp(b))
            });
            let leaf = (!node.leaf.is_empty()).then(|| {
                let endpoints: Box<[Endpoint<T>]> = node.leaf.into_iter().map(|(e, _)| e).collect();
                leaves.push(Leaf {
                    allow: allow_value(&endpoints),
                    endpoints,
                });
                offset(leaves.len() - 1)
            });
            nodes.push(Node {
                ends,
                worst,
                patterns: patterns.into_boxed_slice(),
                literals: (first, offset(literals.len())),
                param: node.param.map(id),
                catch_all: node.catch_all.map(id),
                leaf,
            });
        }
        Router {
            nodes: nodes.into_boxed_slice(),
            literals: literals.into_boxed_slice(),
            bytes: bytes.into_boxed_slice(),
            leaves: leaves.into_boxed_slice(),
            max_literal_len,
        }
    }
}

/// The order of a node's literal children: by length, then bytes, so a lookup
/// mostly compares lengths.
fn literal_order(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The `Allow` value of a path served by `endpoints`: their methods sorted, with
/// `HEAD` whenever `GET` is there.
fn allow_value<T>(endpoints: &[Endpoint<T>]) -> HeaderValue {
    let mut methods: Vec<&str> = endpoints.iter().map(|e| e.method.as_str()).collect();
    if endpoints.iter().any(|e| e.method == Method::GET) {
        methods.push(Method::HEAD.as_str());
    }
    methods.sort_unstable();
    methods.dedup();
    // Method names are HTTP tokens, which are always valid header value bytes,
    // so the fallback is unreachable; it is there to keep `build` panic-free.
    HeaderValue::from_str(&methods.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

// ---------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------

/// An immutable route table; see the module documentation for the rules.
#[derive(Debug)]
pub struct Router<T> {
    /// The trie; the root is the first node.
    nodes: Box<[Node]>,
    /// Every node's literal children, one node's after another.
    literals: Box<[LiteralEdge]>,
    /// The decoded bytes of every literal child, one after another.
    bytes: Box<[u8]>,
    /// The routes of every path that has some.
    leaves: Box<[Leaf<T>]>,
    /// Longest literal segment, in bytes; longer request segments skip the search.
    max_literal_len: usize,
}

/// One parameter edge taken on the way to a match, recorded while unwinding.
enum Edge<'r, 'p> {
    Param(&'p str),
    Pattern(&'r Pattern, &'p str),
    /// The raw rest of the path a catch-all took.
    CatchAll(&'p str),
}

struct Search<'r, 'p> {
    /// Parameter edges of the successful branch, deepest first.
    trail: SmallVec<[Edge<'r, 'p>; 8]>,
    /// Nodes entered.
    steps: usize,
}

/// A request segment, decoded on the stack unless it is long.
enum Decoded<'p> {
    Raw(&'p str),
    Buf(SmallVec<[u8; INLINE_SEGMENT]>),
}

impl<'p> Decoded<'p> {
    fn new(segment: &'p str) -> Self {
        if segment.as_bytes().contains(&b'%') {
            Decoded::Buf(percent_decode_str(segment).collect())
        } else {
            Decoded::Raw(segment)
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Decoded::Raw(s) => s.as_bytes(),
            Decoded::Buf(b) => b,
        }
    }
}

impl<T> Router<T> {
    pub fn builder() -> RouterBuilder<T> {
        RouterBuilder::new()
    }

    /// Finds the route for `method` and `raw_path`, the request path exactly as
    /// received: still percent-encoded, without the query.
    pub fn lookup<'r, 'p>(&'r self, method: &Method, raw_path: &'p str) -> Lookup<'r, 'p, T> {
        self.lookup_counting(method, raw_path, true).0
    }

    /// [`Router::lookup`] without decoding the path parameters (the match's
    /// `params` are empty): for a caller that only needs the route.
    pub fn find<'r, 'p>(&'r self, method: &Method, raw_path: &'p str) -> Lookup<'r, 'p, T> {
        self.lookup_counting(method, raw_path, false).0
    }

    /// The most trie nodes any single lookup can enter with these routes. It depends
    /// on the shape of the templates, not on their number; worth logging at start.
    pub fn max_lookup_steps(&self) -> usize {
        self.nodes.first().map_or(0, |root| root.worst)
    }

    fn lookup_counting<'r, 'p>(
        &'r self,
        method: &Method,
        raw_path: &'p str,
        with_params: bool,
    ) -> (Lookup<'r, 'p, T>, usize) {
        let Some(rest) = raw_path.strip_prefix('/') else {
            return (Lookup::InvalidPath(PathError::NotAbsolute), 0);
        };
        let shape = match scan_path(rest) {
            Ok(shape) => shape,
            Err(e) => return (Lookup::InvalidPath(e), 0),
        };
        // Templates have no inner empty segment and parameters never match one, so
        // the walk would find nothing for `/a//b` either; this only makes it cheap.
        if shape.inner_empty || shape.segments > MAX_SEGMENTS {
            return (Lookup::NotFound, 0);
        }
        let mut search = Search {
            trail: SmallVec::new(),
            steps: 0,
        };
        let root = self.nodes.first();
        let leaf =
            root.and_then(|root| self.descend(root, Some(rest), shape.segments, &mut search));
        let steps = search.steps;
        let Some(leaf) = leaf else {
            return (Lookup::NotFound, steps);
        };
        let found = match leaf.endpoint(method) {
            None => Lookup::MethodNotAllowed { allow: &leaf.allow },
            Some(endpoint) => Lookup::Found(Match {
                value: &endpoint.value,
                params: if with_params {
                    collect_params(&endpoint.names, &search.trail)
                } else {
                    Params::default()
                },
            }),
        };
        (found, steps)
    }

    /// Enters `node` with `rest` left to match (`None` once every segment is
    /// consumed), `left` segments long, and returns the leaf of the best match below
    /// it. `left` shrinks by one per level and is at most [`MAX_SEGMENTS`] at the
    /// root, which bounds the recursion; see "Cost" in the module docs.
    fn descend<'r, 'p>(
        &'r self,
        node: &'r Node,
        rest: Option<&'p str>,
        left: usize,
        search: &mut Search<'r, 'p>,
    ) -> Option<&'r Leaf<T>> {
        // A node below which no route ends exactly `left` segments down holds
        // nothing for this path: skip it before it counts as entered.
        if !ends_at(node, left) {
            return None;
        }
        search.steps += 1;
        let Some(rest) = rest else {
            return self.leaf(node);
        };
        let whole = rest;
        let left = left.saturating_sub(1);
        // A byte search: `split_once(char)` costs more on short segments.
        let (segment, rest) = match rest.bytes().position(|b| b == b'/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let literals = self.literals_of(node);
        let decoded = if literals.is_empty() && node.patterns.is_empty() {
            None
        } else {
            Some(Decoded::new(segment))
        };
        if let Some(decoded) = &decoded {
            let bytes = decoded.bytes();
            if bytes.len() <= self.max_literal_len {
                let child = literals
                    .binary_search_by(|e| literal_order(self.literal_bytes(e), bytes))
                    .ok()
                    .and_then(|i| self.child(literals.get(i)?.child));
                if let Some(child) = child {
                    if let Some(leaf) = self.descend(child, rest, left, search) {
                        return Some(leaf);
                    }
                }
            }
            if !bytes.is_empty() {
                for (pattern, child) in &node.patterns {
                    let child = self.child(*child).filter(|_| pattern.matches(bytes));
                    if let Some(child) = child {
                        if let Some(leaf) = self.descend(child, rest, left, search) {
                            search.trail.push(Edge::Pattern(pattern, segment));
                            return Some(leaf);
                        }
                    }
                }
            }
        }
        let param = node.param.filter(|_| !segment.is_empty());
        if let Some(child) = param.and_then(|c| self.child(c)) {
            if let Some(leaf) = self.descend(child, rest, left, search) {
                search.trail.push(Edge::Param(segment));
                return Some(leaf);
            }
        }
        // Last resort: a catch-all takes this segment and everything after it.
        let catch_all = node.catch_all.filter(|_| !segment.is_empty());
        if let Some(leaf) = catch_all.and_then(|c| self.leaf(self.child(c)?)) {
            search.steps += 1;
            search.trail.push(Edge::CatchAll(whole));
            return Some(leaf);
        }
        None
    }

    fn child(&self, id: Child) -> Option<&Node> {
        self.nodes.get(id.get() as usize)
    }

    fn leaf(&self, node: &Node) -> Option<&Leaf<T>> {
        self.leaves.get(node.leaf? as usize)
    }

    /// `node`'s literal children, sorted by [`literal_order`].
    fn literals_of(&self, node: &Node) -> &[LiteralEdge] {
        let (first, end) = node.literals;
        self.literals
            .get(first as usize..end as usize)
            .unwrap_or_default()
    }

    fn literal_bytes(&self, edge: &LiteralEdge) -> &[u8] {
        let start = edge.start as usize;
        self.bytes
            .get(start..start + edge.len as usize)
            .unwrap_or_default()
    }
}

/// Whether some route ends exactly `left` segments below `node`.
fn ends_at(node: &Node, left: usize) -> bool {
    u32::try_from(left)
        .ok()
        .and_then(|l| node.ends.checked_shr(l))
        .is_some_and(|bits| bits & 1 == 1)
}

/// What the validation pass learned about a path.
#[derive(Debug, PartialEq, Eq)]
struct PathShape {
    segments: usize,
    /// An empty segment before the last one (`/a//b`).
    inner_empty: bool,
}

/// Validates every segment of `rest` (the path after its leading `/`).
///
/// One pass over the bytes counts the segments and finds inner empty ones; a
/// segment can only be invalid (a bad escape, `.` or `..`, escaped or not) if
/// the path has a `%` or a `.`, and only such a path is checked segment by
/// segment. Most paths have neither (BENCHMARKS.md, "thirteenth wave").
fn scan_path(rest: &str) -> Result<PathShape, PathError> {
    let bytes = rest.as_bytes();
    let mut shape = PathShape {
        segments: 1,
        inner_empty: false,
    };
    let mut suspect = false;
    // A segment ends at each `/`; it is empty when the `/` starts it.
    let mut segment_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'/' => {
                shape.segments += 1;
                shape.inner_empty |= i == segment_start;
                segment_start = i + 1;
            }
            b'%' | b'.' => suspect = true,
            _ => {}
        }
    }
    if suspect {
        return scan_segments(rest);
    }
    Ok(shape)
}

/// [`scan_path`] segment by segment, each checked by `check_segment`.
fn scan_segments(rest: &str) -> Result<PathShape, PathError> {
    let mut shape = PathShape {
        segments: 0,
        inner_empty: false,
    };
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        shape.segments += 1;
        check_segment(segment)?;
        if segment.is_empty() && segments.peek().is_some() {
            shape.inner_empty = true;
        }
    }
    Ok(shape)
}

/// Pairs the matched branch's parameter edges with the endpoint's names and decodes
/// the values. Only values that contained an escape allocate.
fn collect_params<'r, 'p>(names: &'r [Box<str>], trail: &[Edge<'r, 'p>]) -> Params<'r, 'p> {
    let mut items: SmallVec<[(&'r str, Cow<'p, str>); 4]> = SmallVec::new();
    // The trail is deepest first and patterns report values right to left, so the
    // names are consumed from the end and the list is reversed once at the end.
    let mut names = names.iter().rev();
    for edge in trail {
        match *edge {
            Edge::CatchAll(rest) => {
                if let Some(name) = names.next() {
                    items.push((name, percent_decode_str(rest).decode_utf8_lossy()));
                }
            }
            Edge::Param(segment) => {
                if let Some(name) = names.next() {
                    items.push((name, percent_decode_str(segment).decode_utf8_lossy()));
                }
            }
            Edge::Pattern(pattern, segment) => {
                let decoded = Decoded::new(segment);
                pattern.split(decoded.bytes(), |range| {
                    let Some(name) = names.next() else {
                        return;
                    };
                    let value = match &decoded {
                        Decoded::Raw(raw) => match raw.get(range) {
                            Some(v) => Cow::Borrowed(v),
                            None => Cow::Owned(String::new()),
                        },
                        Decoded::Buf(buf) => Cow::Owned(
                            String::from_utf8_lossy(buf.get(range).unwrap_or_default())
                                .into_owned(),
                        ),
                    };
                    items.push((name, value));
                });
            }
        }
    }
    items.reverse();
    Params { items }
}

#[cfg(test)]
impl<T> Router<T> {
    /// Nodes entered by one lookup: the cost measure the scaling test compares.
    fn lookup_cost(&self, method: &Method, raw_path: &str) -> usize {
        self.lookup_counting(method, raw_path, true).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
    use proptest::prelude::*;

    fn router(routes: &[(&str, &str, &'static str)]) -> Router<&'static str> {
        let mut b = RouterBuilder::new();
        for (method, template, value) in routes {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            b.insert(method, template, *value).unwrap();
        }
        b.build()
    }

    /// The value and `(name, value)` params of a match; panics on anything else.
    fn found<T: Copy + fmt::Debug>(l: Lookup<'_, '_, T>) -> (T, Vec<(String, String)>) {
        match l {
            Lookup::Found(m) => (
                *m.value,
                m.params
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
            ),
            other => panic!("expected a match, got {other:?}"),
        }
    }

    fn get<'r, 'p>(r: &'r Router<&'static str>, path: &'p str) -> Lookup<'r, 'p, &'static str> {
        r.lookup(&Method::GET, path)
    }

    /// The one-pass scan agrees with the segment-by-segment check on every
    /// path of up to six bytes drawn from the bytes that matter to it.
    #[test]
    fn path_scan_fast_path_agrees_with_the_segment_check() {
        let alphabet = [b'a', b'/', b'.', b'%', b'2', b'e'];
        let mut path = Vec::new();
        for len in 0..=6u32 {
            for mut n in 0..alphabet.len().pow(len) {
                path.clear();
                for _ in 0..len {
                    path.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                let rest = std::str::from_utf8(&path).unwrap();
                assert_eq!(scan_path(rest), scan_segments(rest), "{rest:?}");
            }
        }
    }

    #[test]
    fn catch_all_takes_the_rest_of_the_path_last() {
        let r = router(&[
            (
                "GET",
                "/api/v1/namespaces/{ns}/pods/{name}/proxy/{path+}",
                "proxy",
            ),
            (
                "GET",
                "/api/v1/namespaces/{ns}/pods/{name}/proxy/healthz",
                "health",
            ),
            ("GET", "/files/{f}", "one"),
            ("GET", "/files/{f+}", "many"),
            ("POST", "/files/{f+}", "upload"),
        ]);
        let (v, p) = found(get(
            &r,
            "/api/v1/namespaces/default/pods/web-0/proxy/a/b%20c/d/",
        ));
        assert_eq!(v, "proxy");
        assert_eq!(
            p,
            [("ns", "default"), ("name", "web-0"), ("path", "a/b c/d/")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(
            found(get(&r, "/api/v1/namespaces/d/pods/w/proxy/healthz")).0,
            "health"
        );
        assert_eq!(
            found(get(&r, "/api/v1/namespaces/d/pods/w/proxy/x")).0,
            "proxy"
        );
        // One or more non-empty segments: not zero, not an empty first one.
        assert!(matches!(
            get(&r, "/api/v1/namespaces/d/pods/w/proxy"),
            Lookup::NotFound
        ));
        assert!(matches!(
            get(&r, "/api/v1/namespaces/d/pods/w/proxy/"),
            Lookup::NotFound
        ));
        // A whole-segment parameter beats a catch-all for one segment.
        assert_eq!(found(get(&r, "/files/a")).0, "one");
        assert_eq!(found(get(&r, "/files/a/b")).0, "many");
        assert_eq!(
            allow(r.lookup(&Method::PUT, "/files/a/b")),
            "GET, HEAD, POST"
        );
        // What every path gets still holds: no dot segments, no empty inner ones.
        assert!(matches!(
            get(&r, "/files/a/../b"),
            Lookup::InvalidPath(PathError::DotSegment)
        ));
        assert!(matches!(get(&r, "/files/a//b"), Lookup::NotFound));
        // Deep paths stay cheap: the catch-all is one step.
        assert!(r.lookup_cost(&Method::GET, "/files/a/b/c/d/e/f/g/h") <= 3);
    }

    #[test]
    fn catch_all_must_end_the_template() {
        let mut b = RouterBuilder::new();
        assert!(matches!(
            b.insert(Method::GET, "/a/{p+}/b", ()),
            Err(RouteError::CatchAllNotLast { .. })
        ));
        assert!(matches!(
            b.insert(Method::GET, "/a/{p}/{p+}", ()),
            Err(RouteError::DuplicateParam { .. })
        ));
    }

    fn allow<T>(l: Lookup<'_, '_, T>) -> String {
        match l {
            Lookup::MethodNotAllowed { allow } => allow.to_str().unwrap().to_owned(),
            Lookup::Found(_) => panic!("expected 405, got a match"),
            Lookup::NotFound => panic!("expected 405, got not found"),
            Lookup::InvalidPath(e) => panic!("expected 405, got invalid path: {e}"),
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn insert_err(template: &str) -> RouteError {
        RouterBuilder::new()
            .insert(Method::GET, template, ())
            .unwrap_err()
    }

    // -- priority and backtracking ------------------------------------------

    #[test]
    fn literal_beats_param_whatever_the_insert_order() {
        for routes in [
            [
                ("GET", "/pets/{id}", "param"),
                ("GET", "/pets/mine", "literal"),
            ],
            [
                ("GET", "/pets/mine", "literal"),
                ("GET", "/pets/{id}", "param"),
            ],
        ] {
            let r = router(&routes);
            assert_eq!(found(get(&r, "/pets/mine")), ("literal", vec![]));
            assert_eq!(found(get(&r, "/pets/7")), ("param", p(&[("id", "7")])));
        }
    }

    #[test]
    fn backtracks_from_a_literal_dead_end_to_the_param() {
        let r = router(&[("GET", "/a/{x}/c", "param"), ("GET", "/a/b/d", "literal")]);
        assert_eq!(found(get(&r, "/a/b/c")), ("param", p(&[("x", "b")])));
        assert_eq!(found(get(&r, "/a/b/d")), ("literal", vec![]));
        assert!(matches!(get(&r, "/a/b/e"), Lookup::NotFound));
    }

    #[test]
    fn backtracks_several_levels_and_keeps_only_the_winning_params() {
        let r = router(&[
            ("GET", "/a/{x}/{y}/end", "params"),
            ("GET", "/a/b/{z}/other", "mixed"),
            ("GET", "/a/b/c/d/e", "literals"),
        ]);
        assert_eq!(
            found(get(&r, "/a/b/c/end")),
            ("params", p(&[("x", "b"), ("y", "c")]))
        );
        assert_eq!(found(get(&r, "/a/b/c/other")), ("mixed", p(&[("z", "c")])));
        assert_eq!(found(get(&r, "/a/b/c/d/e")), ("literals", vec![]));
    }

    #[test]
    fn branches_that_cannot_end_at_the_right_depth_are_not_entered() {
        let r = router(&[
            ("GET", "/a/{x}/c", "param"),
            ("GET", "/a/b/d/e/f", "literal"),
        ]);
        // root, `a`, `{x}`, `c`: the literal `b` ends only three levels down.
        assert_eq!(r.lookup_cost(&Method::GET, "/a/b/c"), 4);
        // A segment count no template has stops before the root.
        assert_eq!(r.lookup_cost(&Method::GET, "/a/b"), 0);
        assert!(matches!(get(&r, "/a/b"), Lookup::NotFound));
        assert!(matches!(
            get(&r, &"/a".repeat(MAX_SEGMENTS)),
            Lookup::NotFound
        ));
    }

    #[test]
    fn a_node_without_routes_is_not_a_match() {
        // `/a/b` exists only as a prefix of `/a/b/c`; the param route must answer.
        let r = router(&[("GET", "/a/b/c", "deep"), ("GET", "/a/{x}", "param")]);
        assert_eq!(found(get(&r, "/a/b")), ("param", p(&[("x", "b")])));
    }

    #[test]
    fn literal_beats_pattern_beats_param() {
        let r = router(&[
            ("GET", "/f/{file}", "param"),
            ("GET", "/f/{name}.{ext}", "pattern"),
            ("GET", "/f/{name}.json", "json"),
            ("GET", "/f/index.html", "literal"),
        ]);
        assert_eq!(found(get(&r, "/f/index.html")), ("literal", vec![]));
        assert_eq!(
            found(get(&r, "/f/data.json")),
            ("json", p(&[("name", "data")]))
        );
        assert_eq!(
            found(get(&r, "/f/a.txt")),
            ("pattern", p(&[("name", "a"), ("ext", "txt")]))
        );
        assert_eq!(
            found(get(&r, "/f/README")),
            ("param", p(&[("file", "README")]))
        );
    }

    // -- patterns ------------------------------------------------------------

    #[test]
    fn pattern_separators_are_taken_at_their_last_occurrence() {
        let r = router(&[
            ("GET", "/f/{name}.{ext}", "file"),
            ("GET", "/api/v{version}/x", "version"),
            ("GET", "/r/{a}-{b}-{c}.tgz", "three"),
        ]);
        assert_eq!(
            found(get(&r, "/f/archive.tar.gz")),
            ("file", p(&[("name", "archive.tar"), ("ext", "gz")]))
        );
        assert_eq!(
            found(get(&r, "/api/v2/x")),
            ("version", p(&[("version", "2")]))
        );
        assert_eq!(
            found(get(&r, "/r/x-y-z-w.tgz")),
            ("three", p(&[("a", "x-y"), ("b", "z"), ("c", "w")]))
        );
    }

    #[test]
    fn pattern_values_are_never_empty() {
        let r = router(&[("GET", "/f/{name}.{ext}", "file"), ("GET", "/v/v{n}", "v")]);
        for path in ["/f/.txt", "/f/a.", "/f/.", "/f/noext", "/v/v", "/v/x1"] {
            assert!(
                matches!(get(&r, path), Lookup::NotFound | Lookup::InvalidPath(_)),
                "{path}"
            );
        }
    }

    #[test]
    fn patterns_match_the_decoded_segment() {
        let r = router(&[("GET", "/f/{name}.{ext}", "file")]);
        // `%2E` decodes to `.` before the pattern runs; the last `.` still splits.
        assert_eq!(
            found(get(&r, "/f/a%2Eb%2etxt")),
            ("file", p(&[("name", "a.b"), ("ext", "txt")]))
        );
        assert_eq!(
            found(get(&r, "/f/caf%C3%A9.md")),
            ("file", p(&[("name", "café"), ("ext", "md")]))
        );
    }

    // -- methods ---------------------------------------------------------------

    #[test]
    fn head_is_served_by_get_unless_there_is_a_head_route() {
        let r = router(&[
            ("GET", "/a", "get-a"),
            ("GET", "/b", "get-b"),
            ("HEAD", "/b", "head-b"),
            ("POST", "/c", "post-c"),
        ]);
        assert_eq!(found(r.lookup(&Method::HEAD, "/a")).0, "get-a");
        assert_eq!(found(r.lookup(&Method::HEAD, "/b")).0, "head-b");
        assert_eq!(found(r.lookup(&Method::GET, "/b")).0, "get-b");
        assert_eq!(allow(r.lookup(&Method::HEAD, "/c")), "POST");
    }

    #[test]
    fn method_not_allowed_lists_the_path_methods_sorted_with_head() {
        let r = router(&[
            ("POST", "/pets", "create"),
            ("GET", "/pets", "list"),
            ("PURGE", "/pets", "purge"),
            ("DELETE", "/pets/{id}", "delete"),
        ]);
        assert_eq!(
            allow(r.lookup(&Method::PUT, "/pets")),
            "GET, HEAD, POST, PURGE"
        );
        assert_eq!(allow(r.lookup(&Method::GET, "/pets/1")), "DELETE");
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(found(r.lookup(&purge, "/pets")).0, "purge");
    }

    #[test]
    fn explicit_head_and_get_list_head_once() {
        let r = router(&[("GET", "/x", "g"), ("HEAD", "/x", "h")]);
        assert_eq!(allow(r.lookup(&Method::POST, "/x")), "GET, HEAD");
    }

    #[test]
    fn options_is_not_answered_automatically() {
        let r = router(&[("GET", "/x", "g"), ("OPTIONS", "/y", "o")]);
        assert_eq!(allow(r.lookup(&Method::OPTIONS, "/x")), "GET, HEAD");
        assert_eq!(found(r.lookup(&Method::OPTIONS, "/y")).0, "o");
    }

    #[test]
    fn methods_are_compared_exactly() {
        let r = router(&[("GET", "/x", "g")]);
        let lower = Method::from_bytes(b"get").unwrap();
        assert_eq!(allow(r.lookup(&lower, "/x")), "GET, HEAD");
    }

    #[test]
    fn the_most_specific_path_decides_before_the_method() {
        let r = router(&[
            ("GET", "/users/me", "me"),
            ("DELETE", "/users/{id}", "delete"),
        ]);
        assert_eq!(allow(r.lookup(&Method::DELETE, "/users/me")), "GET, HEAD");
        assert_eq!(found(r.lookup(&Method::DELETE, "/users/42")).0, "delete");
    }

    #[test]
    fn same_shape_with_other_names_per_method() {
        let r = router(&[
            ("GET", "/p/{petId}", "get"),
            ("DELETE", "/p/{id}", "delete"),
        ]);
        assert_eq!(found(get(&r, "/p/1")), ("get", p(&[("petId", "1")])));
        assert_eq!(
            found(r.lookup(&Method::DELETE, "/p/1")),
            ("delete", p(&[("id", "1")]))
        );
    }

    // -- percent-decoding ------------------------------------------------------

    #[test]
    fn encoded_slash_stays_inside_its_segment() {
        let r = router(&[("GET", "/files/{name}", "file"), ("GET", "/a/b", "ab")]);
        assert_eq!(
            found(get(&r, "/files/a%2Fb")),
            ("file", p(&[("name", "a/b")]))
        );
        assert_eq!(
            found(get(&r, "/files/a%2fb%2F")),
            ("file", p(&[("name", "a/b/")]))
        );
        assert!(matches!(get(&r, "/a%2Fb"), Lookup::NotFound));
        assert!(matches!(get(&r, "/files/a/b"), Lookup::NotFound));
    }

    #[test]
    fn literals_compare_with_the_decoded_segment() {
        let r = router(&[("GET", "/café/a b", "cafe"), ("GET", "/100%", "percent")]);
        assert_eq!(found(get(&r, "/caf%C3%A9/a%20b")).0, "cafe");
        assert_eq!(found(get(&r, "/%63af%c3%a9/a%20b")).0, "cafe");
        assert_eq!(found(get(&r, "/100%25")).0, "percent");
        // Latin-1 `é` is not UTF-8 `é`: bytes differ, no match.
        assert!(matches!(get(&r, "/caf%E9/a%20b"), Lookup::NotFound));
    }

    #[test]
    fn invalid_escapes_are_invalid_paths_whatever_the_routes() {
        let r = router(&[("GET", "/{x}", "x")]);
        let empty: Router<()> = RouterBuilder::new().build();
        for path in [
            "/%zz", "/%4", "/%", "/a%g1", "/ok/%%41", "/x/%2", "/%2F/%Z0",
        ] {
            assert!(
                matches!(get(&r, path), Lookup::InvalidPath(PathError::BadEscape)),
                "{path}"
            );
            assert!(
                matches!(
                    empty.lookup(&Method::GET, path),
                    Lookup::InvalidPath(PathError::BadEscape)
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn non_utf8_param_values_are_decoded_lossily() {
        let r = router(&[("GET", "/b/{x}", "x")]);
        assert_eq!(
            found(get(&r, "/b/%FFa%C3")),
            ("x", p(&[("x", "\u{FFFD}a\u{FFFD}")]))
        );
    }

    #[test]
    fn values_without_escapes_are_borrowed_from_the_path() {
        let r = router(&[("GET", "/{a}/{b}.{c}/{d}", "x")]);
        let Lookup::Found(m) = get(&r, "/one/two.three/f%6Fur") else {
            panic!("no match")
        };
        let kinds: Vec<(&str, bool)> = m
            .params
            .into_iter()
            .map(|(n, v)| (n, matches!(v, Cow::Borrowed(_))))
            .collect();
        assert_eq!(kinds, [("a", true), ("b", true), ("c", true), ("d", false)]);
    }

    #[test]
    fn many_params_spill_past_the_inline_capacity() {
        let r = router(&[("GET", "/{a}/{b}/{c}/{d}/{e}/{f}-{g}", "x")]);
        let (_, params) = found(get(&r, "/1/2/3/4/5/6-7"));
        let want = p(&[
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "4"),
            ("e", "5"),
            ("f", "6"),
            ("g", "7"),
        ]);
        assert_eq!(params, want);
        let Lookup::Found(m) = get(&r, "/1/2/3/4/5/6-7") else {
            panic!()
        };
        assert_eq!(m.params.get("f"), Some("6"));
        assert_eq!(m.params.get("zz"), None);
        assert_eq!(m.params.len(), 7);
    }

    // -- dot segments, slashes, root --------------------------------------------

    #[test]
    fn dot_segments_are_invalid_in_any_spelling() {
        let r = router(&[("GET", "/{a}/{b}", "x"), ("GET", "/{a}", "y")]);
        for path in [
            "/.",
            "/..",
            "/a/.",
            "/a/..",
            "/./a",
            "/../a",
            "/%2e",
            "/%2E%2e",
            "/%2e%2E/b",
            "/.%2E",
            "/%2e.",
            "/a/../",
            "/a/./",
        ] {
            assert!(
                matches!(get(&r, path), Lookup::InvalidPath(PathError::DotSegment)),
                "{path}"
            );
        }
        // Only exactly one or two dots are dot segments.
        assert_eq!(found(get(&r, "/...")), ("y", p(&[("a", "...")])));
        assert_eq!(
            found(get(&r, "/.a/b.")),
            ("x", p(&[("a", ".a"), ("b", "b.")]))
        );
    }

    #[test]
    fn trailing_slash_is_significant() {
        let r = router(&[
            ("GET", "/pets", "no-slash"),
            ("GET", "/dirs/", "slash"),
            ("GET", "/items/{id}", "item"),
            ("GET", "/items/{id}/", "item-slash"),
        ]);
        assert_eq!(found(get(&r, "/pets")).0, "no-slash");
        assert!(matches!(get(&r, "/pets/"), Lookup::NotFound));
        assert_eq!(found(get(&r, "/dirs/")).0, "slash");
        assert!(matches!(get(&r, "/dirs"), Lookup::NotFound));
        // An empty trailing segment is not a parameter value.
        assert!(matches!(get(&r, "/items/"), Lookup::NotFound));
        assert_eq!(
            found(get(&r, "/items/7/")),
            ("item-slash", p(&[("id", "7")]))
        );
    }

    #[test]
    fn root_is_a_route() {
        let r = router(&[("GET", "/", "root"), ("GET", "/{x}", "x")]);
        assert_eq!(found(get(&r, "/")), ("root", vec![]));
        assert_eq!(found(get(&r, "/a")), ("x", p(&[("x", "a")])));
        assert!(matches!(get(&r, "//"), Lookup::NotFound));
        let no_root = router(&[("GET", "/{x}", "x")]);
        assert!(matches!(get(&no_root, "/"), Lookup::NotFound));
    }

    #[test]
    fn empty_inner_segments_match_nothing() {
        let r = router(&[
            ("GET", "/a/{x}/b", "x"),
            ("GET", "/a/b", "ab"),
            ("GET", "/{x}/a", "y"),
        ]);
        for path in ["/a//b", "//a", "/a//", "//"] {
            assert!(matches!(get(&r, path), Lookup::NotFound), "{path}");
        }
    }

    #[test]
    fn paths_must_be_absolute() {
        let r = router(&[("GET", "/", "root")]);
        for path in ["", "*", "a/b", "http://x/"] {
            assert!(
                matches!(get(&r, path), Lookup::InvalidPath(PathError::NotAbsolute)),
                "{path:?}"
            );
        }
    }

    #[test]
    fn very_deep_paths_are_rejected_before_the_walk() {
        let r = router(&[("GET", "/{a}/{b}", "x")]);
        let deep = "/a".repeat(100_000);
        assert!(matches!(get(&r, &deep), Lookup::NotFound));
        assert_eq!(r.lookup_cost(&Method::GET, &deep), 0);
        let deepest = "/{p}".to_owned() + &"/x".repeat(MAX_SEGMENTS - 1);
        let r = router(&[("GET", &deepest, "deep")]);
        let path = "/v".to_owned() + &"/x".repeat(MAX_SEGMENTS - 1);
        assert_eq!(found(get(&r, &path)), ("deep", p(&[("p", "v")])));
    }

    // -- templates ---------------------------------------------------------------

    #[test]
    fn same_shape_twice_is_a_duplicate() {
        let mut b = RouterBuilder::new();
        b.insert(Method::GET, "/p/{a}", 1).unwrap();
        b.insert(Method::POST, "/p/{b}", 2).unwrap();
        b.insert(Method::GET, "/f/{a}.{b}", 3).unwrap();
        let err = b.insert(Method::GET, "/p/{b}", 4).unwrap_err();
        assert_eq!(
            err,
            RouteError::Duplicate {
                method: Method::GET,
                template: "/p/{b}".into(),
                existing: "/p/{a}".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "route `GET /p/{b}` duplicates route `GET /p/{a}`"
        );
        assert!(matches!(
            b.insert(Method::GET, "/f/{x}.{y}", 5),
            Err(RouteError::Duplicate { .. })
        ));
        // A different pattern shape or a trailing slash is another path.
        b.insert(Method::GET, "/f/{x}-{y}", 6).unwrap();
        b.insert(Method::GET, "/p/{a}/", 7).unwrap();
        let r = b.build();
        assert_eq!(found(r.lookup(&Method::GET, "/p/1")).0, 1);
    }

    #[test]
    fn bad_templates_are_rejected_with_the_template_named() {
        let cases: &[(&str, &str)] = &[
            ("pets", "path template `pets` must start with `/`"),
            ("", "path template `` must start with `/`"),
            (
                "/a//b",
                "path template `/a//b` has an empty segment before its end (`//`)",
            ),
            (
                "//",
                "path template `//` has an empty segment before its end (`//`)",
            ),
            (
                "/a/../b",
                "path template `/a/../b` has a dot segment `..`, which no request can match",
            ),
            (
                "/a/{id",
                "path template `/a/{id` has an unbalanced `{` or `}` in segment `{id`",
            ),
            (
                "/a/id}",
                "path template `/a/id}` has an unbalanced `{` or `}` in segment `id}`",
            ),
            (
                "/a/}{",
                "path template `/a/}{` has an unbalanced `{` or `}` in segment `}{`",
            ),
            (
                "/a/{{id}}",
                "path template `/a/{{id}}` has an unbalanced `{` or `}` in segment `{{id}}`",
            ),
            (
                "/a/{}",
                "path template `/a/{}` has an empty parameter name in segment `{}`",
            ),
            (
                "/a/x{}y",
                "path template `/a/x{}y` has an empty parameter name in segment `x{}y`",
            ),
            (
                "/a/{x}{y}",
                "path template `/a/{x}{y}` has two parameters with nothing between them in segment `{x}{y}`",
            ),
            (
                "/a/{id}/b/{id}",
                "path template `/a/{id}/b/{id}` uses parameter `id` twice",
            ),
            (
                "/a/{n}.{n}",
                "path template `/a/{n}.{n}` uses parameter `n` twice",
            ),
            // Escaped dot segments: requests with them are refused before
            // routing, so such a route could never match.
            (
                "/a/%2e%2E/b",
                "path template `/a/%2e%2E/b` has a dot segment `%2e%2E`, which no request can match",
            ),
            (
                "/a/%2E",
                "path template `/a/%2E` has a dot segment `%2E`, which no request can match",
            ),
        ];
        // The same rule, callable without building a router (bundle validation).
        assert!(matches!(
            check_template("/v1/../admin"),
            Err(RouteError::DotSegment { .. })
        ));
        assert_eq!(check_template("/v1/files/{name}.{ext}"), Ok(()));
        for (template, message) in cases {
            assert_eq!(insert_err(template).to_string(), *message);
        }
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert!(matches!(
            insert_err(&deep),
            RouteError::TooManySegments { count, .. } if count == MAX_SEGMENTS + 1
        ));
    }

    // -- scale ---------------------------------------------------------------------

    /// `apis` APIs with five operations each: list, create, get, replace, delete.
    fn petstores(apis: usize) -> Router<(usize, usize)> {
        let mut b = RouterBuilder::new();
        for api in 0..apis {
            let items = format!("/api{api}/v1/items");
            let item = format!("/api{api}/v1/items/{{itemId}}");
            b.insert(Method::GET, &items, (api, 0)).unwrap();
            b.insert(Method::POST, &items, (api, 1)).unwrap();
            b.insert(Method::GET, &item, (api, 2)).unwrap();
            b.insert(Method::PUT, &item, (api, 3)).unwrap();
            b.insert(Method::DELETE, &item, (api, 4)).unwrap();
        }
        b.build()
    }

    #[test]
    fn literal_siblings_are_found_by_length_then_bytes() {
        // Siblings sharing lengths and prefixes, inserted out of order: every one
        // is found, and a segment between them (in the search's order) is not.
        let siblings = ["b", "ab", "a", "abc", "ba", "zz", "abd", "bb", "%", "aaaa"];
        let mut b = RouterBuilder::new();
        for (i, lit) in siblings.iter().enumerate() {
            b.insert(Method::GET, &format!("/{lit}/x"), i).unwrap();
        }
        let r = b.build();
        for (i, lit) in siblings.iter().enumerate() {
            let path = format!("/{}/x", lit.replace('%', "%25"));
            assert_eq!(found(r.lookup(&Method::GET, &path)).0, i, "{path}");
        }
        for miss in ["c", "aa", "abb", "abe", "bc", "aaa", "aaaaa", "zz0", "B"] {
            let path = format!("/{miss}/x");
            assert!(
                matches!(r.lookup(&Method::GET, &path), Lookup::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn five_thousand_routes_are_all_found() {
        let r = petstores(1_000);
        let ops = [
            Method::GET,
            Method::POST,
            Method::GET,
            Method::PUT,
            Method::DELETE,
        ];
        for api in 0..1_000 {
            for (op, method) in ops.iter().enumerate() {
                let id = format!("item-{api}-{op}");
                let path = if op < 2 {
                    format!("/api{api}/v1/items")
                } else {
                    format!("/api{api}/v1/items/{id}")
                };
                let (value, params) = found(r.lookup(method, &path));
                assert_eq!(value, (api, op), "{method} {path}");
                if op < 2 {
                    assert!(params.is_empty());
                } else {
                    assert_eq!(params, p(&[("itemId", &id)]));
                }
            }
            let item = format!("/api{api}/v1/items/x");
            assert_eq!(
                allow(r.lookup(&Method::PATCH, &item)),
                "DELETE, GET, HEAD, PUT"
            );
        }
        assert!(matches!(
            r.lookup(&Method::GET, "/api1000/v1/items"),
            Lookup::NotFound
        ));
    }

    #[test]
    fn lookup_cost_does_not_grow_with_the_number_of_routes() {
        let small = petstores(2); // 10 routes
        let large = petstores(2_000); // 10,000 routes
        for path in [
            "/api1/v1/items",
            "/api1/v1/items/42",
            "/api1/v1/items/42/extra",
            "/api1/v1/nothing",
            "/nothing",
        ] {
            let (s, l) = (
                small.lookup_cost(&Method::GET, path),
                large.lookup_cost(&Method::GET, path),
            );
            assert_eq!(s, l, "{path}: {s} steps with 10 routes, {l} with 10,000");
            assert!(s <= 5, "{path}: {s} steps");
        }
        assert_eq!(small.max_lookup_steps(), large.max_lookup_steps());
        assert_eq!(large.max_lookup_steps(), 5);
    }

    #[test]
    fn backtracking_is_bounded_by_the_static_worst_case() {
        // Every level offers a literal and a param, and only the last segment
        // decides: the classic shape for exponential backtracking.
        let mut b = RouterBuilder::new();
        let depth = 12;
        for mask in 0..(1u32 << depth) {
            let mut template = String::new();
            for level in 0..depth {
                if mask & (1 << level) != 0 {
                    template.push_str("/a");
                } else {
                    template.push_str(&format!("/{{p{level}}}"));
                }
            }
            template.push_str("/end");
            b.insert(Method::GET, &template, mask).unwrap();
        }
        let r = b.build();
        let miss = "/a".repeat(depth) + "/miss";
        let cost = r.lookup_cost(&Method::GET, &miss);
        assert!(
            cost <= r.max_lookup_steps(),
            "{cost} > {}",
            r.max_lookup_steps()
        );
        // Each node is entered at most once: the walk never exceeds the trie.
        assert!(cost < r.nodes.len());
        let hit = "/a".repeat(depth) + "/end";
        assert_eq!(found(r.lookup(&Method::GET, &hit)).0, (1 << depth) - 1);
    }

    #[test]
    fn router_is_shareable_across_threads() {
        fn assert_send_sync<S: Send + Sync>() {}
        assert_send_sync::<Router<String>>();
    }

    // -- properties ------------------------------------------------------------------

    /// A router with every kind of segment, for the no-panic properties.
    fn rich() -> Router<usize> {
        let mut b = RouterBuilder::new();
        let templates = [
            "/",
            "/a",
            "/a/",
            "/a/{x}",
            "/a/{x}/b",
            "/a/b/c",
            "/{x}.{y}",
            "/v{v}/{rest}",
            "/f/{n}-{m}.json",
            "/%/{p}",
            "/é/{q}",
        ];
        for (i, t) in templates.iter().enumerate() {
            b.insert(Method::GET, t, i).unwrap();
            b.insert(Method::from_bytes(b"X-EXT").unwrap(), t, i + 100)
                .unwrap();
        }
        b.build()
    }

    fn check_invariants(r: &Router<usize>, method: &Method, path: &str) {
        let cost = r.lookup_cost(method, path);
        assert!(cost <= r.max_lookup_steps());
        if let Lookup::Found(m) = r.lookup(method, path) {
            for (name, value) in m.params.iter() {
                assert!(!name.is_empty());
                assert!(!value.is_empty());
            }
        }
    }

    fn method_token() -> impl Strategy<Value = Method> {
        "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}".prop_map(|t| Method::from_bytes(t.as_bytes()).unwrap())
    }

    const MINIMAL: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'/').add(b'?').add(b'#');

    #[derive(Debug, Clone)]
    enum Seg {
        Literal(String),
        Param(String),
        /// `{a}.{b}`
        Dotted(String, String),
        /// `v{a}`
        Versioned(String),
    }

    fn not_dots(s: &String) -> bool {
        s != "." && s != ".."
    }

    fn seg() -> impl Strategy<Value = Seg> {
        let pattern_value = "[a-zA-Z0-9_~é ]{1,6}";
        prop_oneof![
            "[a-z0-9_.~é%:@ ]{1,6}"
                .prop_filter("dot segment", not_dots)
                .prop_map(Seg::Literal),
            any::<String>()
                .prop_filter("empty or dot", |s| !s.is_empty() && not_dots(s))
                .prop_map(Seg::Param),
            (pattern_value, pattern_value).prop_map(|(a, b)| Seg::Dotted(a, b)),
            pattern_value.prop_map(Seg::Versioned),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(path in any::<String>(), method in method_token()) {
            let r = rich();
            check_invariants(&r, &method, &path);
            check_invariants(&r, &method, &format!("/{path}"));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = rich();
            let lossy = String::from_utf8_lossy(&bytes);
            check_invariants(&r, &Method::GET, &lossy);
            let encoded: String = percent_encoding::percent_encode(&bytes, NON_ALPHANUMERIC).collect();
            check_invariants(&r, &Method::GET, &format!("/{encoded}"));
            check_invariants(&r, &Method::GET, &format!("/a/{encoded}/b"));
        }

        #[test]
        fn path_shaped_strings_never_panic(
            path in "(/[a-z.%0-9A-F{}é]{0,4}){0,8}/?",
            method in method_token(),
        ) {
            check_invariants(&rich(), &method, &path);
        }

        #[test]
        fn arbitrary_templates_never_panic(template in "(/[a-z{}.]{0,4}){0,5}/?|\\PC{0,12}") {
            let mut b = RouterBuilder::new();
            let _ = b.insert(Method::GET, &template, ());
            let _ = b.insert(Method::GET, &template, ());
            let r = b.build();
            let _ = r.lookup(&Method::GET, &template);
        }

        #[test]
        fn a_path_built_from_a_template_finds_it_with_its_values(
            segs in proptest::collection::vec(seg(), 1..6),
            trailing_slash in any::<bool>(),
            encode_everything in any::<bool>(),
        ) {
            let set = if encode_everything { NON_ALPHANUMERIC } else { MINIMAL };
            let enc = |s: &str| utf8_percent_encode(s, set).to_string();
            let (mut template, mut path, mut want) = (String::new(), String::new(), Vec::new());
            let mut n = 0;
            let mut name = || { n += 1; format!("p{n}") };
            for s in &segs {
                template.push('/');
                path.push('/');
                match s {
                    Seg::Literal(l) => {
                        template.push_str(l);
                        path.push_str(&enc(l));
                    }
                    Seg::Param(v) => {
                        let a = name();
                        template.push_str(&format!("{{{a}}}"));
                        path.push_str(&enc(v));
                        want.push((a, v.clone()));
                    }
                    Seg::Dotted(x, y) => {
                        let (a, b) = (name(), name());
                        template.push_str(&format!("{{{a}}}.{{{b}}}"));
                        path.push_str(&format!("{}.{}", enc(x), enc(y)));
                        want.push((a, x.clone()));
                        want.push((b, y.clone()));
                    }
                    Seg::Versioned(x) => {
                        let a = name();
                        template.push_str(&format!("v{{{a}}}"));
                        path.push_str(&format!("v{}", enc(x)));
                        want.push((a, x.clone()));
                    }
                }
            }
            if trailing_slash {
                template.push('/');
                path.push('/');
            }
            let mut b = RouterBuilder::new();
            b.insert(Method::GET, &template, "get").unwrap();
            b.insert(Method::POST, &template, "post").unwrap();
            // Decoys that must never steal the match.
            // Generated templates have at most six segments; these have seven and eight.
            b.insert(Method::GET, "/_decoy/x/x/x/x/x/x/x", "decoy").unwrap();
            b.insert(Method::GET, "/{d1}/{d2}/{d3}/{d4}/{d5}/{d6}/{d7}", "deep").unwrap();
            let r = b.build();
            let (value, params) = found(r.lookup(&Method::GET, &path));
            prop_assert_eq!(value, "get", "template {} path {}", &template, &path);
            prop_assert_eq!(params, want);
            prop_assert_eq!(found(r.lookup(&Method::POST, &path)).0, "post");
            prop_assert_eq!(found(r.lookup(&Method::HEAD, &path)).0, "get");
            prop_assert_eq!(allow(r.lookup(&Method::PUT, &path)), "GET, HEAD, POST");
        }
    }
}
