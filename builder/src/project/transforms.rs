//! Transforms as a project writes them: `apis[].transforms` in `mgw.yaml`
//! (parsed by the manifest straight into [`Transforms`], the bundle's wire
//! type) and `x-mgw-transforms` in a document (at the top for the API, on an
//! operation for it). The checks are `mgw_bundle`'s, run when the bundle is
//! validated; this module only reads the document form and says where each
//! value was written, so those problems point at the file and line.

use mgw_bundle::Transforms;

use super::error::{Diagnostic, Origin, Seg};
use super::extensions::Located;
use super::yaml::Node;

/// Reads `x-mgw-transforms`; a wrong shape names the key inside it.
pub fn from_extension(l: &Located<Node>) -> Result<Transforms, Diagnostic> {
    let json = l.value.to_json();
    serde_path_to_error::deserialize(&json).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        let message = if at == "." {
            format!("`x-mgw-transforms`: {inner}")
        } else {
            format!("`x-mgw-transforms.{at}`: {inner}")
        };
        Diagnostic::new(&l.origin, message)
    })
}

/// Every key inside a transforms block, relative to it (`request`, `headers`,
/// `set`, `X-Env` …), so each gets its own origin.
pub fn key_paths(t: &Transforms) -> Vec<Vec<Seg>> {
    let mut out = Vec::new();
    let value = serde_json::to_value(t).unwrap_or_default();
    walk(&value, &mut Vec::new(), &mut out);
    out
}

fn walk(v: &serde_json::Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    let children: Vec<(Seg, &serde_json::Value)> = match v {
        serde_json::Value::Object(m) => m.iter().map(|(k, v)| (Seg::Key(k.clone()), v)).collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (Seg::Index(i), v))
            .collect(),
        _ => return,
    };
    for (seg, child) in children {
        at.push(seg);
        out.push(at.clone());
        walk(child, at, out);
        at.pop();
    }
}

/// `segs` as the bundle check writes a key path suffix (`.request.headers.set.X-A`, `[0]`).
pub fn bundle_suffix(segs: &[Seg]) -> String {
    segs.iter()
        .map(|s| match s {
            Seg::Key(k) => format!(".{k}"),
            Seg::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// The origin of a key inside a document's `x-mgw-transforms`: its own line and
/// column, and the extension's JSON pointer with the key appended.
pub fn spec_origin(l: &Located<Node>, segs: &[Seg]) -> Origin {
    let mut o = l.origin.clone();
    let mut node = Some(&l.value);
    let mut mark = l.value.mark;
    for s in segs {
        let seg = match s {
            Seg::Key(k) => k.clone(),
            Seg::Index(i) => i.to_string(),
        };
        if let Some(n) = node {
            if let Some(m) = n.child_key_mark(&seg) {
                mark = m;
            }
            node = n.child(&seg);
        }
        o.key_path.push('/');
        o.key_path
            .push_str(&seg.replace('~', "~0").replace('/', "~1"));
    }
    if mark.is_known() {
        o.line = Some(mark.line);
        o.column = Some(mark.column);
    }
    o
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::project::compile::{Compiled, compile};
    use crate::project::{Source, load_from};

    fn build(manifest: &str, spec: &str) -> Result<Compiled, String> {
        let files = BTreeMap::from([
            ("mgw.yaml".to_owned(), manifest.to_owned()),
            ("api.yaml".to_owned(), spec.to_owned()),
        ]);
        let project = load_from(Source::Memory(files)).map_err(|e| e.to_string())?;
        compile(&project).map_err(|e| e.to_string())
    }

    const MANIFEST: &str = "name: pets\nversion: 1.0.0\nupstreams:\n  pets: {urls: ['http://127.0.0.1:8081']}\napis:\n  - name: pets\n    spec: api.yaml\n    upstream: pets\n";
    const SPEC: &str = "openapi: 3.0.3\ninfo: {title: Pets, version: 2.0.0}\nservers: [{url: /v1}]\npaths:\n  /pets/{id}:\n    get:\n      operationId: getPet\n  /pets:\n    get: {operationId: listPets}\n";

    #[test]
    fn manifest_and_document_transforms_reach_the_bundle() {
        let manifest = format!(
            "{MANIFEST}    transforms:\n      request:\n        headers:\n          set: {{X-Env: '${{DEPLOY_ENV:-dev}}'}}\n"
        );
        let spec = SPEC.replace(
            "      operationId: getPet\n",
            "      operationId: getPet\n      x-mgw-transforms:\n        request:\n          path: {template: '/v2/animals/{id}'}\n          method: POST\n",
        );
        let c = build(&manifest, &spec).unwrap();
        let api = &c.bundle.apis[0];
        let set = &api.transforms.as_ref().unwrap().request.as_ref().unwrap();
        assert_eq!(
            set.headers.as_ref().unwrap().set["X-Env"],
            "${DEPLOY_ENV:-dev}"
        );
        let get = api.operations.iter().find(|o| o.id == "getPet").unwrap();
        let req = get.transforms.as_ref().unwrap().request.as_ref().unwrap();
        assert_eq!(req.method.as_deref(), Some("POST"));
        assert_eq!(
            req.path.as_ref().unwrap().template.as_deref(),
            Some("/v2/animals/{id}")
        );
        let list = api.operations.iter().find(|o| o.id == "listPets").unwrap();
        assert!(list.transforms.is_none());
        // The environment variable is listed for the deployment.
        assert!(c.env.iter().any(|v| v.name == "DEPLOY_ENV"), "{:?}", c.env);
    }

    #[test]
    fn problems_point_at_the_line_that_wrote_them() {
        // A gateway-owned header in mgw.yaml: the line of the header name.
        let manifest = format!(
            "{MANIFEST}    transforms:\n      request:\n        headers:\n          remove: [X-Request-Id]\n"
        );
        let e = build(&manifest, SPEC).unwrap_err();
        assert!(e.contains("mgw.yaml:12:20:"), "{e}");
        assert!(
            e.contains("a transform cannot change header `x-request-id`"),
            "{e}"
        );
        // In the document: the key inside the extension (line and column of `template`).
        let spec = SPEC.replace(
            "      operationId: getPet\n",
            "      operationId: getPet\n      x-mgw-transforms:\n        request: {path: {template: '/v2/{petId}'}}\n",
        );
        let e = build(MANIFEST, &spec).unwrap_err();
        assert!(e.contains("api.yaml:9:26:"), "{e}");
        assert!(e.contains("x-mgw-transforms/request/path/template"), "{e}");
        assert!(
            e.contains("path parameter `petId` is not in the path `/pets/{id}`"),
            "{e}"
        );
        // A wrong shape names the key.
        let spec = SPEC.replace(
            "      operationId: getPet\n",
            "      operationId: getPet\n      x-mgw-transforms: {request: {verb: POST}}\n",
        );
        let e = build(MANIFEST, &spec).unwrap_err();
        assert!(
            e.contains("`x-mgw-transforms.request.verb`: unknown field `verb`"),
            "{e}"
        );
    }

    #[test]
    fn key_paths_cover_every_key_and_render_as_the_bundle_does() {
        let t: Transforms = serde_json::from_value(serde_json::json!({
            "request": {"headers": {"remove": ["x-a"], "set": {"X-B": "1"}}}
        }))
        .unwrap();
        let keys: Vec<String> = key_paths(&t).iter().map(|k| bundle_suffix(k)).collect();
        assert_eq!(
            keys,
            [
                ".request",
                ".request.headers",
                ".request.headers.remove",
                ".request.headers.remove[0]",
                ".request.headers.set",
                ".request.headers.set.X-B"
            ]
        );
        let l = Located {
            value: crate::project::yaml::parse("request: {headers: {sett: {}}}", false).unwrap(),
            origin: Origin::file("apis/p.yaml"),
        };
        let e = from_extension(&l).unwrap_err();
        assert!(
            e.to_string()
                .contains("`x-mgw-transforms.request.headers.sett`: unknown field `sett`"),
            "{e}"
        );
    }
}
