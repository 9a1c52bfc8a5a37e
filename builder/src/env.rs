//! The one seam through which registry and Docker code reads the environment
//! (`DOCKER_CONFIG`, `HOME`, `XDG_CACHE_HOME`, `MGW_REGISTRY_*`), so tests can pass
//! a map instead of mutating the process environment. It must never log values:
//! some of them are credentials.

use std::collections::BTreeMap;

/// Either the process environment or a fixed map.
#[derive(Clone, Default)]
pub struct Env {
    map: Option<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values may be secrets.
        match &self.map {
            None => f.write_str("Env(process)"),
            Some(m) => f.debug_list().entries(m.keys()).finish(),
        }
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { map: None }
    }

    /// A fixed map (tests).
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            map: Some(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// A non-empty variable's value.
    pub fn var(&self, name: &str) -> Option<String> {
        let value = match &self.map {
            None => std::env::var(name).ok(),
            Some(m) => m.get(name).cloned(),
        };
        value.filter(|v| !v.is_empty())
    }
}
