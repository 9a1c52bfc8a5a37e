//! serde over the positioned YAML tree.
//!
//! `mgw.yaml` is read into wire structs with `deny_unknown_fields`, like any serde
//! config; deserializing from a [`Node`] instead of text lets every error carry the
//! line and column of the node it is about (the innermost one wins) and, together
//! with `serde_path_to_error`, its key path. Unknown keys and enum values get a
//! "did you mean" hint. Like serde_yaml, a plain scalar read into a string keeps its
//! text (`version: 1.0` is `"1.0"`). This module knows nothing about mgw's schema.

use std::fmt;

use serde::de::{self, DeserializeOwned, Visitor};

use super::error::{KeyPath, list, suggestion};
use super::yaml::{Entry, Kind, Mark, Node, Resolved};

/// A deserialization error with the position of the node it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub message: String,
    pub mark: Mark,
    /// Set for unknown keys.
    pub unknown_key: Option<String>,
}

impl DeError {
    fn at(mut self, mark: Mark) -> Self {
        if !self.mark.is_known() {
            self.mark = mark;
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            mark: Mark::UNKNOWN,
            unknown_key: None,
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!("expected {exp}, found {unexp}"))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format_args!(
            "unknown key `{field}`{}; valid keys here: {}",
            suggestion(field, expected.iter().copied()),
            list(expected.iter(), 30)
        ));
        e.unknown_key = Some(field.to_owned());
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format_args!(
            "`{variant}` is not a valid value{}; expected {}",
            suggestion(variant, expected.iter().copied()),
            list(expected.iter().map(|v| v.to_string()), 30).replace(" and ", " or ")
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing required key `{field}`"))
    }
}

/// A deserialization failure with its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub path: KeyPath,
    pub error: DeError,
}

/// Deserializes `T` from a node, reporting the key path and position of the first
/// problem.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, PathError> {
    serde_path_to_error::deserialize(node).map_err(|e| {
        let mut path = KeyPath::root();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => path = path.index(*index),
                serde_path_to_error::Segment::Map { key } => path = path.key(key.clone()),
                serde_path_to_error::Segment::Enum { variant } => {
                    path = path.key(variant.clone());
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        // serde_path_to_error already ends the path with an unknown key's name.
        PathError {
            path,
            error: e.into_inner(),
        }
    })
}

fn visit_scalar<'de, V: Visitor<'de>>(
    text: &'de str,
    r: Resolved<'de>,
    v: V,
) -> Result<V::Value, DeError> {
    match r {
        Resolved::Null => v.visit_unit(),
        Resolved::Bool(b) => v.visit_bool(b),
        Resolved::Int(i) => {
            if let Ok(x) = i64::try_from(i) {
                v.visit_i64(x)
            } else if let Ok(x) = u64::try_from(i) {
                v.visit_u64(x)
            } else {
                v.visit_i128(i)
            }
        }
        Resolved::Float(f) => v.visit_f64(f),
        Resolved::Str(_) => v.visit_borrowed_str(text),
    }
}

impl<'de> de::Deserializer<'de> for &'de Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.kind {
            Kind::Scalar(s) => visit_scalar(&s.text, s.resolve(), v),
            Kind::Seq(items) => v.visit_seq(SeqDe { iter: items.iter() }),
            Kind::Map(entries) => v.visit_map(MapDe {
                iter: entries.iter(),
                value: None,
            }),
        };
        r.map_err(|e| e.at(self.mark))
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.kind {
            Kind::Scalar(s) if s.resolve() != Resolved::Null => v
                .visit_borrowed_str(&s.text)
                .map_err(|e: DeError| e.at(self.mark)),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            v.visit_none()
        } else {
            v.visit_some(self).map_err(|e| e.at(self.mark))
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self).map_err(|e| e.at(self.mark))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.kind {
            Kind::Scalar(s) if s.resolve() != Resolved::Null => {
                let de = de::value::BorrowedStrDeserializer::<DeError>::new(&s.text);
                v.visit_enum(de).map_err(|e| e.at(self.mark))
            }
            _ => Err(DeError {
                message: format!("expected a string, found {}", self.describe()),
                mark: self.mark,
                unknown_key: None,
            }),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct ignored_any
    }
}

struct SeqDe<'de> {
    iter: std::slice::Iter<'de, Node>,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'de> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some(n) => seed.deserialize(n).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDe<'de> {
    iter: std::slice::Iter<'de, Entry>,
    value: Option<&'de Node>,
}

impl<'de> de::MapAccess<'de> for MapDe<'de> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some(e) => {
                self.value = Some(&e.value);
                seed.deserialize(KeyDe(e)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(n) => seed.deserialize(n),
            None => Err(de::Error::custom("value requested before key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// A mapping key: always a string.
struct KeyDe<'de>(&'de Entry);

impl<'de> de::Deserializer<'de> for KeyDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_borrowed_str(&self.0.key)
            .map_err(|e: DeError| e.at(self.0.key_mark))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::project::yaml::parse;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Doc {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Item {
        count: u32,
        flag: Option<bool>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    enum Mode {
        RoundRobin,
        Failover,
    }

    fn de(text: &str) -> Result<Doc, PathError> {
        from_node(&parse(text, false).unwrap())
    }

    #[test]
    fn reads_plain_scalars_as_strings_when_asked() {
        let d = de("name: 1.0\nitems: [{count: 3, flag: true}]\nlabels: {a: 1}\nmode: failover\n")
            .unwrap();
        assert_eq!(d.name, "1.0");
        assert_eq!(d.items[0].count, 3);
        assert_eq!(d.labels["a"], "1");
        assert_eq!(d.mode, Some(Mode::Failover));
    }

    #[test]
    fn unknown_key_names_itself_with_a_suggestion() {
        let e = de("name: x\nitems:\n  - count: 1\n    flg: true\n").unwrap_err();
        assert_eq!(e.path.to_string(), "items[0].flg");
        assert_eq!(e.error.mark, Mark { line: 4, column: 5 });
        assert!(
            e.error.message.contains("did you mean `flag`"),
            "{}",
            e.error.message
        );
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let e = de("name: x\nitems:\n  - count: lots\n").unwrap_err();
        assert_eq!(e.path.to_string(), "items[0].count");
        assert_eq!(
            e.error.mark,
            Mark {
                line: 3,
                column: 12
            }
        );
        assert!(
            e.error.message.contains("expected u32"),
            "{}",
            e.error.message
        );
        let e = de("name: x\nmode: roundrobin\n").unwrap_err();
        assert!(
            e.error.message.contains("did you mean `roundRobin`"),
            "{}",
            e.error.message
        );
        assert_eq!(e.error.mark.line, 2);
    }

    #[test]
    fn missing_key_points_at_the_mapping() {
        let e = de("name: x\nitems:\n  - flag: true\n").unwrap_err();
        assert_eq!(e.path.to_string(), "items[0]");
        assert_eq!(e.error.mark, Mark { line: 3, column: 5 });
        assert!(e.error.message.contains("missing required key `count`"));
    }
}
