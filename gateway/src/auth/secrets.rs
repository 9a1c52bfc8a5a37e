//! API keys and basic-auth users, from files mounted at runtime (Kubernetes
//! secrets), holding only hashes.
//!
//! API keys file: one `consumer:sha256:<64 hex>` per line (the sha256 of the key
//! itself); basic-auth file: htpasswd lines `user:<bcrypt hash>` (`htpasswd -B`).
//! Blank lines and `#` comments are ignored. The file is read at start (a broken
//! file is a startup error) and polled afterwards: a changed, valid file replaces
//! the set once two polls in a row read the same bytes; a changed, broken one is
//! logged and the last good set stays.
//!
//! bcrypt is slow on purpose, so a comparison runs on the blocking pool and a
//! success is remembered (by hash of the credential, until the file changes).
//!
//! Never: log a key, a password or a hash; keep a plaintext credential in memory
//! longer than the request; let a broken update open or close the door.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::cache::TokenCache;
use super::{Failure, Identity};
use crate::bundle::SecretFileCfg;
use crate::metrics::Metrics;

/// How long a verified basic-auth credential is remembered.
const BASIC_CACHE_TTL: Duration = Duration::from_secs(300);
/// bcrypt comparisons running at once; more wait, so a flood of wrong passwords
/// cannot take every blocking thread.
const BCRYPT_CONCURRENCY: usize = 4;

/// A parsed, swappable set, reloaded from its file.
struct Watched<T> {
    current: RwLock<Arc<T>>,
    last_bytes: std::sync::Mutex<Vec<u8>>,
}

impl<T> Watched<T> {
    fn get(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// API keys by the sha256 of the key.
pub struct ApiKeys {
    pub name: Arc<str>,
    pub cfg: SecretFileCfg,
    set: Watched<HashMap<[u8; 32], Arc<str>>>,
    metrics: Arc<Metrics>,
}

/// Basic-auth users and their bcrypt hashes.
pub struct BasicUsers {
    pub name: Arc<str>,
    pub cfg: SecretFileCfg,
    set: Watched<HashMap<String, String>>,
    verified: TokenCache<Arc<Identity>>,
    bcrypt_slots: tokio::sync::Semaphore,
    metrics: Arc<Metrics>,
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn valid_consumer(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Parses an API keys file. Errors name the line, never its content.
pub fn parse_api_keys(bytes: &[u8]) -> Result<HashMap<[u8; 32], Arc<str>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let mut out = HashMap::new();
    for (n, line) in lines(text) {
        let Some((consumer, rest)) = line.split_once(':') else {
            return Err(format!("line {n}: expected `consumer:sha256:<hex>`"));
        };
        if !valid_consumer(consumer) {
            return Err(format!(
                "line {n}: the consumer name must be letters, digits, `.`, `_`, `-` or `@`"
            ));
        }
        let Some(hex) = rest.strip_prefix("sha256:") else {
            return Err(format!("line {n}: the hash must start with `sha256:`"));
        };
        let mut hash = [0u8; 32];
        if hex.len() != 64 || hex::decode_to_slice(hex, &mut hash).is_err() {
            return Err(format!("line {n}: expected 64 hex digits after `sha256:`"));
        }
        if out.insert(hash, Arc::<str>::from(consumer)).is_some() {
            return Err(format!("line {n}: the same key hash is listed twice"));
        }
    }
    Ok(out)
}

/// Parses an htpasswd file of bcrypt hashes.
pub fn parse_users(bytes: &[u8]) -> Result<HashMap<String, String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let mut out = HashMap::new();
    for (n, line) in lines(text) {
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("line {n}: expected `user:<bcrypt hash>`"));
        };
        if !valid_consumer(user) {
            return Err(format!(
                "line {n}: the user name must be letters, digits, `.`, `_`, `-` or `@`"
            ));
        }
        let bcrypt_like = hash.len() == 60
            && ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
            && hash.is_ascii();
        if !bcrypt_like {
            return Err(format!(
                "line {n}: only bcrypt hashes (`$2y$…`, as `htpasswd -B` writes) are accepted"
            ));
        }
        if out.insert(user.to_owned(), hash.to_owned()).is_some() {
            return Err(format!("line {n}: user listed twice"));
        }
    }
    Ok(out)
}

/// Polls a file and swaps in each changed version that parses. The task holds a
/// weak reference and ends with its provider.
fn watch<S: Send + Sync + 'static, T: Send + Sync + 'static>(
    owner: &Arc<S>,
    name: Arc<str>,
    cfg: &SecretFileCfg,
    set: fn(&S) -> &Watched<T>,
    parse: fn(&[u8]) -> Result<T, String>,
    on_change: fn(&S),
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    let owner = Arc::downgrade(owner);
    let (path, every) = (cfg.file.clone(), cfg.reload_interval);
    tokio::spawn(async move {
        // A changed file is applied once two polls read the same bytes, so a
        // writer that truncates and then writes (not the atomic swap Kubernetes
        // does) is never caught half-way, as an empty or partial set.
        let mut pending: Option<Vec<u8>> = None;
        loop {
            tokio::time::sleep(every).await;
            let Some(owner) = owner.upgrade() else { return };
            let w = set(&owner);
            let bytes = match tokio::fs::read(&path).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(provider = %name, path = %path, error = %e, "secret file unreadable; keeping the last good set");
                    metrics.auth_reload(&name, "error");
                    continue;
                }
            };
            if *w.last_bytes.lock().unwrap_or_else(|e| e.into_inner()) == bytes {
                pending = None;
                continue;
            }
            if pending.as_ref() != Some(&bytes) {
                pending = Some(bytes);
                continue;
            }
            pending = None;
            match parse(&bytes) {
                Ok(parsed) => {
                    *w.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(parsed);
                    on_change(&owner);
                    tracing::info!(provider = %name, path = %path, "secret file reloaded");
                    metrics.auth_reload(&name, "success");
                }
                Err(why) => {
                    tracing::warn!(provider = %name, path = %path, error = %why, "secret file update is invalid; keeping the last good set");
                    metrics.auth_reload(&name, "error");
                }
            }
            *w.last_bytes.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
        }
    })
}

impl ApiKeys {
    pub fn load(name: Arc<str>, cfg: SecretFileCfg, metrics: Arc<Metrics>) -> Result<Self, String> {
        let bytes = read(&cfg.file)?;
        let set = parse_api_keys(&bytes).map_err(|e| format!("`{}`: {e}", cfg.file))?;
        Ok(Self {
            name,
            cfg,
            set: Watched {
                current: RwLock::new(Arc::new(set)),
                last_bytes: std::sync::Mutex::new(bytes),
            },
            metrics,
        })
    }

    pub fn watch(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        watch(
            &self,
            self.name.clone(),
            &self.cfg,
            |me| &me.set,
            parse_api_keys,
            |_| {},
            self.metrics.clone(),
        )
    }

    pub fn check(&self, key: &str) -> Result<Arc<Identity>, Failure> {
        if key.is_empty() || key.len() > 4096 {
            return Err(Failure::Invalid);
        }
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        match self.set.get().get(&hash) {
            Some(consumer) => Ok(Arc::new(Identity::named(&self.name, consumer.clone()))),
            None => Err(Failure::Invalid),
        }
    }
}

impl BasicUsers {
    pub fn load(name: Arc<str>, cfg: SecretFileCfg, metrics: Arc<Metrics>) -> Result<Self, String> {
        let bytes = read(&cfg.file)?;
        let set = parse_users(&bytes).map_err(|e| format!("`{}`: {e}", cfg.file))?;
        Ok(Self {
            name,
            cfg,
            set: Watched {
                current: RwLock::new(Arc::new(set)),
                last_bytes: std::sync::Mutex::new(bytes),
            },
            verified: TokenCache::new(10_000),
            bcrypt_slots: tokio::sync::Semaphore::new(BCRYPT_CONCURRENCY),
            metrics,
        })
    }

    pub fn watch(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        watch(
            &self,
            self.name.clone(),
            &self.cfg,
            |me| &me.set,
            parse_users,
            |me| me.verified.clear(),
            self.metrics.clone(),
        )
    }

    /// Checks `base64(user:password)`.
    pub async fn check(&self, credential: &str) -> Result<Arc<Identity>, Failure> {
        if credential.is_empty() || credential.len() > 1024 {
            return Err(Failure::Invalid);
        }
        let key = self.verified.key(credential.as_bytes());
        if let Some(hit) = self.verified.get(&key) {
            return Ok(hit);
        }
        let decoded = STANDARD.decode(credential).map_err(|_| Failure::Invalid)?;
        let text = String::from_utf8(decoded).map_err(|_| Failure::Invalid)?;
        let (user, password) = text.split_once(':').ok_or(Failure::Invalid)?;
        let Some(hash) = self.set.get().get(user).cloned() else {
            return Err(Failure::Invalid);
        };
        let password = password.to_owned();
        let _slot = self
            .bcrypt_slots
            .acquire()
            .await
            .map_err(|_| Failure::Unavailable)?;
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .map_err(|_| Failure::Unavailable)?
            .unwrap_or(false);
        if !ok {
            return Err(Failure::Invalid);
        }
        let identity = Arc::new(Identity::named(&self.name, user));
        self.verified
            .insert(key, identity.clone(), Instant::now() + BASIC_CACHE_TTL);
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_file_format() {
        let h = hex::encode(Sha256::digest(b"secret-key"));
        let ok = format!("# team keys\n\nalice:sha256:{h}\n");
        let set = parse_api_keys(ok.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(
            parse_api_keys(b"alice:md5:00")
                .unwrap_err()
                .contains("line 1")
        );
        assert!(parse_api_keys(format!("a:sha256:{h}\nb:sha256:{h}").as_bytes()).is_err());
        assert!(parse_api_keys(b"no colon").is_err());
    }

    #[test]
    fn users_file_format() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let set = parse_users(format!("bob:{hash}\n").as_bytes()).unwrap();
        assert!(bcrypt::verify("pw", &set["bob"]).unwrap());
        assert!(parse_users(b"bob:{SHA}abc").unwrap_err().contains("bcrypt"));
    }
}
