//! Image platforms (`linux/amd64`, `linux/arm64`): parsing `--platform` and
//! `--gateway-binary PLATFORM=PATH`, the host's platform, and where the
//! workspace's gateway build for each one lives. A leaf: imports nothing from the
//! crate.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A platform mgw builds gateway images for. The order (amd64 first) is the
/// order of the manifests in an image index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    Amd64,
    Arm64,
}

impl Platform {
    pub const ALL: [Platform; 2] = [Platform::Amd64, Platform::Arm64];

    /// The OCI/GOARCH architecture name.
    pub fn architecture(self) -> &'static str {
        match self {
            Platform::Amd64 => "amd64",
            Platform::Arm64 => "arm64",
        }
    }

    /// The OS; always `linux`.
    pub fn os(self) -> &'static str {
        "linux"
    }

    /// The Rust target the gateway is built for.
    pub fn musl_target(self) -> &'static str {
        match self {
            Platform::Amd64 => "x86_64-unknown-linux-musl",
            Platform::Arm64 => "aarch64-unknown-linux-musl",
        }
    }

    /// From an OCI architecture name (`amd64`, `arm64`).
    pub fn from_architecture(arch: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.architecture() == arch)
    }

    /// The platform of the machine `mgw` runs on (amd64 when it is neither).
    pub fn host() -> Platform {
        match std::env::consts::ARCH {
            "aarch64" => Platform::Arm64,
            _ => Platform::Amd64,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os(), self.architecture())
    }
}

/// As its name, `linux/arm64`.
impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Platform {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Platform, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform `{0}`; mgw builds `linux/amd64` and `linux/arm64` (or `all`)")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;

    /// `linux/amd64`, `linux/arm64` (also `linux/arm64/v8`).
    fn from_str(s: &str) -> Result<Platform, UnknownPlatform> {
        match s.trim() {
            "linux/amd64" => Ok(Platform::Amd64),
            "linux/arm64" | "linux/arm64/v8" => Ok(Platform::Arm64),
            other => Err(UnknownPlatform(other.to_owned())),
        }
    }
}

/// A `--platform` value: comma-separated platforms or `all`; sorted, no repeats.
pub fn parse_list(value: &str) -> Result<Vec<Platform>, UnknownPlatform> {
    let mut list = Vec::new();
    for part in value.split(',') {
        if part.trim() == "all" {
            list.extend(Platform::ALL);
        } else {
            list.push(part.parse()?);
        }
    }
    list.sort();
    list.dedup();
    Ok(list)
}

/// A `--gateway-binary` value: `PLATFORM=PATH`, or a bare `PATH` for the host's
/// platform (a path that merely contains `=` stays a path unless what precedes
/// the first `=` is a platform).
pub fn parse_binary(value: &str) -> (Platform, PathBuf) {
    match value.split_once('=') {
        Some((platform, path)) => match platform.parse() {
            Ok(p) => (p, PathBuf::from(path)),
            Err(_) => (Platform::host(), PathBuf::from(value)),
        },
        None => (Platform::host(), PathBuf::from(value)),
    }
}

/// The workspace's release build of the gateway for `platform`, relative to the
/// `target` directory: `<target>/<triple>/release/mgw-gateway`.
pub fn workspace_binary(target: &Path, platform: Platform) -> PathBuf {
    target
        .join(platform.musl_target())
        .join("release/mgw-gateway")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_lists_parse_sorted_and_deduplicated() {
        assert_eq!(
            parse_list("linux/arm64,linux/amd64,linux/arm64").unwrap(),
            [Platform::Amd64, Platform::Arm64]
        );
        assert_eq!(parse_list("all").unwrap(), Platform::ALL);
        assert_eq!(parse_list("linux/arm64/v8").unwrap(), [Platform::Arm64]);
        let err = parse_list("linux/amd64,windows/amd64").unwrap_err();
        assert_eq!(err.0, "windows/amd64");
        assert!(err.to_string().contains("`linux/arm64`"), "{err}");
    }

    #[test]
    fn gateway_binaries_name_their_platform_or_mean_the_host() {
        assert_eq!(
            parse_binary("linux/arm64=/x/gw"),
            (Platform::Arm64, PathBuf::from("/x/gw"))
        );
        assert_eq!(
            parse_binary("/x/gw"),
            (Platform::host(), PathBuf::from("/x/gw"))
        );
        assert_eq!(
            parse_binary("/x/a=b"),
            (Platform::host(), PathBuf::from("/x/a=b"))
        );
        assert_eq!(Platform::Arm64.to_string(), "linux/arm64");
    }
}
