//! What a registry (or anything pretending to be one) sends back and mgw parses:
//! `WWW-Authenticate` challenges never panic the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mgw_builder::registry::auth::parse_challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_challenge(s);
});
