//! Image references as users type them: `[registry/]repository[:tag][@sha256:…]`.
//!
//! The parser follows Docker's rules, so a reference means here what it means to
//! `docker pull`: the first component is a registry host only if it holds a `.` or
//! a `:` or is `localhost`, otherwise the image is on Docker Hub (`library/` added
//! for one-component names). It must never guess a registry from anything but the
//! text itself, and never accept a digest that is not a well-formed sha256.

use std::fmt;
use std::net::IpAddr;

use crate::oci::Digest;

/// Docker Hub, as written in references and as its registry API is reached.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry host as written (`ghcr.io`, `127.0.0.1:5000`), `docker.io` for
    /// Docker Hub.
    pub registry: String,
    /// The repository inside the registry (`team/petstore-gw`, `library/alpine`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not an image reference ({reason}); expected e.g. `registry.example.com/team/gw:1.0.0` or `…@sha256:<64 hex>`"
)]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl Reference {
    /// Parses `input`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |reason: &str| ReferenceError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (
                r,
                Some(d.parse::<Digest>().map_err(|e| err(&e.to_string()))?),
            ),
            None => (input, None),
        };
        // A tag follows the last `:` that comes after the last `/`.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let valid = !t.is_empty()
                && t.len() <= 128
                && !t.starts_with(['.', '-'])
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !valid {
                return Err(err(&format!("invalid tag `{t}`")));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty()
            || repository.split('/').any(|c| {
                c.is_empty()
                    || !c.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'_' | b'-')
                    })
            })
        {
            return Err(err(
                "repository components are lowercase letters, digits, `.`, `_` and `-`",
            ));
        }
        if registry.is_empty() || registry.contains(['@', ' ']) {
            return Err(err("invalid registry host"));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// A reference from the `repository` of an image (`host/path`, no tag) and a tag.
    pub fn from_repository(repository: &str, tag: &str) -> Result<Self, ReferenceError> {
        Self::parse(&format!("{repository}:{tag}"))
    }

    /// The host the registry API is reached at (`registry-1.docker.io` for Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// `registry/repository`, the name before `:tag` or `@digest`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository@sha256:…` for `digest`.
    pub fn with_digest(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.name())
    }

    /// What to ask the registry for: the digest when pinned, else the tag
    /// (`latest` when neither is given).
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether `host` (with an optional `:port`) is a loopback address, the only kind
/// of registry mgw talks plain `http://` to without `--insecure`.
pub fn is_loopback(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules_for_the_registry_host() {
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/alpine")
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = Reference::parse("team/gw:1.0").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "team/gw")
        );
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        let r = Reference::parse("127.0.0.1:5000/team/gw:1.0-abc").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/gw");
        assert_eq!(r.tag.as_deref(), Some("1.0-abc"));
        let r = Reference::parse("localhost/gw").unwrap();
        assert_eq!(r.registry, "localhost");
        assert_eq!(r.manifest_ref(), "latest");
    }

    #[test]
    fn digests_pin_and_are_checked() {
        let d = Digest::of(b"x");
        let r = Reference::parse(&format!("ghcr.io/a/b:1@{d}")).unwrap();
        assert_eq!(r.digest, Some(d));
        assert_eq!(r.manifest_ref(), d.to_string());
        assert_eq!(r.to_string(), format!("ghcr.io/a/b:1@{d}"));
        assert!(Reference::parse("ghcr.io/a/b@sha256:abc").is_err());
        assert!(Reference::parse("ghcr.io/A/b").is_err());
        assert!(Reference::parse("ghcr.io/a//b").is_err());
        assert!(Reference::parse("ghcr.io/a/b:-x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_never_panics(s in "\\PC{0,80}") {
            if let Ok(r) = Reference::parse(&s) {
                // What parses round-trips.
                let again = Reference::parse(&r.to_string()).unwrap();
                proptest::prop_assert_eq!(again, r);
            }
        }
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "ghcr.io",
            "10.0.0.1:5000",
            "example.com:443",
            "[2001:db8::1]:5000",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
