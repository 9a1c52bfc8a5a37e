//! `X-Request-Id`: kept when the client (or a proxy in front) sent a sane one,
//! generated otherwise, so every log line, analytics event and error body of one
//! request can be joined. Never trusts an id that could inject into logs.

use http::HeaderValue;

const MAX_LEN: usize = 128;

/// The incoming id if it is 1..=128 bytes of `[A-Za-z0-9._:-]`, else a new one.
pub fn take_or_generate(incoming: Option<&HeaderValue>) -> HeaderValue {
    match incoming {
        Some(v) if is_sane(v.as_bytes()) => v.clone(),
        _ => generate(),
    }
}

fn is_sane(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// 128 random bits as 32 lowercase hex digits (not a security token: a
/// thread-local fast generator is enough for correlation).
pub fn generate() -> HeaderValue {
    let mut buf = [0u8; 32];
    let n = fastrand::u128(..);
    for (i, b) in buf.iter_mut().enumerate() {
        let nibble = ((n >> (124 - 4 * i)) & 0xf) as u8;
        *b = if nibble < 10 {
            b'0' + nibble
        } else {
            b'a' + nibble - 10
        };
    }
    // One allocation that every clone (upstream request, response, analytics)
    // shares by reference count; a copied slice would need a second one at
    // the first clone.
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
        .expect("hex is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_and_replaces_the_rest() {
        let ok = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(take_or_generate(Some(&ok)), ok);
        for bad in ["", "a b", "x\"y", "\u{7f}"] {
            if let Ok(v) = HeaderValue::from_str(bad) {
                assert_ne!(take_or_generate(Some(&v)), v);
            }
        }
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(take_or_generate(Some(&long)).len(), 32);
        let g = generate();
        assert_eq!(g.len(), 32);
        assert!(is_sane(g.as_bytes()));
        assert_ne!(generate(), generate());
    }
}
