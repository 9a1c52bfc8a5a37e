//! Arbitrary bytes as credentials: a JWT for a verifier with real keys, a JWKS
//! document, the secret files (API keys, users) and a client certificate. None
//! of them may panic, and no token may verify.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mgw_gateway::auth::jwt::{JwtVerifier, parse_jwks};
use mgw_gateway::auth::secrets::{parse_api_keys, parse_users};
use mgw_gateway::bundle::{JwtCfg, JwtKey};

fn verifier() -> &'static (tokio::runtime::Runtime, Arc<JwtVerifier>) {
    static V: OnceLock<(tokio::runtime::Runtime, Arc<JwtVerifier>)> = OnceLock::new();
    V.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "k",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let cfg = JwtCfg {
            issuer: "https://idp.test".into(),
            audiences: Vec::new(),
            algorithms: vec![
                jsonwebtoken::Algorithm::EdDSA,
                jsonwebtoken::Algorithm::ES256,
                jsonwebtoken::Algorithm::RS256,
            ],
            keys: vec![JwtKey {
                kid: None,
                pem: None,
                jwk: Some(jwk),
            }],
            jwks_url: None,
            jwks_refresh: Duration::from_secs(300),
            jwks_min_refresh_interval: Duration::from_secs(10),
            jwks_timeout: Duration::from_secs(1),
            hmac_secret_file: None,
            leeway: Duration::from_secs(30),
            max_token_bytes: 8192,
            claim_headers: Vec::new(),
            forward_credentials: false,
            consumer_claim: None,
            cache_capacity: 0,
        };
        let v = JwtVerifier::new("fuzz".into(), cfg, mgw_gateway::auth::http::client()).unwrap();
        (rt, Arc::new(v))
    })
}

fuzz_target!(|data: &[u8]| {
    let (rt, v) = verifier();
    if let Ok(token) = std::str::from_utf8(data) {
        assert!(
            rt.block_on(v.verify(token)).is_err(),
            "a fuzzed token verified"
        );
    }
    let _ = parse_jwks(data);
    let _ = parse_api_keys(data);
    let _ = parse_users(data);
    let _ = mgw_gateway::tls::subject(data);
});
