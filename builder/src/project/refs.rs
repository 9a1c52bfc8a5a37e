//! `$ref` resolution across the files of one project.
//!
//! A spec may point into itself (`#/components/parameters/Id`) or at other files
//! (`schemas/pet.yaml`, `common.yaml#/Pet`), always relative to the referring file.
//! [`Store::load_closure`] reads the entry file and every file reachable through
//! `$ref`s, checks that each reference lands on something, and reports chains of
//! references that loop back on themselves. Afterwards the store is read-only and
//! [`Store::deref`] follows references for the parts of a spec mgw uses.
//!
//! OpenAPI 3.1 schemas are JSON Schema 2020-12 resources: a `$id` changes the base
//! a `$ref` inside it is resolved against, and a `$ref` may name a resource by its
//! `$id` (`/api/v31/components/schemas/tag`) or a `$anchor` inside it
//! (`…/petdetails#pet_details_id`). Each file's `$id`s and `$anchor`s are indexed
//! when it is read, and every reference is first looked up there
//! ([`Store::locate`]), then read as a project-relative file path.
//!
//! Never: fetch anything over the network (remote references are errors), read a
//! file outside the project directory (`..` escapes and symlinks out are errors),
//! loop on a cycle, or recurse without bound (the walk uses an explicit worklist and
//! the YAML layer caps nesting).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::error::{Diagnostic, Origin, list, suggestion};
use super::yaml::{self, Kind, Mark, Node, parse_pointer, pointer_string, resolve_pointer};

/// Largest file read as part of a project.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Where file text comes from: the project directory, or a map (tests, fuzzing).
#[derive(Debug, Clone)]
pub enum Source {
    Dir(PathBuf),
    Memory(BTreeMap<String, String>),
}

/// A location inside a file: `file#pointer`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub file: String,
    pub pointer: Vec<String>,
}

impl Loc {
    pub fn new(file: impl Into<String>, pointer: Vec<String>) -> Loc {
        Loc {
            file: file.into(),
            pointer,
        }
    }

    /// `#/paths/~1pets/get`, the key path used in diagnostics.
    pub fn key_path(&self) -> String {
        format!("#{}", pointer_string(&self.pointer))
    }

    pub fn child(&self, seg: impl Into<String>) -> Loc {
        let mut l = self.clone();
        l.pointer.push(seg.into());
        l
    }

    pub fn origin(&self, mark: Mark) -> Origin {
        Origin::new(self.file.clone(), self.key_path(), mark)
    }
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.file, pointer_string(&self.pointer))
    }
}

/// A node reached through zero or more `$ref`s, with its location.
#[derive(Debug, Clone)]
pub struct Target<'s> {
    pub file: &'s str,
    pub node: &'s Node,
    pub pointer: Vec<String>,
}

impl Target<'_> {
    pub fn loc(&self) -> Loc {
        Loc::new(self.file, self.pointer.clone())
    }
}

/// The parsed files of a project, loaded on demand by `$ref`.
#[derive(Debug)]
pub struct Store {
    source: Source,
    /// Canonical project root, for the symlink check.
    canonical_root: Option<PathBuf>,
    docs: BTreeMap<String, Node>,
    /// Files that failed to load (already reported).
    failed: BTreeSet<String>,
    /// JSON Schema resources: `$id` resolved to an absolute URI (no fragment) →
    /// where the schema holding it is.
    ids: BTreeMap<String, Loc>,
    /// `$anchor`s: (resource URI, anchor name) → where the schema holding it is.
    anchors: BTreeMap<(String, String), Loc>,
}

/// The base URI of a project file, for `$id` resolution. Only a namespace for
/// matching identifiers: nothing is ever fetched.
fn file_uri(file: &str) -> Option<url::Url> {
    url::Url::parse("file:///").ok()?.join(file).ok()
}

/// `uri` without its fragment, as the key of [`Store::ids`].
fn resource_key(uri: &url::Url) -> String {
    let mut u = uri.clone();
    u.set_fragment(None);
    u.to_string()
}

/// One `$ref` found in a document.
#[derive(Debug, Clone)]
struct RefSite {
    /// Location of the `$ref` value.
    at: Loc,
    raw: String,
    mark: Mark,
}

/// Keys whose value is a mapping of user-chosen names (not keywords).
const NAME_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "schemas",
    "responses",
    "parameters",
    "securitySchemes",
    "securityDefinitions",
    "requestBodies",
    "headers",
    "links",
    "callbacks",
    "pathItems",
    "content",
    "encoding",
    "variables",
    "paths",
    "webhooks",
    "dependentSchemas",
];

/// Keys whose value is literal data, never references.
const DATA_KEYS: &[&str] = &["example", "enum", "const", "default"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Keys are keywords (`$ref`, `properties`, ...).
    Keywords,
    /// Keys are names; values are objects.
    Names,
    /// A map of Example objects: only their `$ref` matters.
    Examples,
}

impl Source {
    /// Reads a project-relative file as UTF-8 text. `canonical_root` enables the
    /// check that symlinks do not lead out of the project.
    pub fn read_text(&self, file: &str, canonical_root: Option<&Path>) -> Result<String, String> {
        match self {
            Source::Memory(files) => files
                .get(file)
                .cloned()
                .ok_or_else(|| format!("file `{file}` does not exist")),
            Source::Dir(root) => {
                let path = root.join(file);
                let meta = match std::fs::metadata(&path) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(format!(
                            "file `{file}` does not exist in the project directory"
                        ));
                    }
                    Err(e) => return Err(format!("cannot read `{file}`: {e}")),
                };
                if !meta.is_file() {
                    return Err(format!("`{file}` is not a file"));
                }
                if meta.len() > MAX_FILE_BYTES {
                    return Err(format!(
                        "`{file}` is larger than {} MiB",
                        MAX_FILE_BYTES >> 20
                    ));
                }
                if let (Some(croot), Ok(real)) = (canonical_root, path.canonicalize()) {
                    if !real.starts_with(croot) {
                        return Err(format!(
                            "`{file}` is a link to a file outside the project directory; copy the file into the project"
                        ));
                    }
                }
                let bytes =
                    std::fs::read(&path).map_err(|e| format!("cannot read `{file}`: {e}"))?;
                String::from_utf8(bytes).map_err(|_| format!("`{file}` is not UTF-8 text"))
            }
        }
    }
}

impl Store {
    pub fn new(source: Source) -> Store {
        let canonical_root = match &source {
            Source::Dir(d) => d.canonicalize().ok(),
            Source::Memory(_) => None,
        };
        Store {
            source,
            canonical_root,
            docs: BTreeMap::new(),
            failed: BTreeSet::new(),
            ids: BTreeMap::new(),
            anchors: BTreeMap::new(),
        }
    }

    /// Records the `$id`s and `$anchor`s of a freshly read file.
    fn index_ids(&mut self, file: &str) {
        let Some(doc) = self.docs.get(file) else {
            return;
        };
        let Some(base) = file_uri(file) else {
            return;
        };
        let mut stack: Vec<(&Node, Vec<String>, url::Url)> = vec![(doc, Vec::new(), base)];
        while let Some((node, ptr, mut base)) = stack.pop() {
            match &node.kind {
                Kind::Scalar(_) => {}
                Kind::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let mut p = ptr.clone();
                        p.push(i.to_string());
                        stack.push((item, p, base.clone()));
                    }
                }
                Kind::Map(entries) => {
                    if let Some(id) = node.get("$id").and_then(Node::as_str) {
                        if let Ok(u) = base.join(id) {
                            base = u;
                            self.ids
                                .entry(resource_key(&base))
                                .or_insert_with(|| Loc::new(file, ptr.clone()));
                        }
                    }
                    if let Some(anchor) = node.get("$anchor").and_then(Node::as_str) {
                        self.anchors
                            .entry((resource_key(&base), anchor.to_owned()))
                            .or_insert_with(|| Loc::new(file, ptr.clone()));
                    }
                    for e in entries {
                        let k = e.key.as_str();
                        if k.starts_with("x-") || DATA_KEYS.contains(&k) || k == "examples" {
                            continue;
                        }
                        let mut p = ptr.clone();
                        p.push(e.key.clone());
                        stack.push((&e.value, p, base.clone()));
                    }
                }
            }
        }
    }

    /// The base URI a `$ref` at `at` is resolved against: the file, changed by
    /// every `$id` on the way down to it.
    fn base_uri(&self, at: &Loc) -> Option<url::Url> {
        let mut base = file_uri(&at.file)?;
        let mut node = self.docs.get(&at.file)?;
        for seg in &at.pointer {
            if let Some(id) = node.get("$id").and_then(Node::as_str) {
                base = base.join(id).ok()?;
            }
            match node.child(seg) {
                Some(n) => node = n,
                None => break,
            }
        }
        Some(base)
    }

    /// Where the `$ref` `raw`, written at `at` (the `$ref` key's location), points:
    /// a `$id`/`$anchor` of a loaded file if one matches, else a project file and
    /// JSON pointer ([`parse_ref`]).
    pub fn locate(&self, at: &Loc, raw: &str) -> Result<Loc, String> {
        if !self.ids.is_empty() || !self.anchors.is_empty() {
            if let Some(target) = self.base_uri(at).and_then(|b| b.join(raw).ok()) {
                let key = resource_key(&target);
                let frag = target
                    .fragment()
                    .map(|f| {
                        percent_encoding::percent_decode_str(f)
                            .decode_utf8_lossy()
                            .into_owned()
                    })
                    .unwrap_or_default();
                if frag.is_empty() || frag.starts_with('/') {
                    if let Some(resource) = self.ids.get(&key) {
                        let mut loc = resource.clone();
                        loc.pointer.extend(
                            parse_pointer(&frag).map_err(|e| format!("`$ref` `{raw}`: {e}"))?,
                        );
                        return Ok(loc);
                    }
                } else if let Some(loc) = self.anchors.get(&(key.clone(), frag.clone())) {
                    return Ok(loc.clone());
                } else if let Some(resource) = self.ids.get(&key) {
                    return Err(format!(
                        "`$ref` `{raw}`: no `$anchor: {frag}` in the schema resource it names (`{resource}`)"
                    ));
                }
            }
        }
        parse_ref(&at.file, raw)
    }

    /// A loaded document.
    pub fn doc(&self, file: &str) -> Option<&Node> {
        self.docs.get(file)
    }

    /// The store's own copy of a file name (for borrowing with the store's lifetime).
    pub fn file_name(&self, file: &str) -> Option<&str> {
        self.docs.get_key_value(file).map(|(k, _)| k.as_str())
    }

    /// Every file read so far, sorted.
    pub fn files(&self) -> Vec<String> {
        self.docs.keys().cloned().collect()
    }

    /// Reads and parses one file (once); `referrer` says who asked, for messages.
    fn load_file(&mut self, file: &str, referrer: Option<&Origin>) -> Result<(), Diagnostic> {
        if self.docs.contains_key(file) {
            return Ok(());
        }
        let text = self
            .source
            .read_text(file, self.canonical_root.as_deref())
            .map_err(|msg| match referrer {
                Some(o) => Diagnostic::new(o, msg),
                None => Diagnostic::new(&Origin::file(file), msg),
            })?;
        let json_hint = file.ends_with(".json");
        let node = yaml::parse(&text, json_hint)
            .map_err(|e| Diagnostic::new(&Origin::new(file, "", e.mark), e.message))?;
        self.docs.insert(file.to_owned(), node);
        self.index_ids(file);
        Ok(())
    }

    /// Loads `entry` and every file it reaches through `$ref`, checking that every
    /// reference resolves and that no chain of references loops. Returns the
    /// problems found (empty when all is well).
    /// `referrer` is where the entry file was named (`mgw.yaml`'s `apis[i].spec`).
    pub fn load_closure(&mut self, entry: &str, referrer: Option<&Origin>) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        if let Err(d) = self.load_file(entry, referrer) {
            self.failed.insert(entry.to_owned());
            diags.push(d);
            return diags;
        }
        let mut walked: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        let mut queue = vec![Loc::new(entry, Vec::new())];
        let mut edges: BTreeMap<Loc, (Loc, RefSite)> = BTreeMap::new();
        while let Some(loc) = queue.pop() {
            let done = walked.entry(loc.file.clone()).or_default();
            if done.iter().any(|p| loc.pointer.starts_with(p)) {
                continue;
            }
            done.push(loc.pointer.clone());
            let mut sites = Vec::new();
            {
                let Some(doc) = self.docs.get(&loc.file) else {
                    continue;
                };
                let Ok(node) = resolve_pointer(doc, &loc.pointer) else {
                    continue;
                };
                let mut ptr = loc.pointer.clone();
                collect_refs(
                    node,
                    &loc.file,
                    &mut ptr,
                    Ctx::Keywords,
                    &mut sites,
                    &mut diags,
                );
            }
            for site in sites {
                match self.resolve_site(&site) {
                    Ok(target) => {
                        // The `$ref`'s owner is the mapping that holds it.
                        let mut owner = site.at.clone();
                        owner.pointer.pop();
                        edges.insert(owner, (target.clone(), site));
                        queue.push(target);
                    }
                    Err(d) => diags.push(d),
                }
            }
        }
        diags.extend(find_cycles(&edges));
        diags
    }

    /// `target` with the `$ref`s its pointer passes through followed: tools
    /// write pointers such as `#/paths/~1a/get/responses/200/content/application~1json/schema/allOf/0`
    /// where `schema` is itself a `$ref` (PagerDuty's document does), and
    /// resolvers such as json-schema-ref-parser follow them. Unchanged when the
    /// pointer resolves as written or the reference on the way cannot be followed.
    pub fn through_refs(&self, target: Loc) -> Loc {
        let mut cur = target;
        for _ in 0..16 {
            let Some(doc) = self.docs.get(&cur.file) else {
                return cur;
            };
            let Err(miss) = resolve_pointer(doc, &cur.pointer) else {
                return cur;
            };
            let at = Loc::new(cur.file.clone(), cur.pointer[..miss.matched].to_vec());
            let Some(raw) = resolve_pointer(doc, &at.pointer).ok().and_then(ref_of) else {
                return cur;
            };
            let Ok(mut next) = self.locate(&at.child("$ref"), raw) else {
                return cur;
            };
            next.pointer
                .extend(cur.pointer[miss.matched..].iter().cloned());
            cur = next;
        }
        cur
    }

    /// Turns one `$ref` into a location, loading its file; checks the target exists.
    fn resolve_site(&mut self, site: &RefSite) -> Result<Loc, Diagnostic> {
        let origin = site.at.origin(site.mark);
        let mut target = self
            .locate(&site.at, &site.raw)
            .map_err(|m| Diagnostic::new(&origin, m))?;
        // A pointer that passes through `$ref`s may lead into files nothing
        // else loads: each is loaded and the pointer followed on (bounded,
        // as `through_refs` is).
        for _ in 0..16 {
            self.load_target(site, &origin, &target.file)?;
            target = self.through_refs(target);
            if self.docs.contains_key(&target.file) {
                break;
            }
        }
        let Some(doc) = self.docs.get(&target.file) else {
            return Err(Diagnostic::new(
                &origin,
                format!("`$ref` `{}`: too many references on the way", site.raw),
            ));
        };
        if let Err(miss) = resolve_pointer(doc, &target.pointer) {
            let parent = pointer_string(&target.pointer[..miss.matched]);
            let missing = &target.pointer[miss.matched];
            let known: Vec<&str> = miss.available.iter().map(String::as_str).collect();
            let msg = format!(
                "`$ref` `{}` points to nothing: `{}#{}` has no `{}`{}; it has {}",
                site.raw,
                target.file,
                if parent.is_empty() {
                    "/".into()
                } else {
                    parent
                },
                missing,
                suggestion(missing, known.iter().copied()),
                list(known.iter(), 15)
            );
            return Err(Diagnostic::new(&origin, msg));
        }
        Ok(target)
    }

    /// Loads the file a reference at `site` leads into; its error, if any,
    /// is reported once and named by every later reference into it.
    fn load_target(
        &mut self,
        site: &RefSite,
        origin: &Origin,
        file: &str,
    ) -> Result<(), Diagnostic> {
        if self.failed.contains(file) {
            return Err(Diagnostic::new(
                origin,
                format!(
                    "`$ref` `{}` points into `{file}`, which could not be read (see its own error)",
                    site.raw
                ),
            ));
        }
        if let Err(mut d) = self.load_file(file, Some(origin)) {
            self.failed.insert(file.to_owned());
            if d.file == site.at.file && d.key_path == origin.key_path {
                d.message = format!(
                    "`$ref` `{}`: {}{}",
                    site.raw,
                    d.message,
                    legacy_hint(&site.raw)
                );
            }
            return Err(d);
        }
        Ok(())
    }

    /// Follows `$ref`s from `node` (found at `file#pointer`) to a node that is not
    /// a reference. Siblings of `$ref` are not merged here.
    pub fn deref<'s>(
        &'s self,
        file: &'s str,
        pointer: Vec<String>,
        node: &'s Node,
    ) -> Result<Target<'s>, Diagnostic> {
        let mut cur = Target {
            file,
            node,
            pointer,
        };
        let mut seen = BTreeSet::new();
        while let Some(raw) = ref_of(cur.node) {
            let here = cur.loc();
            let mark = cur
                .node
                .entry("$ref")
                .map(|e| e.value.mark)
                .unwrap_or(cur.node.mark);
            let origin = here.child("$ref").origin(mark);
            if !seen.insert(here.clone()) {
                return Err(Diagnostic::new(&origin, "`$ref` cycle"));
            }
            let target = self
                .locate(&here.child("$ref"), raw)
                .map(|t| self.through_refs(t))
                .map_err(|m| Diagnostic::new(&origin, m))?;
            let Some((file_key, doc)) = self.docs.get_key_value(&target.file) else {
                return Err(Diagnostic::new(
                    &origin,
                    format!("`$ref` `{raw}`: file `{}` was not loaded", target.file),
                ));
            };
            let node = resolve_pointer(doc, &target.pointer).map_err(|_| {
                Diagnostic::new(&origin, format!("`$ref` `{raw}` points to nothing"))
            })?;
            cur = Target {
                file: file_key,
                node,
                pointer: target.pointer,
            };
        }
        Ok(cur)
    }
}

/// The `$ref` string of a Reference Object, if `node` is one.
pub fn ref_of(node: &Node) -> Option<&str> {
    node.get("$ref").and_then(Node::as_str)
}

fn legacy_hint(raw: &str) -> String {
    if !raw.contains(['/', '.', '#']) {
        format!(
            " (a local definition is written `#/definitions/{raw}` or `#/components/schemas/{raw}`)"
        )
    } else {
        String::new()
    }
}

/// Finds every reference inside `node`, skipping literal data and vendor
/// extensions. `ptr` is the node's pointer and is restored on return.
fn collect_refs(
    node: &Node,
    file: &str,
    ptr: &mut Vec<String>,
    ctx: Ctx,
    out: &mut Vec<RefSite>,
    diags: &mut Vec<Diagnostic>,
) {
    match &node.kind {
        Kind::Scalar(_) => {}
        Kind::Seq(items) => {
            if ctx == Ctx::Keywords {
                for (i, item) in items.iter().enumerate() {
                    ptr.push(i.to_string());
                    collect_refs(item, file, ptr, Ctx::Keywords, out, diags);
                    ptr.pop();
                }
            }
        }
        Kind::Map(entries) => {
            // A map of names that is itself a reference (`properties: {$ref:
            // 'attributes.yml#/ids'}`, as DigitalOcean writes): a JSON Reference
            // stands for the whole map. A `$ref` whose value is not a string is a
            // name like any other.
            if ctx == Ctx::Names {
                if let Some(raw) = ref_of(node) {
                    let mark = node.entry("$ref").map_or(node.mark, |x| x.value.mark);
                    let mut at = Loc::new(file, ptr.clone());
                    at.pointer.push("$ref".into());
                    out.push(RefSite {
                        at,
                        raw: raw.to_owned(),
                        mark,
                    });
                    return;
                }
            }
            for e in entries {
                ptr.push(e.key.clone());
                match ctx {
                    Ctx::Names => {
                        collect_refs(&e.value, file, ptr, Ctx::Keywords, out, diags);
                    }
                    Ctx::Examples => {
                        if let Some(raw) = ref_of(&e.value) {
                            let mark = e
                                .value
                                .entry("$ref")
                                .map(|x| x.value.mark)
                                .unwrap_or(e.value.mark);
                            let mut at = Loc::new(file, ptr.clone());
                            at.pointer.push("$ref".into());
                            out.push(RefSite {
                                at,
                                raw: raw.to_owned(),
                                mark,
                            });
                        }
                    }
                    Ctx::Keywords => {
                        let k = e.key.as_str();
                        if k == "$ref" {
                            match e.value.as_str() {
                                Some(raw) => out.push(RefSite {
                                    at: Loc::new(file, ptr.clone()),
                                    raw: raw.to_owned(),
                                    mark: e.value.mark,
                                }),
                                None => diags.push(Diagnostic::new(
                                    &Loc::new(file, ptr.clone()).origin(e.value.mark),
                                    format!("`$ref` must be a string such as `#/components/schemas/Pet`, found {}", e.value.describe()),
                                )),
                            }
                        } else if k.starts_with("x-") || DATA_KEYS.contains(&k) {
                            // Vendor data and literal values are not walked.
                        } else if k == "examples" {
                            if e.value.as_map().is_some() {
                                collect_refs(&e.value, file, ptr, Ctx::Examples, out, diags);
                            }
                        } else if NAME_MAPS.contains(&k) && e.value.as_map().is_some() {
                            collect_refs(&e.value, file, ptr, Ctx::Names, out, diags);
                        } else {
                            collect_refs(&e.value, file, ptr, Ctx::Keywords, out, diags);
                        }
                    }
                }
                ptr.pop();
            }
        }
    }
}

/// Reports each loop in the graph of "this reference object points at that
/// location" once.
fn find_cycles(edges: &BTreeMap<Loc, (Loc, RefSite)>) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut done: BTreeSet<Loc> = BTreeSet::new();
    for start in edges.keys() {
        if done.contains(start) {
            continue;
        }
        let mut path: Vec<Loc> = Vec::new();
        let mut cur = start.clone();
        loop {
            if done.contains(&cur) {
                break;
            }
            if let Some(pos) = path.iter().position(|l| *l == cur) {
                let cycle = &path[pos..];
                let site = &edges[&cycle[0]].1;
                let chain: Vec<String> = cycle
                    .iter()
                    .chain(std::iter::once(&cycle[0]))
                    .map(ToString::to_string)
                    .collect();
                diags.push(Diagnostic::new(
                    &site.at.origin(site.mark),
                    format!(
                        "`$ref` cycle: {}; a chain of references must end at a definition",
                        chain
                            .iter()
                            .map(|c| format!("`{c}`"))
                            .collect::<Vec<_>>()
                            .join(" → ")
                    ),
                ));
                break;
            }
            path.push(cur.clone());
            match edges.get(&cur) {
                Some((next, _)) => cur = next.clone(),
                None => break,
            }
        }
        done.extend(path);
    }
    diags
}

/// Parses a `$ref` written in `from_file` into a location in the project.
pub fn parse_ref(from_file: &str, raw: &str) -> Result<Loc, String> {
    let is_remote = raw.starts_with("//")
        || raw.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && !scheme.contains(['/', '#', '.'])
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-'))
        });
    if is_remote {
        return Err(format!(
            "`$ref` `{raw}` is a remote reference; mgw never fetches over the network, so download the file into the project and refer to it by a relative path"
        ));
    }
    let (file_part, fragment) = match raw.split_once('#') {
        Some((f, frag)) => (f, Some(frag)),
        None => (raw, None),
    };
    let file_part = percent_encoding::percent_decode_str(file_part)
        .decode_utf8()
        .map_err(|_| format!("`$ref` `{raw}` is not valid UTF-8 once decoded"))?;
    let file = if file_part.is_empty() {
        from_file.to_owned()
    } else {
        if file_part.starts_with('/') {
            return Err(format!(
                "`$ref` `{raw}` is an absolute path; write it relative to `{from_file}`"
            ));
        }
        let dir = match from_file.rfind('/') {
            Some(i) => &from_file[..i],
            None => "",
        };
        normalize_relative(dir, &file_part).map_err(|e| format!("`$ref` `{raw}`: {e}"))?
    };
    let pointer = match fragment {
        None | Some("") => Vec::new(),
        Some(frag) => {
            let frag = percent_encoding::percent_decode_str(frag)
                .decode_utf8()
                .map_err(|_| format!("`$ref` `{raw}` is not valid UTF-8 once decoded"))?;
            if !frag.starts_with('/') {
                return Err(format!(
                    "`$ref` `{raw}`: no `$anchor: {frag}` in the schema resource it names"
                ));
            }
            parse_pointer(&frag).map_err(|e| format!("`$ref` `{raw}`: {e}"))?
        }
    };
    Ok(Loc { file, pointer })
}

/// Joins `rel` onto the project-relative directory `dir`, resolving `.` and `..`
/// lexically; refuses absolute paths and paths that leave the project.
pub fn normalize_relative(dir: &str, rel: &str) -> Result<String, String> {
    if rel.starts_with('/') || rel.starts_with('\\') || Path::new(rel).is_absolute() {
        return Err(format!(
            "`{rel}` is an absolute path; write a path relative to the project directory"
        ));
    }
    if rel.contains('\\') {
        return Err(format!("`{rel}`: write paths with `/`, not `\\`"));
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("`{rel}` escapes the project directory"));
                }
            }
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(files: &[(&str, &str)]) -> Store {
        Store::new(Source::Memory(
            files
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ))
    }

    #[test]
    fn parses_refs_relative_to_the_referrer() {
        let l = parse_ref("apis/a.yaml", "#/components/schemas/Pet").unwrap();
        assert_eq!(l.file, "apis/a.yaml");
        assert_eq!(l.pointer, vec!["components", "schemas", "Pet"]);
        let l = parse_ref("apis/a.yaml", "./schemas/pet.yaml").unwrap();
        assert_eq!(l.file, "apis/schemas/pet.yaml");
        assert!(l.pointer.is_empty());
        let l = parse_ref("apis/a.yaml", "../common/x.yaml#/paths/~1pets%7Bid%7D").unwrap();
        assert_eq!(l.file, "common/x.yaml");
        assert_eq!(l.pointer, vec!["paths", "/pets{id}"]);
        assert!(
            parse_ref("a.yaml", "../x.yaml")
                .unwrap_err()
                .contains("escapes")
        );
        assert!(
            parse_ref("a.yaml", "http://x/y.yaml")
                .unwrap_err()
                .contains("remote")
        );
        assert!(
            parse_ref("a.yaml", "https://x/y.yaml#/a")
                .unwrap_err()
                .contains("remote")
        );
        assert!(
            parse_ref("a.yaml", "//x/y.yaml")
                .unwrap_err()
                .contains("remote")
        );
        assert!(
            parse_ref("a.yaml", "/etc/passwd")
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            parse_ref("a.yaml", "#anchor")
                .unwrap_err()
                .contains("no `$anchor: anchor`")
        );
    }

    #[test]
    fn dangling_refs_say_what_exists() {
        let mut s = mem(&[(
            "a.yaml",
            "components:\n  schemas:\n    Pet: {type: object}\nx:\n  $ref: '#/components/schemas/Pett'\n",
        )]);
        let d = s.load_closure("a.yaml", None);
        assert_eq!(d.len(), 1);
        let msg = d[0].to_string();
        assert!(msg.starts_with("a.yaml:5:9: `#/x/$ref`"), "{msg}");
        assert!(msg.contains("has no `Pett` (did you mean `Pet`?)"), "{msg}");
    }

    #[test]
    fn cycles_are_reported_once() {
        let mut s = mem(&[
            ("a.yaml", "x: {$ref: 'b.yaml#/y'}\nself: {$ref: '#/self'}\n"),
            ("b.yaml", "y: {$ref: 'a.yaml#/x'}\n"),
        ]);
        let d = s.load_closure("a.yaml", None);
        let msgs: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs.iter()
                .any(|m| m.contains("`a.yaml#/x` → `b.yaml#/y` → `a.yaml#/x`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("`a.yaml#/self` → `a.yaml#/self`")),
            "{msgs:?}"
        );
    }

    #[test]
    fn recursive_schemas_are_not_cycles() {
        let mut s = mem(&[(
            "a.yaml",
            "components:\n  schemas:\n    Tree:\n      properties:\n        children: {type: array, items: {$ref: '#/components/schemas/Tree'}}\n",
        )]);
        assert!(s.load_closure("a.yaml", None).is_empty());
    }

    /// Regression: a `properties` map given by reference was read as a
    /// property named `$ref`, and the file it names was never loaded.
    #[test]
    fn a_map_of_names_given_by_reference_is_loaded() {
        let mut s = mem(&[
            (
                "a.yaml",
                "schema:\n  properties: {$ref: 'attrs.yaml#/ids'}\n",
            ),
            ("attrs.yaml", "ids:\n  droplet_ids: {type: array}\n"),
        ]);
        assert!(s.load_closure("a.yaml", None).is_empty());
        assert!(s.doc("attrs.yaml").is_some());
    }

    /// Regression (found by `arbitrary_documents_as_a_spec_never_panic` in CI):
    /// a pointer that passes through a `$ref` into a file nothing else had
    /// loaded panicked. The file is loaded and the pointer followed; when the
    /// file is missing the reference gets that file's error.
    #[test]
    fn a_pointer_through_a_ref_into_another_file_loads_that_file() {
        let a = "components:\n  a: {$ref: 'b.yaml#/c'}\nx: {$ref: '#/components/a/d'}\n";
        let mut s = mem(&[("a.yaml", a), ("b.yaml", "c:\n  d: {type: string}\n")]);
        assert!(s.load_closure("a.yaml", None).is_empty());
        assert!(s.doc("b.yaml").is_some());

        let mut s = mem(&[("a.yaml", a), ("b.yaml", "c:\n  e: {type: string}\n")]);
        let d = s.load_closure("a.yaml", None);
        let msgs: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("`#/components/a/d` points to nothing: `b.yaml#/c` has no `d`")),
            "{msgs:?}"
        );

        let mut s = mem(&[("a.yaml", a)]);
        let d = s.load_closure("a.yaml", None);
        let msgs: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("a.yaml:3:11: `#/x/$ref`")
                    && m.contains("points into `b.yaml`")),
            "{msgs:?}"
        );
    }

    #[test]
    fn data_and_extensions_are_not_walked() {
        let mut s = mem(&[(
            "a.yaml",
            "example: {$ref: nowhere}\nx-thing: {$ref: nowhere}\nenum: [{$ref: nowhere}]\nproperties:\n  $ref: {type: string}\n",
        )]);
        assert!(s.load_closure("a.yaml", None).is_empty());
    }

    #[test]
    fn missing_files_and_bad_yaml_in_referenced_files() {
        let mut s = mem(&[
            (
                "a.yaml",
                "x: {$ref: 'b.yaml'}\ny: {$ref: 'c.yaml#/z'}\nz: {$ref: Pet}\n",
            ),
            ("c.yaml", "z: [1\n"),
        ]);
        let d = s.load_closure("a.yaml", None);
        let msgs: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert!(
            msgs.iter().any(|m| m.contains(
                "a.yaml:1:11: `#/x/$ref`: `$ref` `b.yaml`: file `b.yaml` does not exist"
            )),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("c.yaml:2:1: invalid YAML")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("`#/definitions/Pet`")),
            "{msgs:?}"
        );
    }

    #[test]
    fn deref_follows_chains_across_files() {
        let mut s = mem(&[
            ("a.yaml", "x: {$ref: 'sub/b.yaml#/y'}\n"),
            ("sub/b.yaml", "y: {$ref: '#/z'}\nz: {value: 1}\n"),
        ]);
        assert!(s.load_closure("a.yaml", None).is_empty());
        let doc = s.doc("a.yaml").unwrap();
        let t = s
            .deref("a.yaml", vec!["x".to_string()], doc.get("x").unwrap())
            .unwrap();
        assert_eq!(t.file, "sub/b.yaml");
        assert_eq!(t.pointer, ["z".to_string()]);
        assert_eq!(t.node.get("value").unwrap().as_text(), Some("1"));
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(
            normalize_relative("", "./apis/x.yaml").unwrap(),
            "apis/x.yaml"
        );
        assert_eq!(normalize_relative("apis", "../x.yaml").unwrap(), "x.yaml");
        assert!(normalize_relative("", "../x.yaml").is_err());
        assert!(normalize_relative("", "/x.yaml").is_err());
    }
}
