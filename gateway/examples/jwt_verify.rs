//! Measures JWT verification (not a test): a cold RS256 check (distinct tokens,
//! cache off) through the gateway's verifier, the bare signature check, and a
//! cached repeat. Needs `openssl` to make the RSA key.
//!
//! ```sh
//! cargo run --profile bench-fast -p mgw-gateway --example jwt_verify
//! ```

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mgw_gateway::auth::jwt::JwtVerifier;
use mgw_gateway::bundle::{JwtCfg, JwtKey};

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(out.status.success());
    out.stdout
}

fn main() {
    let dir = std::env::temp_dir().join(format!("mgw-jwt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("k.pem");
    let k = key.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        k,
    ]);
    let public = String::from_utf8(openssl(&["pkey", "-in", k, "-pubout"])).unwrap();
    let private = std::fs::read(&key).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(&private).unwrap();

    let cfg = |cache| JwtCfg {
        issuer: "https://idp.test".into(),
        audiences: vec!["pets".into()],
        algorithms: vec![jsonwebtoken::Algorithm::RS256],
        keys: vec![JwtKey {
            kid: Some("k".into()),
            pem: Some(public.clone()),
            jwk: None,
        }],
        jwks_url: None,
        discovery_url: None,
        jwks_refresh: Duration::from_secs(300),
        jwks_min_refresh_interval: Duration::from_secs(10),
        jwks_timeout: Duration::from_secs(2),
        hmac_secret_file: None,
        leeway: Duration::from_secs(30),
        max_token_bytes: 8192,
        claim_headers: Vec::new(),
        forward_credentials: false,
        consumer_claim: None,
        scope_claims: vec!["scope".into(), "scp".into()],
        cache_capacity: cache,
    };
    let client = mgw_gateway::auth::http::client();
    let cold = Arc::new(JwtVerifier::new("bench".into(), cfg(0), client.clone()).unwrap());
    let warm = Arc::new(JwtVerifier::new("bench".into(), cfg(1000), client).unwrap());

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let n = 2000;
    let tokens: Vec<String> = (0..n)
        .map(|i| {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
            h.kid = Some("k".into());
            let c = serde_json::json!({"iss": "https://idp.test", "aud": "pets",
                "sub": format!("client-{i}"), "scope": "pets:read", "exp": now + 600});
            jsonwebtoken::encode(&h, &c, &enc).unwrap()
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for t in tokens.iter().take(100) {
            cold.verify(t).await.unwrap();
        }
        let start = Instant::now();
        for t in &tokens {
            cold.verify(t).await.unwrap();
        }
        let per = start.elapsed() / n;
        println!("cold RS256 verify (gateway verifier, no cache): {per:?} per token");

        let dk = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
        let start = Instant::now();
        for t in &tokens {
            let (input, sig) = t.rsplit_once('.').unwrap();
            assert!(
                jsonwebtoken::crypto::verify(
                    sig,
                    input.as_bytes(),
                    &dk,
                    jsonwebtoken::Algorithm::RS256
                )
                .unwrap()
            );
        }
        println!(
            "bare RS256 signature check (ring):              {:?} per token",
            start.elapsed() / n
        );

        warm.verify(&tokens[0]).await.unwrap();
        let start = Instant::now();
        for _ in 0..n {
            warm.verify(&tokens[0]).await.unwrap();
        }
        println!(
            "repeated token (verified-token cache hit):      {:?} per token",
            start.elapsed() / n
        );
    });
}
