//! Arbitrary `${VAR}` templates: substitution and variable listing never panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use mgw_gateway::env;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = std::str::from_utf8(data) else {
        return;
    };
    let mut vars = BTreeMap::new();
    vars.insert("A".to_owned(), "x".to_owned());
    let _ = env::substitute(t, &vars);
    let _ = env::variables(t);
});
