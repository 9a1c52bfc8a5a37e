//! Property tests: arbitrary bytes as tokens and credential headers, sent as raw
//! requests to a gateway whose operation needs a JWT, an API key or a basic-auth
//! user. Never a panic, always a well-formed answer, never a pass.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use support::auth::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    rt: tokio::runtime::Runtime,
    api: std::net::SocketAddr,
    _gw: Gw,
    _backend: Backend,
    _dir: tempfile::TempDir,
}

/// One gateway for all cases: JWT (RSA and Ed25519), API keys and basic users.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::write(
            &keys,
            format!("a:sha256:{}\n", hex::encode(Sha256::digest(b"real-key"))),
        )
        .unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, format!("u:{}\n", bcrypt::hash("pw", 4).unwrap())).unwrap();
        let (backend, gw) = rt.block_on(async {
            let b = backend("pets").await;
            let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
            bundle["auth"] = json!({"providers": {
                "idp": {"type": "jwt", "issuer": ISSUER, "algorithms": ["RS256", "EdDSA", "ES256"],
                        "keys": [{"pem": shared_rsa().public_pem}, {"jwk": ed("ed-1").jwk}]},
                "keys": {"type": "apiKey", "file": keys.to_str().unwrap()},
                "users": {"type": "basic", "file": users.to_str().unwrap()}
            }});
            bundle["apis"][0]["securitySchemes"] = json!({
                "bearer": {"provider": "idp", "in": "header", "name": "Authorization", "prefix": "Bearer"},
                "key": {"provider": "keys", "in": "header", "name": "X-API-Key"},
                "basic": {"provider": "users", "in": "header", "name": "Authorization", "prefix": "Basic"}
            });
            for op in bundle["apis"][0]["operations"].as_array_mut().unwrap() {
                op["security"] = json!([{"bearer": []}, {"key": []}, {"basic": []}]);
            }
            let gw = start(bundle).await;
            (b, gw)
        });
        Fixture {
            api: gw.api,
            rt,
            _gw: gw,
            _backend: backend,
            _dir: dir,
        }
    })
}

fn exchange(raw: Vec<u8>) -> String {
    let f = fixture();
    f.rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(f.api).await.unwrap();
        let _ = s.write_all(&raw).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// Header bytes: anything but CR, LF and NUL (which end or break the head).
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no CR/LF/NUL", |b| !matches!(b, b'\r' | b'\n' | 0)),
        0..300,
    )
}

/// Strings shaped like JWTs: base64url segments, some with real-looking headers.
fn jwt_like() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just(json!({"alg": "RS256"})),
        Just(json!({"alg": "none"})),
        Just(json!({"alg": "HS256", "kid": "rsa-1"})),
        Just(json!({"alg": "EdDSA", "kid": "ed-1"})),
        Just(json!({"alg": "RS256", "crit": ["x"]})),
        "[ -~]{0,20}".prop_map(|s| json!({ "alg": s })),
    ];
    let payload = prop_oneof![
        Just(json!({"iss": ISSUER, "exp": 4_000_000_000u64, "sub": "x"})),
        Just(json!({})),
        "[ -~]{0,30}".prop_map(|s| json!({"iss": s, "exp": 1})),
    ];
    (header, payload, "[A-Za-z0-9_-]{0,400}", 0..3usize).prop_map(|(h, p, sig, dots)| {
        let h = URL_SAFE_NO_PAD.encode(h.to_string());
        let p = URL_SAFE_NO_PAD.encode(p.to_string());
        match dots {
            0 => format!("{h}.{p}.{sig}"),
            1 => format!("{h}.{p}"),
            _ => format!("{h}.{p}.{sig}.{sig}"),
        }
    })
}

fn assert_refused(res: &str) {
    // Well-formed, and never a pass.
    assert!(res.starts_with("HTTP/1.1 "), "not an HTTP answer: {res:?}");
    let status: u16 = res[9..12].parse().unwrap();
    assert!(matches!(status, 400 | 401 | 431), "status {status}: {res}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_credential_bytes_never_pass(
        auth in header_bytes(),
        key in header_bytes(),
        prefix in prop_oneof![Just(&b"Bearer "[..]), Just(&b"Basic "[..]), Just(&b""[..])],
    ) {
        let mut raw = b"GET /pets-api/v1/pets HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ".to_vec();
        raw.extend_from_slice(prefix);
        raw.extend_from_slice(&auth);
        raw.extend_from_slice(b"\r\nX-API-Key: ");
        raw.extend_from_slice(&key);
        raw.extend_from_slice(b"\r\n\r\n");
        assert_refused(&exchange(raw));
    }

    #[test]
    fn jwt_shaped_garbage_never_passes(t in jwt_like()) {
        let raw = format!(
            "GET /pets-api/v1/pets HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {t}\r\n\r\n"
        );
        assert_refused(&exchange(raw.into_bytes()));
    }
}

/// A NumericDate claim as a hostile issuer could sign it: any number JSON can
/// hold (huge, negative, fractional), or not a number at all.
fn numeric_date() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        (-1e3f64..1e3).prop_map(|d| json!(now() as f64 + d)),
        Just(json!(1e300)),
        Just(json!(-1e300)),
        "[ -~]{0,12}".prop_map(serde_json::Value::from),
        Just(json!([1])),
        Just(json!(true)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Issue 10, defect 3: validly signed tokens with any `exp`, `nbf` and `iat`
    /// get an answer (200 or 401), never a dropped connection from a panic.
    #[test]
    fn signed_tokens_with_any_numeric_dates_get_an_answer(
        exp in numeric_date(),
        nbf in proptest::option::of(numeric_date()),
        iat in proptest::option::of(numeric_date()),
    ) {
        let mut c = json!({"iss": ISSUER, "sub": "p", "exp": exp});
        if let Some(nbf) = nbf {
            c["nbf"] = nbf;
        }
        if let Some(iat) = iat {
            c["iat"] = iat;
        }
        let t = token(&shared_rsa(), &c);
        let res = exchange(format!(
            "GET /pets-api/v1/pets HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {t}\r\n\r\n"
        ).into_bytes());
        prop_assert!(res.starts_with("HTTP/1.1 "), "not an HTTP answer for {c}: {res:?}");
        let status: u16 = res[9..12].parse().unwrap();
        prop_assert!(matches!(status, 200 | 401), "status {status} for {c}: {res}");
        if !c["exp"].is_number() {
            prop_assert_eq!(status, 401, "{}", c);
        }
    }
}

#[test]
fn a_real_credential_passes_through_the_same_fixture() {
    let raw = "GET /pets-api/v1/pets HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-API-Key: real-key\r\n\r\n";
    let res = exchange(raw.as_bytes().to_vec());
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}
