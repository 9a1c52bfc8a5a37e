//! Micro benchmark of the cache-key hash and the JWT signature check (no
//! criterion: a fixed number of iterations, the best of five runs, nanoseconds
//! per call). Run with `cargo bench -p mgw-gateway --bench auth`; needs the
//! `openssl` CLI for the RSA key. It measures and prints; it asserts nothing.

use std::hash::Hasher;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use mgw_gateway::auth::cache::TokenCache;
use sha2::{Digest, Sha256};
use siphasher::sip128::{Hasher128, SipHasher13, SipHasher24};

fn best_of<F: FnMut()>(iters: u32, mut f: F) -> Duration {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed() / iters
        })
        .min()
        .unwrap()
}

fn report(name: &str, d: Duration) {
    println!("{name:<58} {:>9} ns", d.as_nanos());
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let key = key.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        key,
    ]);
    let public_pem = openssl(&["pkey", "-in", key, "-pubout"]);
    let private_pem = std::fs::read(key).unwrap();
    let claims = serde_json::json!({
        "iss": "https://idp.example.com/", "sub": "consumer-1234567890", "aud": "api",
        "exp": 4_000_000_000u64, "iat": 1_700_000_000u64,
        "scope": "read:pets write:pets read:orders", "client_id": "app-0123456789abcdef",
        "email": "someone@example.com", "name": "Some One",
    });
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&private_pem).unwrap(),
    )
    .unwrap();
    println!("RS256 token: {} bytes", token.len());
    let t = token.as_bytes();

    report(
        "cache key: sha256(domain, token) [before]",
        best_of(100_000, || {
            let mut h = Sha256::new();
            h.update(b"idp");
            h.update([0]);
            h.update(t);
            std::hint::black_box(h.finalize());
        }),
    );
    let secret = [7u8; 16];
    report(
        "cache key: SipHash-1-3-128 keyed [after]",
        best_of(100_000, || {
            let mut h = SipHasher13::new_with_key(&secret);
            h.write(t);
            std::hint::black_box(h.finish128());
        }),
    );
    report(
        "cache key: SipHash-2-4-128 keyed",
        best_of(100_000, || {
            let mut h = SipHasher24::new_with_key(&secret);
            h.write(t);
            std::hint::black_box(h.finish128());
        }),
    );
    let cache = TokenCache::new(10_000);
    let far = Instant::now() + Duration::from_secs(3600);
    for i in 0..10_000u32 {
        cache.insert(cache.key(&i.to_le_bytes()), i, far);
    }
    let k = cache.key(t);
    cache.insert(k, 1, far);
    report(
        "TokenCache: key + get (hit) [after]",
        best_of(100_000, || {
            std::hint::black_box(cache.get(&cache.key(t)));
        }),
    );

    let (input, sig) = token.rsplit_once('.').unwrap();
    let der_key = DecodingKey::from_rsa_pem(&public_pem).unwrap();
    report(
        "jsonwebtoken::crypto::verify, PEM (DER) key",
        best_of(2_000, || {
            assert!(
                jsonwebtoken::crypto::verify(sig, input.as_bytes(), &der_key, Algorithm::RS256)
                    .unwrap()
            );
        }),
    );
    // n and e, as a JWKS gives them.
    let der = pem_body(&public_pem);
    let spki = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        der.clone(),
    );
    let sig_bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    report(
        "ring UnparsedPublicKey::verify (SPKI DER, decoded sig)",
        best_of(2_000, || {
            let r = ring_spki_verify(&spki, input.as_bytes(), &sig_bytes);
            assert!(r);
        }),
    );
    report(
        "base64 decode of the signature",
        best_of(100_000, || {
            std::hint::black_box(URL_SAFE_NO_PAD.decode(sig).unwrap());
        }),
    );
}

fn ring_spki_verify(
    k: &ring::signature::UnparsedPublicKey<Vec<u8>>,
    msg: &[u8],
    sig: &[u8],
) -> bool {
    // jsonwebtoken hands ring the SubjectPublicKeyInfo's inner RSAPublicKey.
    k.verify(msg, sig).is_ok()
}

/// The RSAPublicKey inside a PEM SubjectPublicKeyInfo (what jsonwebtoken keeps).
fn pem_body(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(pem.to_vec()).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let spki = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    // SPKI = SEQ { SEQ { alg }, BIT STRING { 0x00, RSAPublicKey } }: the RSAPublicKey
    // of a 2048-bit key is the last 270 bytes.
    spki[spki.len() - 270..].to_vec()
}
