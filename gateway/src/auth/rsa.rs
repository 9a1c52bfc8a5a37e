//! RSA verification keys parsed once, at load.
//!
//! ring (under jsonwebtoken 9) re-parses an RSA public key and rebuilds its
//! Montgomery state on every verify: a third of an RS256 check (131k of 398k
//! instructions). aws-lc-rs's [`ParsedPublicKey`] keeps that state, so a key is
//! parsed here once per algorithm it may verify (BENCHMARKS.md, "The cache-miss
//! JWT path"). Only signature verification uses aws-lc-rs; rustls stays on ring.
//!
//! The same limits as ring's: moduli of 2048 to 8192 bits, PKCS #1 v1.5 and PSS
//! with SHA-256/384/512. A key aws-lc-rs refuses for an algorithm verifies
//! nothing with it.
//!
//! The signing input is hashed with a one-shot SHA-2 (the algorithm's own
//! digest, fixed by the key's slot) and the digest verified
//! ([`ParsedPublicKey::verify_digest_sig`]): the same PKCS #1 / PSS check as
//! `verify_sig`, without the streaming digest context `EVP_DigestVerify` sets
//! up, copies and frees on every call (BENCHMARKS.md, "Product path, seventh
//! wave").

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;

use crate::bundle::JwtKey;

/// The RSA algorithms, in the order of [`RsaKey`]'s slots, with the digest
/// each one signs.
type Slot = (
    Algorithm,
    &'static signature::RsaParameters,
    &'static digest::Algorithm,
);
const ALGORITHMS: [Slot; 6] = [
    (
        Algorithm::RS256,
        &signature::RSA_PKCS1_2048_8192_SHA256,
        &digest::SHA256,
    ),
    (
        Algorithm::RS384,
        &signature::RSA_PKCS1_2048_8192_SHA384,
        &digest::SHA384,
    ),
    (
        Algorithm::RS512,
        &signature::RSA_PKCS1_2048_8192_SHA512,
        &digest::SHA512,
    ),
    (
        Algorithm::PS256,
        &signature::RSA_PSS_2048_8192_SHA256,
        &digest::SHA256,
    ),
    (
        Algorithm::PS384,
        &signature::RSA_PSS_2048_8192_SHA384,
        &digest::SHA384,
    ),
    (
        Algorithm::PS512,
        &signature::RSA_PSS_2048_8192_SHA512,
        &digest::SHA512,
    ),
];

/// One RSA public key, parsed for each RSA algorithm.
pub struct RsaKey {
    parsed: [Option<ParsedPublicKey>; 6],
}

impl RsaKey {
    /// From DER (PKCS #1 `RSAPublicKey` or X.509 `SubjectPublicKeyInfo`).
    fn from_der(der: &[u8]) -> Option<Self> {
        let parsed = ALGORITHMS.map(|(_, params, _)| ParsedPublicKey::new(params, der).ok());
        parsed
            .iter()
            .any(Option::is_some)
            .then_some(Self { parsed })
    }

    /// From a bundle key (`pem` or `jwk`); `None` when it is not an RSA key.
    pub fn from_jwt_key(key: &JwtKey) -> Option<Self> {
        match (&key.pem, &key.jwk) {
            (Some(pem), None) => Self::from_der(pem::parse(pem).ok()?.contents()),
            (None, Some(jwk)) => Self::from_jwk(jwk),
            _ => None,
        }
    }

    /// From a JWK with `kty: RSA` (`n` and `e`, base64url).
    pub fn from_jwk(jwk: &serde_json::Value) -> Option<Self> {
        if jwk.get("kty")?.as_str()? != "RSA" {
            return None;
        }
        let part = |k: &str| URL_SAFE_NO_PAD.decode(jwk.get(k)?.as_str()?).ok();
        let components = RsaPublicKeyComponents {
            n: part("n")?,
            e: part("e")?,
        };
        Self::from_der(components.as_der().ok()?.as_ref())
    }

    /// Whether `signature` (decoded) over `message` verifies with this key under
    /// `alg`; `None` when `alg` is not an RSA algorithm.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Option<bool> {
        let slot = ALGORITHMS.iter().position(|(a, _, _)| *a == alg)?;
        let Some(key) = &self.parsed[slot] else {
            return Some(false);
        };
        // aws-lc-rs refuses a digest of another algorithm than the key's
        // parameters name, so the slot pins both.
        let digest = digest::digest(ALGORITHMS[slot].2, message);
        Some(key.verify_digest_sig(&digest, signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_rsa_keys_and_algorithms_are_not_taken() {
        let ed = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert!(RsaKey::from_jwk(&ed).is_none());
        // A 24-bit modulus parses, but verifies nothing (2048 to 8192 bits only).
        let small = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        let small = RsaKey::from_jwk(&small);
        assert!(small.is_none_or(|k| k.verify(Algorithm::RS256, b"m", &[0; 3]) == Some(false)));
        assert!(RsaKey::from_jwk(&serde_json::json!({"kty": "RSA", "n": "!"})).is_none());
    }
}
