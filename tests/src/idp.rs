//! A test identity provider: a fresh P-256 key, the JWKS a project bakes, and
//! ES256 tokens it signs for `petstore` (`kid` `test-1`, ten minutes valid).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub struct Idp {
    encoding: jsonwebtoken::EncodingKey,
    /// The public key as a JWKS document (`keys/idp.jwks.json` of the examples).
    pub jwks: serde_json::Value,
}

impl Idp {
    pub fn generate() -> Idp {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = kp.public_key_raw();
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "test-1",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
        }]});
        Idp {
            encoding: jsonwebtoken::EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes())
                .unwrap(),
            jwks,
        }
    }

    /// A token for `client-42` with `scope`, plus the `extra` claims.
    pub fn token(&self, scope: &str, extra: serde_json::Value) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("test-1".into());
        let mut claims = serde_json::json!({
            "iss": "https://idp.example.com/", "aud": "petstore", "sub": "client-42",
            "scope": scope, "iat": now, "exp": now + 600,
        });
        if let (Some(claims), serde_json::Value::Object(extra)) = (claims.as_object_mut(), extra) {
            claims.extend(extra);
        }
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}
