//! Client header hygiene, before any stage reads a header.
//!
//! The first thing the pipeline does with a request: refuse an ambiguous target
//! (two `Host` headers, an absolute-form target naming another authority), note
//! whether the client asks for a WebSocket upgrade, and strip every hop-by-hop
//! header — the fixed set and those the client names in `Connection`. Only then do
//! later stages set the headers the gateway owns (claim headers, `X-Forwarded-*`,
//! `X-Request-Id`), so a client can neither remove one (`Connection: X-Consumer-Id`)
//! nor smuggle a second copy.
//!
//! Once the route (so the API) is known, client headers whose name has `_` get
//! the API's [`UnderscoreHeaders`] policy.
//!
//! Never: forward an `Upgrade` other than `websocket` (an `h2c` upgrade spliced to
//! the upstream would be an unauthenticated tunnel); strip after a gateway-owned
//! header was set; forward an `_` header that reads as a gateway-owned one.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Version};
use smallvec::SmallVec;

use crate::bundle::UnderscoreHeaders;
use crate::error::GatewayError;
use crate::header_names::{X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// What the pipeline learns from a request's hop-by-hop headers before they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hygiene {
    /// An HTTP/1.1 `Connection: upgrade` + `Upgrade: websocket` request.
    pub websocket: bool,
}

/// Checks the request target and strips hop-by-hop headers. The request is
/// stripped even when the answer is an error.
pub fn sanitize<B>(req: &mut Request<B>) -> Result<Hygiene, GatewayError> {
    let present = HopByHop::of(req.headers());
    // Only a request with both headers can ask for a WebSocket.
    let websocket =
        present.has(&header::CONNECTION) && present.has(&header::UPGRADE) && wants_websocket(req);
    present.strip(req.headers_mut(), true);
    check_host(req)?;
    Ok(Hygiene { websocket })
}

/// RFC 9112 §3.2: one `Host`; RFC 9112 §3.2.2: an absolute-form target's
/// authority is the host, so a different `Host` makes the request ambiguous.
fn check_host<B>(req: &Request<B>) -> Result<(), GatewayError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(GatewayError::BadRequest(
            "the request has more than one Host header",
        ));
    }
    if let (Some(host), Some(authority)) = (host, req.uri().authority()) {
        if !host
            .as_bytes()
            .eq_ignore_ascii_case(authority.as_str().as_bytes())
        {
            return Err(GatewayError::BadRequest(
                "the Host header does not match the authority of the request target",
            ));
        }
    }
    Ok(())
}

/// Request headers the gateway owns on every API (claim headers come on top).
fn gateway_owned(name: &str) -> bool {
    [
        X_FORWARDED_FOR,
        X_FORWARDED_HOST,
        X_FORWARDED_PROTO,
        X_REQUEST_ID,
        header::FORWARDED,
    ]
    .iter()
    .any(|h| h.as_str() == name)
}

/// Applies an API's policy to client headers whose name contains `_`. A name that
/// reads as a gateway-owned header once `_` becomes `-` (`X_Forwarded_For`, or a
/// claim header, per `is_claim_header`) is removed even under `allow`.
pub fn underscores(
    headers: &mut HeaderMap,
    policy: UnderscoreHeaders,
    is_claim_header: impl Fn(&str) -> bool,
) -> Result<(), GatewayError> {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().as_bytes().contains(&b'_'))
        .cloned()
        .collect();
    for name in names {
        let reads_as = name.as_str().replace('_', "-");
        let poses = gateway_owned(&reads_as) || is_claim_header(&reads_as);
        match policy {
            UnderscoreHeaders::Reject => {
                return Err(GatewayError::BadRequest(
                    "header names with `_` are not accepted by this API",
                ));
            }
            UnderscoreHeaders::Allow if !poses => {}
            UnderscoreHeaders::Allow | UnderscoreHeaders::Drop => {
                headers.remove(&name);
            }
        }
    }
    Ok(())
}

/// `Connection: upgrade` with `websocket` among the `Upgrade` tokens, on HTTP/1.1.
fn wants_websocket<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && connection_tokens(req.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"))
        && is_websocket(req.headers())
}

/// The `Upgrade` header lists the `websocket` protocol (RFC 6455 §4.1).
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    tokens(headers.get_all(header::CONNECTION))
}

/// The comma-separated tokens of `Connection` values.
fn tokens<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> impl Iterator<Item = &'a str> {
    values
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including those the
/// `Connection` header names. `TE: trailers` is kept on requests.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, is_request: bool) {
    HopByHop::of(headers).strip(headers, is_request);
}

/// Which of the [`HOP_BY_HOP`] headers a map has, found in one pass over its
/// names: most requests carry none and most responses only `Connection:
/// keep-alive`, so only those present are removed (each removal is a hashed
/// lookup).
#[derive(Clone, Copy)]
struct HopByHop([bool; 9]);

impl HopByHop {
    fn of(headers: &HeaderMap) -> Self {
        let mut present = [false; 9];
        for name in headers.keys() {
            if let Some(i) = hop_by_hop_index(name.as_str()) {
                present[i] = true;
            }
        }
        Self(present)
    }

    fn has(self, name: &HeaderName) -> bool {
        hop_by_hop_index(name.as_str()).is_some_and(|i| self.0[i])
    }

    fn strip(self, headers: &mut HeaderMap, is_request: bool) {
        let present = self.0;
        if !present.contains(&true) {
            return;
        }
        // Names `Connection` lists go too; those that are hop-by-hop anyway are
        // removed below with the rest (a listed `TE` is never kept).
        let mut te_listed = false;
        if present[0] {
            // Most list only hop-by-hop names (`keep-alive`, `close`, `upgrade`),
            // removed below anyway: the values are copied out (so that the map can
            // change) only when they name another header.
            let mut names_others = false;
            for token in connection_tokens(headers) {
                match hop_by_hop_named(token) {
                    Some(name) => te_listed |= *name == header::TE,
                    None => names_others = true,
                }
            }
            if names_others {
                let listed: SmallVec<[HeaderValue; 2]> = headers
                    .get_all(header::CONNECTION)
                    .iter()
                    .cloned()
                    .collect();
                for token in tokens(&listed) {
                    if hop_by_hop_named(token).is_none() {
                        // By `&str`: no `HeaderName` is built; an invalid name removes nothing.
                        headers.remove(token);
                    }
                }
            }
        }
        let keep_te = is_request
            && present[8]
            && !te_listed
            && headers
                .get(header::TE)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
        for (name, present) in HOP_BY_HOP.iter().zip(present) {
            if present && (*name != header::TE || !keep_te) {
                headers.remove(name);
            }
        }
    }
}

/// The hop-by-hop header a `Connection` token names, in any case.
fn hop_by_hop_named(token: &str) -> Option<&'static HeaderName> {
    // Tokens are mostly lowercase already (`keep-alive`, `upgrade`).
    match hop_by_hop_index(token) {
        Some(i) => HOP_BY_HOP.get(i),
        None => HOP_BY_HOP
            .iter()
            .find(|h| token.eq_ignore_ascii_case(h.as_str())),
    }
}

/// Always hop-by-hop, whatever `Connection` says.
/// Where `name` (lowercase, as a `HeaderName` is) is in [`HOP_BY_HOP`]: a
/// match on the string rejects most names by their length alone.
fn hop_by_hop_index(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "trailer" => 5,
        "transfer-encoding" => 6,
        "upgrade" => 7,
        "te" => 8,
        _ => return None,
    })
}

/// `Connection` first: `strip_hop_by_hop` reads its tokens when present;
/// [`hop_by_hop_index`] numbers them.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn req(lines: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get("/p");
        for (k, v) in lines {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn hop_by_hop_names_are_numbered_in_order() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name.as_str()), Some(i), "{name}");
        }
        assert_eq!(hop_by_hop_index("content-length"), None);
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, X-Secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::TE, "trailers".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h, true);
        assert!(h.get("x-secret").is_none());
        assert!(h.get("keep-alive").is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert!(h.get(header::TRANSFER_ENCODING).is_none());
        assert_eq!(h.get(header::TE).unwrap(), "trailers");
        assert_eq!(h.get("x-kept").unwrap(), "1");
        let mut h2 = HeaderMap::new();
        h2.insert(header::TE, "gzip".parse().unwrap());
        strip_hop_by_hop(&mut h2, true);
        assert!(h2.is_empty());
        // Only hop-by-hop names listed: a listed `TE` goes, even `trailers`.
        let mut h3 = HeaderMap::new();
        h3.insert(header::CONNECTION, "close, TE".parse().unwrap());
        h3.insert(header::TE, "trailers".parse().unwrap());
        h3.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h3, true);
        assert_eq!(h3.keys().collect::<Vec<_>>(), ["x-kept"]);
        // A name in a second `Connection` line goes too.
        let mut h4 = HeaderMap::new();
        h4.append(header::CONNECTION, "keep-alive".parse().unwrap());
        h4.append(header::CONNECTION, "X-Later".parse().unwrap());
        h4.insert("x-later", "1".parse().unwrap());
        h4.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h4, false);
        assert_eq!(h4.keys().collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn only_websocket_counts_as_an_upgrade() {
        let mut ws = req(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ]);
        assert!(sanitize(&mut ws).unwrap().websocket);
        assert!(ws.headers().get(header::UPGRADE).is_none());
        let mut h2c = req(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
        ]);
        assert!(!sanitize(&mut h2c).unwrap().websocket);
        assert!(h2c.headers().is_empty());
        let mut no_conn = req(&[("upgrade", "websocket")]);
        assert!(!sanitize(&mut no_conn).unwrap().websocket);
    }

    #[test]
    fn underscore_headers_follow_the_policy_and_never_pose_as_owned_ones() {
        let fresh = || {
            let mut h = HeaderMap::new();
            h.insert("x_consumer_id", "mallory".parse().unwrap());
            h.insert("x_forwarded_for", "10.0.0.1".parse().unwrap());
            h.insert("x_custom", "1".parse().unwrap());
            h.insert("x-plain", "1".parse().unwrap());
            h
        };
        let claim = |n: &str| n == "x-consumer-id";
        let mut h = fresh();
        underscores(&mut h, UnderscoreHeaders::Drop, claim).unwrap();
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-plain"]
        );
        let mut h = fresh();
        underscores(&mut h, UnderscoreHeaders::Allow, claim).unwrap();
        let mut kept: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["x-plain", "x_custom"]);
        let mut h = fresh();
        assert!(underscores(&mut h, UnderscoreHeaders::Reject, claim).is_err());
        let mut clean = HeaderMap::new();
        clean.insert("x-plain", "1".parse().unwrap());
        assert!(underscores(&mut clean, UnderscoreHeaders::Reject, claim).is_ok());
    }

    #[test]
    fn host_must_be_single_and_match_the_target() {
        let mut two = req(&[("host", "a"), ("host", "b")]);
        assert!(sanitize(&mut two).is_err());
        let mut abs = Request::get("http://a.test/p")
            .header("host", "b.test")
            .body(())
            .unwrap();
        assert!(sanitize(&mut abs).is_err());
        let mut same = Request::get("http://A.test:8080/p")
            .header("host", "a.test:8080")
            .body(())
            .unwrap();
        assert!(sanitize(&mut same).is_ok());
        assert!(sanitize(&mut req(&[("host", "a")])).is_ok());
    }
}
