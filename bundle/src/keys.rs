//! Inlined JWT verification keys (PEM or JWK) parsed into `jsonwebtoken` keys.
//!
//! Pure parsing, no I/O: the bundle check runs it so `mgw validate` refuses a bad
//! key, and the gateway's JWT verifier uses the same keys at start.

use crate::wire::JwtKey;

/// Parses one inlined key into its verification key and algorithm family.
pub fn parse_jwt_key(
    key: &JwtKey,
) -> Result<(Option<String>, KeyFamily, jsonwebtoken::DecodingKey), String> {
    use jsonwebtoken::DecodingKey;
    match (&key.pem, &key.jwk) {
        (Some(pem), None) => {
            if pem.contains("PRIVATE KEY") {
                return Err("holds a private key; inline only public keys".into());
            }
            let bytes = pem.as_bytes();
            if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
                return Ok((key.kid.clone(), KeyFamily::Rsa, k));
            }
            if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
                return Ok((key.kid.clone(), KeyFamily::Ec(None), k));
            }
            if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
                return Ok((key.kid.clone(), KeyFamily::Ed, k));
            }
            Err("is not a PEM RSA, EC or Ed25519 public key".into())
        }
        (None, Some(jwk)) => {
            if key.kid.is_some() {
                return Err("`kid` belongs inside the JWK".into());
            }
            parse_jwk(jwk)
        }
        _ => Err("needs exactly one of `pem` and `jwk`".into()),
    }
}

/// A JWK (public, `kty` RSA, EC or OKP) into its key and family.
pub fn parse_jwk(
    jwk: &serde_json::Value,
) -> Result<(Option<String>, KeyFamily, jsonwebtoken::DecodingKey), String> {
    use jsonwebtoken::DecodingKey;
    let obj = jwk.as_object().ok_or("a JWK must be an object")?;
    let s = |k: &str| obj.get(k).and_then(serde_json::Value::as_str);
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Err("holds private or symmetric key material; inline only public keys".into());
    }
    if s("use").is_some_and(|u| u != "sig") {
        return Err("is not a signing key (`use` is not `sig`)".into());
    }
    let kid = s("kid").map(str::to_owned);
    let (family, key) = match s("kty") {
        Some("RSA") => {
            let (Some(n), Some(e)) = (s("n"), s("e")) else {
                return Err("an RSA JWK needs `n` and `e`".into());
            };
            let k = DecodingKey::from_rsa_components(n, e).map_err(|e| e.to_string())?;
            (KeyFamily::Rsa, k)
        }
        Some("EC") => {
            let alg = match s("crv") {
                Some("P-256") => jsonwebtoken::Algorithm::ES256,
                Some("P-384") => jsonwebtoken::Algorithm::ES384,
                other => {
                    return Err(format!(
                        "EC curve `{}` is not supported",
                        other.unwrap_or("")
                    ));
                }
            };
            let (Some(x), Some(y)) = (s("x"), s("y")) else {
                return Err("an EC JWK needs `x` and `y`".into());
            };
            let k = DecodingKey::from_ec_components(x, y).map_err(|e| e.to_string())?;
            (KeyFamily::Ec(Some(alg)), k)
        }
        Some("OKP") => {
            if s("crv") != Some("Ed25519") {
                return Err("only the OKP curve `Ed25519` is supported".into());
            }
            let x = s("x").ok_or("an OKP JWK needs `x`")?;
            let k = DecodingKey::from_ed_components(x).map_err(|e| e.to_string())?;
            (KeyFamily::Ed, k)
        }
        other => {
            return Err(format!(
                "key type `{}` is not supported (RSA, EC or OKP)",
                other.unwrap_or("")
            ));
        }
    };
    // A JWK that names its algorithm is used for exactly that algorithm.
    if let Some(alg) = s("alg") {
        let alg: jsonwebtoken::Algorithm = alg
            .parse()
            .map_err(|_| format!("`alg` `{alg}` is not a JWS signature algorithm"))?;
        if !family.allows(alg) {
            return Err(format!("`alg` `{alg:?}` does not fit the key type"));
        }
        return Ok((kid, KeyFamily::Exact(alg), key));
    }
    Ok((kid, family, key))
}

/// Which algorithms a key may verify: chosen by the key, never by the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    /// The curve's algorithm when known.
    Ec(Option<jsonwebtoken::Algorithm>),
    Ed,
    Hmac,
    /// The key's JWK named one algorithm.
    Exact(jsonwebtoken::Algorithm),
}

impl KeyFamily {
    pub fn allows(self, alg: jsonwebtoken::Algorithm) -> bool {
        use jsonwebtoken::Algorithm as A;
        match self {
            Self::Rsa => matches!(
                alg,
                A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
            ),
            Self::Ec(Some(a)) => a == alg,
            Self::Ec(None) => matches!(alg, A::ES256 | A::ES384),
            Self::Ed => alg == A::EdDSA,
            Self::Hmac => matches!(alg, A::HS256 | A::HS384 | A::HS512),
            Self::Exact(a) => a == alg,
        }
    }
}
