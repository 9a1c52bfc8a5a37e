//! Arbitrary image references (`--base`, `--repository`, `image.repository`):
//! parsing never panics, and what parses prints back to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mgw_builder::registry::{Reference, is_loopback};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = is_loopback(s);
    if let Ok(r) = Reference::parse(s) {
        let again = Reference::parse(&r.to_string()).expect("a parsed reference re-parses");
        assert_eq!(again, r);
        let _ = r.api_host();
        let _ = r.manifest_ref();
    }
});
