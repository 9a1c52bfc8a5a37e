//! Property test: arbitrary methods, paths and headers sent as raw bytes to a real
//! gateway always get one complete, well-formed HTTP response that is not a
//! server error, then a close, and never crash it.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use support::*;

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

/// Checks that `out` is one complete HTTP/1.1 response: a status line, header
/// lines, and a body that matches its framing. Returns the status code.
fn well_formed(out: &[u8], head_request: bool) -> Result<u16, String> {
    let text = String::from_utf8_lossy(out);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete head: {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let code = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| format!("bad content-length {value:?}"))?,
                );
            }
            "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let framed = if head_request || code == 204 || code == 304 {
        body.is_empty()
    } else if let Some(n) = length {
        body.len() == n
    } else if chunked {
        body.ends_with("0\r\n\r\n")
    } else {
        true // delimited by the close
    };
    if !framed {
        return Err(format!("body does not match its framing: {text:?}"));
    }
    Ok(code)
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
            // Every request gets a complete answer and then a close (the request
            // says `Connection: close`); no answer within 5 s is a failure.
            let out = raw_until_close(gw.api, raw.as_bytes(), Duration::from_secs(5))
                .await
                .map_err(TestCaseError::fail)?;
            let code = well_formed(&out, m == "HEAD").map_err(TestCaseError::fail)?;
            // The backend is healthy, so nothing a client sends is a server
            // error: a 5xx here is a gateway failure, not an answer.
            let text = String::from_utf8_lossy(&out);
            prop_assert!((200..500).contains(&code), "{text}");
            // Answers from the pipeline (not hyper's parser) carry the request id.
            if text.contains("problem+json") {
                prop_assert!(text.contains("x-request-id"), "{text}");
            }
            // The gateway is still alive and serving.
            let r = get(&gw.url("/pets-api/v1/pets")).await;
            prop_assert_eq!(r.status, http::StatusCode::OK);
            gw.shutdown().await;
            Ok(())
        })?;
    }
}
