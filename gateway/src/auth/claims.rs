//! Token claims: read once for the checks, kept whole for later lookups.
//!
//! The verify path needs a handful of members: `exp`, `nbf`, `iss`, `aud`, the
//! consumer (`sub` and the others [`consumer_of`] tries), the scopes and the
//! claims that set headers. Building a JSON map of the whole payload for them
//! (a `String` per key, a `Value` per member, a B-tree) was the largest part of a
//! token check around the signature (BENCHMARKS.md, "Product path, seventh
//! wave"). [`read`] walks the payload once: the members the provider reads are
//! kept borrowed from the decoded bytes, every other member is checked exactly
//! as strictly as `serde_json::Value` parsing would (syntax, escapes, UTF-8,
//! numbers in range, nesting depth) without being built, and a member named
//! twice counts with its last value, as in a map.
//!
//! The whole claim set ([`ClaimSet`]) keeps the decoded payload and parses it
//! into a map on the first lookup by name (a rate-limit key, a transform, a
//! filter, a sandbox claim), once per identity: a cached token pays for it once.
//!
//! Never: accept a payload that `serde_json::from_slice::<Map<…>>` refuses, or
//! read a member differently from that map.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use http::HeaderValue;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// One member's value as the verify path reads it; objects are validated but
/// their members are not kept (no check reads inside one).
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimValue<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<ClaimValue<'a>>),
    Object,
}

impl ClaimValue<'_> {
    /// As `Value::as_f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ClaimValue::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// As `Value::as_str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ClaimValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// A view of a parsed `Value`, borrowing its strings.
    fn of(v: &Value) -> ClaimValue<'_> {
        match v {
            Value::Null => ClaimValue::Null,
            Value::Bool(b) => ClaimValue::Bool(*b),
            Value::Number(n) => ClaimValue::Number(n.clone()),
            Value::String(s) => ClaimValue::String(Cow::Borrowed(s)),
            Value::Array(a) => ClaimValue::Array(a.iter().map(ClaimValue::of).collect()),
            Value::Object(_) => ClaimValue::Object,
        }
    }

    /// The same value, borrowing from `self`.
    fn view(&self) -> ClaimValue<'_> {
        match self {
            ClaimValue::String(s) => ClaimValue::String(Cow::Borrowed(s)),
            ClaimValue::Array(a) => ClaimValue::Array(a.iter().map(ClaimValue::view).collect()),
            other => other.clone(),
        }
    }
}

/// Claims looked up by name: the members [`read`] kept, or a parsed map
/// (introspection answers).
pub trait Lookup {
    fn member(&self, name: &str) -> Option<ClaimValue<'_>>;
}

impl Lookup for Map<String, Value> {
    fn member(&self, name: &str) -> Option<ClaimValue<'_>> {
        self.get(name).map(ClaimValue::of)
    }
}

/// The members of a payload the provider reads, borrowed from it.
#[derive(Debug, Default)]
pub struct Members<'a> {
    kept: Vec<(Cow<'a, str>, ClaimValue<'a>)>,
}

impl Lookup for Members<'_> {
    fn member(&self, name: &str) -> Option<ClaimValue<'_>> {
        self.kept
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.view())
    }
}

/// Reads a JWT payload (a JSON object) in one pass, keeping the members
/// `wanted` names. Refuses exactly what parsing it into a `Map` refuses.
pub fn read<'a>(
    payload: &'a [u8],
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Members<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let members = de.deserialize_map(MembersVisitor { wanted })?;
    de.end()?;
    Ok(members)
}

struct MembersVisitor<'w> {
    wanted: &'w dyn Fn(&str) -> bool,
}

impl<'de> Visitor<'de> for MembersVisitor<'_> {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
        let mut members = Members::default();
        while let Some(Key(key)) = map.next_key()? {
            if !(self.wanted)(&key) {
                map.next_value::<Strict>()?;
                continue;
            }
            let value: ClaimValue<'de> = map.next_value()?;
            // Named twice: the last value counts, as in a map.
            match members.kept.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => members.kept.push((key, value)),
            }
        }
        Ok(members)
    }
}

/// A member name, borrowed unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for ClaimValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ClaimValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(ClaimValue::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(ClaimValue::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(ClaimValue::Number(n.into()))
            }
            // As `Value`: a float JSON cannot hold becomes null.
            fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                Ok(Number::from_f64(n).map_or(ClaimValue::Null, ClaimValue::Number))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ClaimValue::String(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ClaimValue::String(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(ClaimValue::String(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ClaimValue::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(ClaimValue::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Strict.visit_map(map).map(|_| ClaimValue::Object)
            }
        }
        d.deserialize_any(V)
    }
}

/// A value checked as `Value` parsing checks it (every string and number is
/// parsed through `deserialize_any`, unlike [`IgnoredAny`] which skips escapes
/// and number ranges unchecked) and then dropped.
struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Strict)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Strict;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        // Keys are strings: parsed (escapes checked) like any other.
        while map.next_key::<Strict>()?.is_some() {
            map.next_value::<Strict>()?;
        }
        Ok(Strict)
    }
}

/// Every claim of a token, for lookups by name after the checks: the decoded
/// payload, parsed into a map on first use.
pub struct ClaimSet {
    payload: Box<[u8]>,
    map: OnceLock<Map<String, Value>>,
}

impl ClaimSet {
    /// The claims of a payload that [`read`] accepted.
    pub fn from_payload(payload: &[u8]) -> Self {
        Self {
            payload: payload.into(),
            map: OnceLock::new(),
        }
    }

    /// Claims already parsed (an introspection answer).
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self {
            payload: Box::default(),
            map: OnceLock::from(map),
        }
    }

    /// The whole set (parsed now if it was not yet).
    pub fn map(&self) -> &Map<String, Value> {
        // `read` accepted the payload, and it refuses whatever a map refuses,
        // so this parse cannot fail; an empty map would only hide claims.
        self.map
            .get_or_init(|| serde_json::from_slice(&self.payload).unwrap_or_default())
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map().get(name)
    }
}

impl fmt::Debug for ClaimSet {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.map.get() {
            Some(map) => map.fmt(f),
            None => f.write_str("{…unparsed…}"),
        }
    }
}

/// The consumer name: the configured claim, else `sub`, `client_id`, `azp`,
/// `username`; a non-empty string, or a number in its JSON form.
pub fn consumer_of(claims: &dyn Lookup, preferred: Option<&str>) -> Option<String> {
    preferred
        .into_iter()
        .chain(CONSUMER_CLAIMS)
        .find_map(|c| match claims.member(c) {
            Some(ClaimValue::String(s)) if !s.is_empty() => Some(s.into_owned()),
            Some(ClaimValue::Number(n)) => Some(n.to_string()),
            _ => None,
        })
}

/// The members [`consumer_of`] tries after the configured one.
pub const CONSUMER_CLAIMS: [&str; 4] = ["sub", "client_id", "azp", "username"];
/// Scopes from the claims `keys` (the provider's `scopeClaims`, by default
/// `scope` and `scp`): each a space-separated string or an array of strings.
pub fn scopes_of(claims: &dyn Lookup, keys: &[impl AsRef<str>]) -> Box<[Box<str>]> {
    let mut out: Vec<Box<str>> = Vec::new();
    for key in keys {
        match claims.member(key.as_ref()) {
            Some(ClaimValue::String(s)) => out.extend(s.split_whitespace().map(Box::from)),
            Some(ClaimValue::Array(a)) => {
                out.extend(a.iter().filter_map(ClaimValue::as_str).map(Box::from));
            }
            _ => {}
        }
    }
    out.into_boxed_slice()
}

/// Header values from claims; a claim that cannot be a header value is skipped.
pub fn claim_headers(
    claims: &dyn Lookup,
    mapping: &[(String, http::HeaderName)],
) -> Vec<(http::HeaderName, HeaderValue)> {
    mapping
        .iter()
        .filter_map(|(claim, header)| {
            let text = match claims.member(claim)? {
                ClaimValue::String(s) => s.into_owned(),
                ClaimValue::Number(n) => n.to_string(),
                ClaimValue::Bool(b) => b.to_string(),
                ClaimValue::Array(a) => a
                    .iter()
                    .filter_map(|v| match v {
                        ClaimValue::String(s) => Some(s.to_string()),
                        ClaimValue::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => return None,
            };
            HeaderValue::from_str(&text)
                .ok()
                .map(|v| (header.clone(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;

    const ALL: &dyn Fn(&str) -> bool = &|_| true;

    /// Every member [`read`] keeps equals the map's (`ClaimValue::of`), and it
    /// refuses exactly the payloads the map refuses: red when `Strict` is
    /// replaced by `IgnoredAny` (lone surrogates and out-of-range numbers in
    /// skipped members would pass), or when a duplicate keeps its first value.
    #[test]
    fn reads_what_a_map_reads_and_refuses_what_it_refuses() {
        let cases: &[&str] = &[
            r#"{"iss":"https://i/","sub":"alice","exp":1e10,"nbf":-3,"aud":["a",1,null],"scope":"a b"}"#,
            r#"{"sub":"x","sub":"y","exp":1,"exp":"late"}"#,
            r#"{"s\u0075b":"esc\"aped","n":{"deep":[1,{"a":null}]},"big":18446744073709551615,"neg":-9223372036854775808}"#,
            r#"{"f":1.5,"t":true,"o":{},"e":[],"u":"\u00e9\ud83d\ude00"}"#,
            r#"{}"#,
            // Refused by the map, so by `read` too.
            r#"{"x":"\ud800"}"#,
            r#"{"x":1e400}"#,
            r#"{"x":[1e400]}"#,
            r#"{"x":{"y":"\ud800"}}"#,
            r#"{"\ud800":1}"#,
            r#"{"x":"a\u00"}"#,
            r#"{"x":1}x"#,
            r#"[1]"#,
            r#""s""#,
            r#"{"x":"tab	inside"}"#,
            "{\"x\":\"\u{ff}\"}",
        ];
        for case in cases {
            let map = serde_json::from_str::<Map<String, Value>>(case);
            let members = read(case.as_bytes(), ALL);
            assert_eq!(members.is_ok(), map.is_ok(), "{case}");
            // Every member skipped: the same verdict.
            let skipped = read(case.as_bytes(), &|_| false);
            assert_eq!(skipped.is_ok(), map.is_ok(), "{case} (skipped)");
            let (Ok(map), Ok(members)) = (map, members) else {
                continue;
            };
            for (k, v) in &map {
                assert_eq!(members.member(k), Some(ClaimValue::of(v)), "{case}: {k}");
            }
            assert_eq!(members.kept.len(), map.len(), "{case}");
        }
        // Invalid UTF-8 inside a skipped string.
        let bytes = b"{\"skipped\":\"\xff\",\"sub\":\"a\"}";
        assert!(serde_json::from_slice::<Map<String, Value>>(bytes).is_err());
        assert!(read(bytes, &|k| k == "sub").is_err());
    }

    #[test]
    fn only_wanted_members_are_kept() {
        let m = read(br#"{"sub":"a","other":[1,2],"exp":5}"#, &|k| k != "other").unwrap();
        assert_eq!(m.member("sub"), Some(ClaimValue::String("a".into())));
        assert_eq!(m.member("other"), None);
        assert_eq!(m.member("exp").and_then(|v| v.as_f64()), Some(5.0));
    }

    #[test]
    fn the_claim_set_parses_once_on_demand() {
        let set = ClaimSet::from_payload(br#"{"tier":"gold","n":7}"#);
        assert!(format!("{set:?}").contains("unparsed"));
        assert_eq!(set.get("tier").and_then(Value::as_str), Some("gold"));
        assert_eq!(set.get("n"), Some(&Value::from(7)));
        assert!(format!("{set:?}").contains("gold"));
    }

    #[test]
    fn scopes_and_consumer() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"scope":"a b","scp":["c"],"client_id":"app"}"#).unwrap();
        for lookup in [
            &claims as &dyn Lookup,
            &read(br#"{"scope":"a b","scp":["c"],"client_id":"app"}"#, ALL).unwrap(),
        ] {
            let scopes = scopes_of(lookup, &mgw_bundle::config::DEFAULT_SCOPE_CLAIMS);
            let s: Vec<&str> = scopes.iter().map(|s| &**s).collect();
            assert_eq!(s, ["a", "b", "c"]);
            let scopes = scopes_of(lookup, &["scp", "client_id"]);
            let s: Vec<&str> = scopes.iter().map(|s| &**s).collect();
            assert_eq!(s, ["c", "app"]);
            assert_eq!(consumer_of(lookup, None).as_deref(), Some("app"));
        }
        let numeric = read(br#"{"sub":"","client_id":12.50}"#, ALL).unwrap();
        assert_eq!(consumer_of(&numeric, None).as_deref(), Some("12.5"));
    }

    #[test]
    fn strict_skipping_is_not_ignored_any() {
        // What `IgnoredAny` lets through and a map does not.
        let lone = br#"{"x":"\ud800"}"#;
        assert!(serde_json::from_slice::<IgnoredAny>(lone).is_ok());
        assert!(serde_json::from_slice::<Strict>(lone).is_err());
    }
}
