//! The one seam through which the builder reads the environment (`DOCKER_HOST`,
//! `DOCKER_CONFIG`, `HOME`, `XDG_CACHE_HOME`, `MGW_CACHE_DIR`, `MGW_REGISTRY_*`,
//! `MGW_GATEWAY_BINARY`, `SOURCE_DATE_EPOCH`, `CI`), so tests can pass a map instead
//! of mutating the process environment, and the rules derived from it (the cache
//! directory) are written once. It must never log values: some of them are
//! credentials.

use std::collections::BTreeMap;
use std::path::PathBuf;

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

    /// Whether the variable is set at all (even empty), like a shell's `${NAME+x}`.
    pub fn is_set(&self, name: &str) -> bool {
        match &self.map {
            None => std::env::var_os(name).is_some(),
            Some(m) => m.contains_key(name),
        }
    }

    /// mgw's cache directory (base images pulled for `--base`, files `mgw run`
    /// extracts): `$MGW_CACHE_DIR`, else `$XDG_CACHE_HOME/mgw`, else
    /// `~/.cache/mgw`, else `mgw-cache` in the temporary directory.
    pub fn cache_dir(&self) -> PathBuf {
        if let Some(d) = self.var("MGW_CACHE_DIR") {
            return PathBuf::from(d);
        }
        if let Some(d) = self.var("XDG_CACHE_HOME") {
            return PathBuf::from(d).join("mgw");
        }
        self.var("HOME").map_or_else(
            || std::env::temp_dir().join("mgw-cache"),
            |h| PathBuf::from(h).join(".cache").join("mgw"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_dir_is_mgw_cache_dir_then_xdg_then_home() {
        let all = [
            ("MGW_CACHE_DIR", "/m"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(Env::from_map(all).cache_dir(), PathBuf::from("/m"));
        assert_eq!(
            Env::from_map(all[1..].iter().copied()).cache_dir(),
            PathBuf::from("/x/mgw")
        );
        // An empty variable counts as unset.
        assert_eq!(
            Env::from_map([
                ("MGW_CACHE_DIR", ""),
                ("XDG_CACHE_HOME", ""),
                ("HOME", "/h")
            ])
            .cache_dir(),
            PathBuf::from("/h/.cache/mgw")
        );
        assert_eq!(
            Env::from_map::<&str, &str>([]).cache_dir(),
            std::env::temp_dir().join("mgw-cache")
        );
    }
}
