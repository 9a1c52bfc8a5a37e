//! Registry credentials and the `WWW-Authenticate` challenge.
//!
//! Credentials come, in this order, from `MGW_REGISTRY_USERNAME` /
//! `MGW_REGISTRY_PASSWORD` (for CI; limited to the host in `MGW_REGISTRY` when that is
//! set), then the Docker config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): `credHelpers[host]`, then `credsStore`, then
//! `auths[host]`; then, in the same format, the containers auth files podman and
//! skopeo write: `$REGISTRY_AUTH_FILE`, then `$XDG_RUNTIME_DIR/containers/auth.json`. They live in [`Secret`]s whose `Debug` prints `***` and that have no
//! `Display`. This module must never print, log or write a credential, and never
//! send one anywhere but the registry (basic) or the token realm it named (bearer).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::env::Env;

/// A secret string: redacted in `Debug`, no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for putting into a request header or form. Never for output.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// What a registry login is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (or personal access token).
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (`identitytoken` in the Docker config), exchanged
    /// at the token realm.
    IdentityToken(Secret),
}

impl Credential {
    /// `Authorization: Basic …` for this credential, if it is a password.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => Some(format!(
                "Basic {}",
                BASE64.encode(format!("{username}:{}", password.expose()))
            )),
            Credential::IdentityToken(_) => None,
        }
    }
}

/// A credential and where it came from (for messages: the source, never the value).
#[derive(Debug, Clone)]
pub struct Found {
    pub credential: Credential,
    pub source: String,
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read Docker config `{path}`: {message}")]
    Config { path: PathBuf, message: String },
    #[error("credential helper `docker-credential-{helper}` failed for `{host}`: {message}")]
    Helper {
        helper: String,
        host: String,
        message: String,
    },
    #[error(
        "`MGW_REGISTRY_USERNAME` is set but `MGW_REGISTRY_PASSWORD` is not (or the other way round); set both"
    )]
    HalfEnv,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The Docker config file mgw reads.
pub fn docker_config_path(env: &Env) -> Option<PathBuf> {
    if let Some(dir) = env.var("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    env.var("HOME")
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Keys a Docker config may use for `host`: the host itself and URL forms of it
/// (`https://host`, `https://host/v1/`), plus Docker Hub's historical key.
fn host_matches(key: &str, host: &str) -> bool {
    let bare = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let bare = bare.split('/').next().unwrap_or(bare);
    if bare.eq_ignore_ascii_case(host) {
        return true;
    }
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    hub(bare) && hub(host)
}

/// Finds the credential for registry `host` (as written in references, e.g.
/// `ghcr.io`, `127.0.0.1:5000`, `docker.io`). `Ok(None)` means anonymous.
pub fn lookup(host: &str, env: &Env) -> Result<Option<Found>, CredentialError> {
    match (
        env.var("MGW_REGISTRY_USERNAME"),
        env.var("MGW_REGISTRY_PASSWORD"),
    ) {
        (Some(username), Some(password)) => {
            let scoped = env.var("MGW_REGISTRY");
            if scoped.as_deref().is_none_or(|h| host_matches(h, host)) {
                return Ok(Some(Found {
                    credential: Credential::Basic {
                        username,
                        password: Secret::new(password),
                    },
                    source: "`MGW_REGISTRY_USERNAME`/`MGW_REGISTRY_PASSWORD`".to_owned(),
                }));
            }
        }
        (None, None) => {}
        _ => return Err(CredentialError::HalfEnv),
    }

    for path in auth_files(env) {
        if let Some(found) = lookup_in(path, host, env)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The files credentials are looked up in, in order: Docker's config, then the
/// containers auth files (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`).
pub fn auth_files(env: &Env) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = docker_config_path(env).into_iter().collect();
    files.extend(env.var("REGISTRY_AUTH_FILE").map(PathBuf::from));
    files.extend(
        env.var("XDG_RUNTIME_DIR")
            .map(|d| PathBuf::from(d).join("containers").join("auth.json")),
    );
    files
}

/// The credential for `host` in one Docker-format auth file; `Ok(None)` when the
/// file is absent or has nothing for `host`.
fn lookup_in(path: PathBuf, host: &str, env: &Env) -> Result<Option<Found>, CredentialError> {
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CredentialError::Config {
                path,
                message: e.to_string(),
            });
        }
    };
    // serde_json's messages name positions, never values.
    let config: DockerConfig =
        serde_json::from_slice(&bytes).map_err(|e| CredentialError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let shown = path.display().to_string();

    if let Some((_, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, _)| host_matches(k, host))
    {
        return run_helper(helper, host, env).map(|c| {
            c.map(|credential| Found {
                credential,
                source: format!("credential helper `docker-credential-{helper}` (`{shown}`)"),
            })
        });
    }
    if let Some(store) = &config.creds_store {
        if let Some(credential) = run_helper(store, host, env)? {
            return Ok(Some(Found {
                credential,
                source: format!("credential store `docker-credential-{store}` (`{shown}`)"),
            }));
        }
    }
    let Some((_, entry)) = config.auths.iter().find(|(k, _)| host_matches(k, host)) else {
        return Ok(None);
    };
    let bad = |what: &str| CredentialError::Config {
        path: path.clone(),
        message: format!("`auths` entry for `{host}`: {what}"),
    };
    let credential = if let Some(token) = entry.identitytoken.clone().filter(|t| !t.is_empty()) {
        Credential::IdentityToken(Secret::new(token))
    } else if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = BASE64
            .decode(auth.trim())
            .map_err(|_| bad("`auth` is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("`auth` is not UTF-8"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad("`auth` is not base64 of `user:password`"))?;
        Credential::Basic {
            username: username.to_owned(),
            password: Secret::new(password),
        }
    } else if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        Credential::Basic {
            username: u.clone(),
            password: Secret::new(p.clone()),
        }
    } else {
        return Ok(None);
    };
    Ok(Some(Found {
        credential,
        source: format!("`auths` in `{shown}`"),
    }))
}

/// Runs `docker-credential-<helper> get` with `host` on stdin.
fn run_helper(helper: &str, host: &str, env: &Env) -> Result<Option<Credential>, CredentialError> {
    let program = format!("docker-credential-{helper}");
    let fail = |message: String| CredentialError::Helper {
        helper: helper.to_owned(),
        host: host.to_owned(),
        message,
    };
    let mut cmd = Command::new(&program);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = env.var("PATH") {
        cmd.env("PATH", path);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot start `{program}`: {e}")))?;
    // Docker Hub's helpers store it under its historical URL.
    let server = if host == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // The helper's own message; helpers do not echo secrets on failure.
        return Err(fail(format!("exit {}: {}", out.status, text.trim())));
    }
    #[derive(Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|_| {
        fail("its answer is not the JSON `{\"Username\":…,\"Secret\":…}`".to_owned())
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Credential::IdentityToken(Secret::new(answer.secret))
    } else {
        Credential::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        }
    }))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses the first challenge mgw supports from a `WWW-Authenticate` value, e.g.
/// `Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `key=value` and `key="quoted, \"value\""` pairs separated by commas.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        while chars.next_if(|c| *c == ' ').is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_owned();
        }
        out.insert(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://127.0.0.1:1/t, service = "a \"b\"""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("a \"b\"".into()),
                scope: None,
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_challenge_header_parses_or_is_refused_without_panicking(s in "\\PC{0,120}") {
            let _ = parse_challenge(&s);
        }
    }

    fn config_env(dir: &std::path::Path, json: &str, extra: &[(&str, &str)]) -> Env {
        std::fs::write(dir.join("config.json"), json).unwrap();
        let mut vars = vec![("DOCKER_CONFIG".to_owned(), dir.display().to_string())];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Env::from_map(vars)
    }

    #[test]
    fn containers_auth_files_come_after_the_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |user: &str| {
            format!(
                r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{}"}}}}}}"#,
                BASE64.encode(format!("{user}:pw"))
            )
        };
        let (docker, registry_auth, xdg) = (
            dir.path().join("docker"),
            dir.path().join("registry-auth.json"),
            dir.path().join("run"),
        );
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::create_dir_all(xdg.join("containers")).unwrap();
        let env = Env::from_map(vec![
            ("DOCKER_CONFIG".to_owned(), docker.display().to_string()),
            (
                "REGISTRY_AUTH_FILE".to_owned(),
                registry_auth.display().to_string(),
            ),
            ("XDG_RUNTIME_DIR".to_owned(), xdg.display().to_string()),
        ]);
        let user = |env: &Env| match lookup("127.0.0.1:5000", env).unwrap() {
            Some(Found {
                credential: Credential::Basic { username, .. },
                source,
            }) => Some((username, source)),
            _ => None,
        };
        assert_eq!(user(&env), None);
        std::fs::write(xdg.join("containers/auth.json"), entry("from-xdg")).unwrap();
        let (name, source) = user(&env).unwrap();
        assert_eq!(name, "from-xdg");
        assert!(source.contains("containers/auth.json"), "{source}");
        std::fs::write(&registry_auth, entry("from-registry-auth-file")).unwrap();
        assert_eq!(user(&env).unwrap().0, "from-registry-auth-file");
        // Docker's config first; one without an entry for the host is passed over.
        std::fs::write(docker.join("config.json"), r#"{"auths":{"ghcr.io":{}}}"#).unwrap();
        assert_eq!(user(&env).unwrap().0, "from-registry-auth-file");
        std::fs::write(docker.join("config.json"), entry("from-docker")).unwrap();
        assert_eq!(user(&env).unwrap().0, "from-docker");
    }

    #[test]
    fn docker_config_auths_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let auth = BASE64.encode("ci:s3cret-pass");
        let env = config_env(
            dir.path(),
            &format!(
                r#"{{"auths":{{"https://127.0.0.1:5000/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"username":"u","password":"p"}},"https://index.docker.io/v1/":{{"identitytoken":"rt"}}}}}}"#
            ),
            &[],
        );
        let found = lookup("127.0.0.1:5000", &env).unwrap().unwrap();
        assert_eq!(
            found.credential,
            Credential::Basic {
                username: "ci".into(),
                password: Secret::new("s3cret-pass")
            }
        );
        assert!(found.source.contains("auths"), "{}", found.source);
        assert!(!format!("{found:?}").contains("s3cret"));
        assert!(matches!(
            lookup("ghcr.io", &env).unwrap().unwrap().credential,
            Credential::Basic { .. }
        ));
        assert!(matches!(
            lookup("docker.io", &env).unwrap().unwrap().credential,
            Credential::IdentityToken(_)
        ));
        assert!(lookup("quay.io", &env).unwrap().is_none());
    }

    #[test]
    fn environment_wins_and_can_be_scoped() {
        let dir = tempfile::tempdir().unwrap();
        let env = config_env(
            dir.path(),
            r#"{"auths":{"a.example":{"username":"file","password":"p"}}}"#,
            &[
                ("MGW_REGISTRY_USERNAME", "env"),
                ("MGW_REGISTRY_PASSWORD", "pw"),
            ],
        );
        let Credential::Basic { username, .. } =
            lookup("a.example", &env).unwrap().unwrap().credential
        else {
            panic!()
        };
        assert_eq!(username, "env");
        let scoped = config_env(
            dir.path(),
            r#"{"auths":{"a.example":{"username":"file","password":"p"}}}"#,
            &[
                ("MGW_REGISTRY_USERNAME", "env"),
                ("MGW_REGISTRY_PASSWORD", "pw"),
                ("MGW_REGISTRY", "b.example"),
            ],
        );
        let Credential::Basic { username, .. } =
            lookup("a.example", &scoped).unwrap().unwrap().credential
        else {
            panic!()
        };
        assert_eq!(username, "file");
        let half = Env::from_map([("MGW_REGISTRY_USERNAME", "x")]);
        assert!(matches!(
            lookup("a.example", &half),
            Err(CredentialError::HalfEnv)
        ));
    }

    #[test]
    fn credential_helpers_are_run_with_the_host_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let helper = bin.join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\nif [ \"$host\" = reg.example ]; then echo '{\"Username\":\"h\",\"Secret\":\"from-helper\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let env = config_env(
            dir.path(),
            r#"{"credHelpers":{"reg.example":"fake"},"credsStore":"fake","auths":{"other.example":{"username":"o","password":"p"}}}"#,
            &[("PATH", &path)],
        );
        let found = lookup("reg.example", &env).unwrap().unwrap();
        assert_eq!(
            found.credential,
            Credential::Basic {
                username: "h".into(),
                password: Secret::new("from-helper")
            }
        );
        // The store has nothing for this host: fall back to `auths`.
        let found = lookup("other.example", &env).unwrap().unwrap();
        assert!(found.source.contains("auths"));
    }
}
