//! Property test: arbitrary methods, paths and headers sent as raw bytes to a real
//! gateway always get a well-formed HTTP response (or a clean close for bytes
//! that are not HTTP), and never crash it.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        Just("HEAD".to_owned()),
        Just("OPTIONS".to_owned()),
        Just("DELETE".to_owned()),
        "[A-Z]{1,12}",
        "[!-~]{1,8}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        "/pets-api/v1/pets(/[a-zA-Z0-9%._~-]{0,12}){0,3}",
        "/[!-~]{0,40}",
        "(/%[0-9a-fA-F]{2}|/\\.\\.|/\\.|/[a-z]{1,4}){1,6}",
        "[!-~]{0,20}",
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[!-9;-~]{1,20}", "[ -~]{0,60}"), 0..6)
}

async fn exchange(addr: std::net::SocketAddr, raw: Vec<u8>) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(&raw).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn any_request_gets_a_well_formed_answer(m in method(), p in path(), hs in headers()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let b = backend("a").await;
            let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
            let mut raw = format!("{m} {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
            for (k, v) in &hs {
                raw.push_str(&format!("{k}: {v}\r\n"));
            }
            raw.push_str("\r\n");
            let out = exchange(gw.api, raw.into_bytes()).await;
            let text = String::from_utf8_lossy(&out);
            // Either a complete status line with a 3-digit code, or a close for
            // input hyper refuses to parse as HTTP at all.
            if !out.is_empty() {
                prop_assert!(text.starts_with("HTTP/1.1 "), "{text}");
                let code: u16 = text[9..12].parse().unwrap();
                prop_assert!((100..600).contains(&code), "{text}");
                // Answers from the pipeline (not hyper's parser) carry the request id.
                if text.contains("problem+json") {
                    prop_assert!(text.contains("x-request-id"), "{text}");
                }
            }
            // The gateway is still alive and serving.
            let r = get(&gw.url("/pets-api/v1/pets")).await;
            prop_assert_eq!(r.status, http::StatusCode::OK);
            gw.shutdown().await;
            Ok(())
        })?;
    }
}
