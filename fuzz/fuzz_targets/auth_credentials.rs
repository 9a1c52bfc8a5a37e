//! Arbitrary bytes as credentials: a JWT for a verifier with real keys, a JWKS
//! document, the secret files (API keys, users) and a client certificate. None
//! of them may panic, and no unsigned token may verify. The same bytes also
//! become claim values (`exp`, `nbf`, `iat`, or the whole payload) of tokens
//! signed with the verifier's HMAC secret, so the claim checks run on them too.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mgw_gateway::auth::jwt::{JwtVerifier, parse_jwks};
use mgw_gateway::auth::secrets::{parse_api_keys, parse_users};
use mgw_gateway::bundle::{JwtCfg, JwtKey};
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.test";
const SECRET: &[u8] = b"fuzz-hmac-secret-of-at-least-32-bytes!!";

fn verifier() -> &'static (tokio::runtime::Runtime, Arc<JwtVerifier>) {
    static V: OnceLock<(tokio::runtime::Runtime, Arc<JwtVerifier>)> = OnceLock::new();
    V.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "k",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let secret = std::env::temp_dir().join(format!("mgw-fuzz-hmac-{}", std::process::id()));
        std::fs::write(&secret, SECRET).unwrap();
        let cfg = JwtCfg {
            issuer: ISSUER.into(),
            audiences: Vec::new(),
            algorithms: vec![
                jsonwebtoken::Algorithm::EdDSA,
                jsonwebtoken::Algorithm::ES256,
                jsonwebtoken::Algorithm::RS256,
                jsonwebtoken::Algorithm::HS256,
            ],
            keys: vec![JwtKey {
                kid: None,
                pem: None,
                jwk: Some(jwk),
            }],
            jwks_url: None,
            discovery_url: None,
            jwks_refresh: Duration::from_secs(300),
            jwks_min_refresh_interval: Duration::from_secs(10),
            jwks_timeout: Duration::from_secs(1),
            hmac_secret_file: Some(secret.to_string_lossy().into_owned()),
            leeway: Duration::from_secs(30),
            max_token_bytes: 8192,
            claim_headers: Vec::new(),
            forward_credentials: false,
            consumer_claim: None,
            scope_claims: vec!["scope".into(), "scp".into()],
            cache_capacity: 0,
        };
        let v = JwtVerifier::new("fuzz".into(), cfg, mgw_gateway::auth::http::client()).unwrap();
        (rt, Arc::new(v))
    })
}

/// A token with this payload, signed with the verifier's HMAC secret.
fn signed(payload: &Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    jsonwebtoken::encode(&header, payload, &key).unwrap()
}

/// Claim values from the bytes: as JSON, and as the numbers their first eight
/// bytes spell.
fn claim_values(data: &[u8]) -> Vec<Value> {
    let mut out: Vec<Value> = serde_json::from_slice(data).into_iter().collect();
    if let Some(b) = data.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
        out.extend(serde_json::Number::from_f64(f64::from_le_bytes(b)).map(Value::Number));
        out.push(Value::from(i64::from_le_bytes(b)));
        out.push(Value::from(u64::from_le_bytes(b)));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (rt, v) = verifier();
    if let Ok(token) = std::str::from_utf8(data) {
        assert!(
            rt.block_on(v.verify(token)).is_err(),
            "a fuzzed token verified"
        );
    }
    // Signed tokens whose claims hold the fuzzed values: any answer but a panic.
    for value in claim_values(data) {
        for claim in ["exp", "nbf", "iat"] {
            let mut payload = json!({"iss": ISSUER, "sub": "f", "exp": 4_102_444_800u64});
            payload[claim] = value.clone();
            let _ = rt.block_on(v.verify(&signed(&payload)));
        }
        if let Value::Object(mut payload) = value {
            payload.insert("iss".into(), ISSUER.into());
            let _ = rt.block_on(v.verify(&signed(&Value::Object(payload))));
        }
    }
    let _ = parse_jwks(data);
    let _ = parse_api_keys(data);
    let _ = parse_users(data);
    let _ = mgw_gateway::tls::subject(data);
});
