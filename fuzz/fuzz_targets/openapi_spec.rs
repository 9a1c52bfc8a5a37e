//! Arbitrary text as an OpenAPI document in a project: loading and compiling
//! never panic, whatever the YAML, JSON or `$ref`s.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use mgw_builder::project::{self, Source};

const MANIFEST: &str = "name: fuzz\nversion: 1.0.0\nupstreams:\n  up:\n    urls: [\"http://127.0.0.1:1\"]\napis:\n  - name: a\n    spec: api.yaml\n    upstream: up\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files: BTreeMap<String, String> = [
        ("mgw.yaml".to_owned(), MANIFEST.to_owned()),
        ("api.yaml".to_owned(), text.to_owned()),
    ]
    .into_iter()
    .collect();
    if let Ok(p) = project::load_from(Source::Memory(files)) {
        let _ = project::compile(&p);
    }
});
