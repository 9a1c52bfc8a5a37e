//! A compact JWS (RFC 7515 §7.1, `header.payload.signature`) taken apart once.
//!
//! One pass finds the two dots; the header is base64url-decoded once into a
//! typed view that borrows from the decoded bytes and reads only `alg`, `kid`
//! and whether `crit` is present (every other member is skipped without being
//! built). The payload and the signature stay encoded until the signature is
//! checked: nothing an attacker sends is decoded past the header before that.
//!
//! Strictness is the same as reading the header into a JSON map: `alg` must be a
//! string naming an algorithm we know (`none` is not one), `kid` a string when
//! present (`null` or a number is refused), any `crit` (even `null`) refuses the
//! token because we implement no extension. A member named twice is refused
//! (RFC 7515 §4: "MUST either reject ... or use a JSON parser that returns only
//! the lexically last duplicate member name"; rejecting is the stricter choice).
//!
//! base64url is decoded as strictly as RFC 7515 §2 asks (no padding, no other
//! alphabet, no non-zero trailing bits), with SIMD (`base64-simd`): the table
//! decoder of the `base64` crate was about 7 instructions a character, 4.7k for
//! the three parts of an RS256 token (1.2k now).

use std::borrow::Cow;

use base64_simd::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::Failure;

/// The three parts of a compact JWS, still encoded.
pub struct Compact<'t> {
    /// `header.payload`: what the signature covers.
    pub signing_input: &'t str,
    pub header: &'t str,
    pub payload: &'t str,
    pub signature: &'t str,
}

/// Splits `header.payload.signature`: exactly two dots, else invalid.
pub fn split(token: &str) -> Result<Compact<'_>, Failure> {
    let first = token.find('.').ok_or(Failure::Invalid)?;
    let second = first + 1 + token[first + 1..].find('.').ok_or(Failure::Invalid)?;
    if token[second + 1..].contains('.') {
        return Err(Failure::Invalid);
    }
    Ok(Compact {
        signing_input: &token[..second],
        header: &token[..first],
        payload: &token[first + 1..second],
        signature: &token[second + 1..],
    })
}

/// The parts of a JOSE header we read; everything else is ignored.
#[derive(Debug, PartialEq, Eq)]
pub struct Header<'h> {
    pub alg: Algorithm,
    pub kid: Option<Cow<'h, str>>,
}

/// The header members as JSON has them; `alg` is checked into [`Header`].
#[derive(Deserialize)]
struct RawHeader<'h> {
    #[serde(borrow)]
    alg: Cow<'h, str>,
    #[serde(borrow, default, deserialize_with = "present_str")]
    kid: Option<Cow<'h, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// A member that, when present, must be a string (`null` is not absent);
/// borrowed from the input unless JSON escapes had to be undone.
fn present_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Str;
    impl<'de> serde::de::Visitor<'de> for Str {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
    }
    d.deserialize_str(Str).map(Some)
}

/// A member whose presence is what counts, whatever its value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// Decodes the encoded header into `buf` (cleared first) and reads it.
pub fn header<'h>(encoded: &str, buf: &'h mut Vec<u8>) -> Result<Header<'h>, Failure> {
    decode_into(encoded, buf)?;
    let raw: RawHeader<'h> = serde_json::from_slice(buf).map_err(|_| Failure::Invalid)?;
    // We implement no JWS extension, so a token that needs one is refused.
    if raw.crit {
        return Err(Failure::Invalid);
    }
    let alg = raw.alg.parse::<Algorithm>().map_err(|_| Failure::Invalid)?;
    Ok(Header { alg, kid: raw.kid })
}

/// Decodes a base64url part (the payload) into `buf` (cleared first).
pub fn decode_into<'b>(encoded: &str, buf: &'b mut Vec<u8>) -> Result<&'b [u8], Failure> {
    buf.clear();
    URL_SAFE_NO_PAD
        .decode_append(encoded, buf)
        .map_err(|_| Failure::Invalid)?;
    Ok(buf)
}

/// Decodes a base64url part (the signature).
pub fn decode(encoded: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode_to_vec(encoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode_to_string(s)
    }

    fn read(h: &str) -> Result<(Algorithm, Option<String>), Failure> {
        let mut buf = Vec::new();
        header(&b64(h), &mut buf).map(|h| (h.alg, h.kid.map(Cow::into_owned)))
    }

    #[test]
    fn splits_on_exactly_two_dots() {
        let c = split("aa.bbb.c").unwrap();
        assert_eq!(
            (c.header, c.payload, c.signature, c.signing_input),
            ("aa", "bbb", "c", "aa.bbb")
        );
        let c = split("..").unwrap();
        assert_eq!((c.header, c.payload, c.signature), ("", "", ""));
        // Wrong segment counts (red without the third-dot check: "a.b.c.d").
        for t in ["", "a", "a.b", "a.b.c.d", "a.b.c.", "...."] {
            assert!(split(t).is_err(), "{t}");
        }
    }

    #[test]
    fn reads_alg_and_kid_and_ignores_the_rest() {
        assert_eq!(
            read(r#"{"alg":"RS256","kid":"k-1","typ":"JWT","x5c":["a"],"jwk":{"k":1}}"#),
            Ok((Algorithm::RS256, Some("k-1".into())))
        );
        assert_eq!(read(r#"{"alg":"ES256"}"#), Ok((Algorithm::ES256, None)));
        // An escaped kid is unescaped (owned), not refused.
        assert_eq!(
            read(r#"{"alg":"HS256","kid":"a\/b"}"#),
            Ok((Algorithm::HS256, Some("a/b".into())))
        );
    }

    #[test]
    fn refuses_hostile_or_broken_headers() {
        for (why, h) in [
            ("alg none", r#"{"alg":"none"}"#),
            ("alg unknown", r#"{"alg":"RS1"}"#),
            ("alg missing", r#"{"kid":"k"}"#),
            ("alg null", r#"{"alg":null}"#),
            ("alg not a string", r#"{"alg":256}"#),
            ("kid null", r#"{"alg":"RS256","kid":null}"#),
            ("kid not a string", r#"{"alg":"RS256","kid":7}"#),
            ("crit", r#"{"alg":"RS256","crit":["exp"]}"#),
            ("crit null", r#"{"alg":"RS256","crit":null}"#),
            ("alg twice", r#"{"alg":"HS256","alg":"RS256"}"#),
            ("not an object", r#"["alg","RS256"]"#),
            ("not JSON", r#"{"alg":"RS256""#),
            ("trailing bytes", r#"{"alg":"RS256"}x"#),
        ] {
            assert_eq!(read(h), Err(Failure::Invalid), "{why}: {h}");
        }
    }

    #[test]
    fn refuses_bad_base64() {
        let mut buf = Vec::new();
        for enc in [
            "eyJhbGciOiJSUzI1NiJ9=",
            "eyJhbGciOiJSUzI1NiJ9+",
            "e",
            "ey!hbGciOiJSUzI1NiJ9",
        ] {
            assert!(header(enc, &mut buf).is_err(), "{enc}");
        }
        assert!(decode_into("e30!", &mut buf).is_err());
        assert_eq!(decode_into("e30", &mut buf).unwrap(), b"{}");
        // Non-zero trailing bits: `e30` is canonical, `e31` decodes to the same
        // bytes only if the last bits are ignored (the `base64` crate refuses it).
        assert!(decode_into("e31", &mut buf).is_err());
        assert!(decode("e31").is_none());
        // Longer than one SIMD block, with a bad character past the first block.
        let long = "A".repeat(100);
        assert_eq!(decode(&long).map(|v| v.len()), Some(75));
        assert!(decode(&format!("{long}A-_*")).is_none());
        assert!(decode(&format!("{long}A-_=")).is_none());
    }
}
