//! Arbitrary bytes as a bundle: parsing and validation never panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use mgw_gateway::bundle::{Bundle, Config};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Bundle::from_json(data) {
        let env = BTreeMap::<String, String>::new();
        let _ = Config::from_bundle(&b, String::new(), Some(&env));
        let _ = Config::from_bundle(&b, String::new(), None);
        let _ = b.to_canonical_json();
    }
});
