//! Arbitrary text as an OpenAPI document in a project: loading and compiling
//! never panic, whatever the YAML, JSON or `$ref`s.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use mgw_builder::project::{self, Source};

const MANIFEST: &str = "name: fuzz\nversion: 1.0.0\nupstreams:\n  up:\n    urls: [\"http://127.0.0.1:1\"]\napis:\n  - name: a\n    spec: api.yaml\n    upstream: up\n";

/// libyaml-safer 0.3 still has `panic!("TODO")` branches (a tag right before `,` in a
/// flow collection, `{!,`). `project::yaml` catches a parser panic and reports the file
/// as invalid YAML, and that is the contract fuzzed here; libfuzzer-sys' hook would
/// abort before the catch. So a panic raised inside the parser is left to that catch,
/// and any other panic still aborts (a crash the fuzzer reports).
fn abort_on_panics_outside_the_yaml_parser() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parser = info
                .location()
                .is_some_and(|l| l.file().contains("libyaml-safer"));
            if !in_parser {
                fuzzer_hook(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    abort_on_panics_outside_the_yaml_parser();
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
