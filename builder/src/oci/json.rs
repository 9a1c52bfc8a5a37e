//! Canonical JSON for the documents that are hashed into image digests.
//!
//! The config, manifest and index are named by the sha256 of their bytes, so they must
//! serialize identically every time. `oci-spec` keeps labels, annotations and exposed
//! ports in `HashMap`s, whose iteration order changes from run to run. Going through
//! [`serde_json::Value`] and writing every object's keys in sorted order fixes that,
//! whether or not some crate in the graph turns on serde_json's `preserve_order`.
//! Output is compact (no whitespace). This module must never emit a map in any order
//! other than sorted by key bytes.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::Value;

use super::OciError;

/// Serializes `value` as compact JSON with every object's keys sorted.
pub(crate) fn to_canonical_json<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, OciError> {
    let json_err = |source| OciError::Json {
        action: "serialize",
        what: what.to_owned(),
        source,
    };
    let value = serde_json::to_value(value).map_err(json_err)?;
    serde_json::to_vec(&Sorted(&value)).map_err(json_err)
}

/// A [`Value`] that serializes objects with sorted keys, recursively.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Sorted(value))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Sorted(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn hash_map_keys_come_out_sorted_and_compact() {
        // Many keys, so a HashMap's random order would almost surely differ from sorted.
        let map: HashMap<String, Vec<HashMap<String, u32>>> = (0..64)
            .map(|i| {
                let inner = (0..8).map(|j| (format!("k{j}"), j)).collect();
                (format!("key-{i:02}"), vec![inner])
            })
            .collect();
        let json = String::from_utf8(to_canonical_json(&map, "test").unwrap()).unwrap();
        assert!(!json.contains(' ') && !json.contains('\n'));
        let positions: Vec<usize> = (0..64)
            .map(|i| json.find(&format!("\"key-{i:02}\"")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
        assert!(json.starts_with(r#"{"key-00":[{"k0":0,"k1":1,"k2":2,"#));
    }
}
