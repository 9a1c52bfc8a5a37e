//! Global rate limits: the budgets of `scope: global` policies kept in Redis, so
//! every replica of a gateway draws from one quota.
//!
//! One decision is one server-side Lua script (GCRA, the algorithm the local
//! store runs) sent with EVALSHA over one multiplexed connection (the `redis`
//! crate's `ConnectionManager`, or its cluster connection), so concurrent
//! requests pipeline on one socket and the check-and-take is atomic on the
//! server. Time comes from the Redis server (`TIME`), so replicas with skewed
//! clocks still agree. Keys are `mgw:rl:{<hash>}`: the braces are a Redis
//! Cluster hash tag, so a key's slot is fixed by its hash alone.
//!
//! Redis is never on the critical path for availability: each decision has a
//! deadline (`timeoutMs`, default 5 ms); a decision that misses it, or fails,
//! marks the store *down*, and while down no request waits on Redis at all —
//! the policy's `onRedisFailure` decides. A background probe (`PING`, with
//! exponential backoff) marks it *up* again. One log line per change of state,
//! never one per request; `/readyz` does not look at this.
//!
//! Never: put key text (consumer names, header values) in Redis, wait past the
//! deadline, or block the start of the gateway on Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Script, Value};
use sha2::{Digest, Sha256};

use super::store::{Gcra, Step};
use crate::bundle::RedisCfg;
use crate::metrics::RedisMetrics;

/// GCRA on the server, in microseconds (exact in a Lua double for centuries).
/// ARGV: emission interval, burst tolerance. Returns {allowed, debt}.
const GCRA: &str = r#"
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local debt = tat - now
if debt > tau then return {0, debt} end
tat = tat + t
redis.call('SET', KEYS[1], tat, 'PX', math.floor((tat - now) / 1000) + 1)
return {1, debt + t}
"#;

/// Gives back one request (another scope refused it).
const REFUND: &str = r#"
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat then redis.call('SET', KEYS[1], tat - tonumber(ARGV[1]), 'KEEPTTL') end
return 0
"#;

/// Why a decision was not made on Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Marked down earlier: Redis was not asked.
    Down,
    Timeout,
    Error,
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Why Redis settings cannot be used (reported at start).
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("`rateLimits.redis.url`: {0}")]
    Url(redis::RedisError),
    #[error("cannot read `rateLimits.redis.{key}` `{path}`: {source}")]
    File {
        key: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// The shared budgets of `global` policies.
pub struct GlobalStore {
    cfg: RedisCfg,
    info: redis::ConnectionInfo,
    /// The `caFile` roots, for the cluster client made by the probe.
    certs: Option<redis::TlsCertificates>,
    conn: OnceLock<Conn>,
    gcra: Script,
    refund: Script,
    up: AtomicBool,
    metrics: RedisMetrics,
}

impl GlobalStore {
    /// Reads the password file and checks the URL; connects later, in
    /// [`GlobalStore::run`], so a gateway starts whether Redis is up or not.
    pub fn new(cfg: &RedisCfg, metrics: RedisMetrics) -> Result<GlobalStore, RedisSetupError> {
        let mut info = cfg
            .url
            .as_str()
            .into_connection_info()
            .map_err(RedisSetupError::Url)?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &cfg.username {
            settings = settings.set_username(user);
        }
        if let Some(path) = &cfg.password_file {
            let password =
                std::fs::read_to_string(path).map_err(|source| RedisSetupError::File {
                    key: "passwordFile",
                    path: path.clone(),
                    source,
                })?;
            settings = settings.set_password(password.trim_end_matches(['\r', '\n']));
        }
        info = info.set_redis_settings(settings);
        let certs = match &cfg.ca_file {
            Some(path) => Some(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(path).map_err(|source| RedisSetupError::File {
                    key: "caFile",
                    path: path.clone(),
                    source,
                })?),
            }),
            None => None,
        };
        if !cfg.cluster {
            // Lazy: returns at once, connects on first use.
            let client = match &certs {
                Some(c) => redis::Client::build_with_tls(info.clone(), c.clone()),
                None => redis::Client::open(info.clone()),
            }
            .map_err(RedisSetupError::Url)?;
            let manager = ConnectionManager::new_lazy_with_config(client, manager_config(cfg))
                .map_err(RedisSetupError::Url)?;
            let conn = OnceLock::new();
            let _ = conn.set(Conn::Single(manager));
            return Ok(GlobalStore::with(cfg, info, conn, certs, metrics));
        }
        Ok(GlobalStore::with(
            cfg,
            info,
            OnceLock::new(),
            certs,
            metrics,
        ))
    }

    fn with(
        cfg: &RedisCfg,
        info: redis::ConnectionInfo,
        conn: OnceLock<Conn>,
        certs: Option<redis::TlsCertificates>,
        metrics: RedisMetrics,
    ) -> GlobalStore {
        GlobalStore {
            cfg: cfg.clone(),
            info,
            certs,
            conn,
            gcra: Script::new(GCRA),
            refund: Script::new(REFUND),
            // Down until the first probe answers: no request waits on a Redis
            // that was never reached.
            up: AtomicBool::new(false),
            metrics,
        }
    }

    /// The Redis key of a budget: the scope's label and the caller's key bytes,
    /// hashed (never stored as text) and wrapped in a cluster hash tag.
    pub fn key(scope_label: &str, tag: u8, bytes: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(scope_label.as_bytes());
        h.update([0, tag]);
        h.update(bytes);
        let digest = h.finalize();
        format!("mgw:rl:{{{}}}", hex::encode(&digest[..16]))
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// One GCRA step on Redis, within the deadline.
    pub async fn acquire(&self, key: &str, g: Gcra) -> Result<Step, Unavailable> {
        if !self.is_up() {
            self.metrics.error("down");
            return Err(Unavailable::Down);
        }
        let Some(conn) = self.conn.get() else {
            return Err(Unavailable::Down);
        };
        let mut conn = conn.clone();
        let start = Instant::now();
        let mut call = self.gcra.key(key);
        call.arg(g.t.div_ceil(1_000)).arg(g.tau / 1_000);
        let answer =
            tokio::time::timeout(self.cfg.timeout, call.invoke_async::<(u8, u64)>(&mut conn)).await;
        match answer {
            Ok(Ok((allowed, debt_us))) => {
                self.metrics.latency.observe(start.elapsed().as_secs_f64());
                let debt = debt_us.saturating_mul(1_000);
                Ok(if allowed == 1 {
                    Step::Allowed { debt }
                } else {
                    Step::Refused { debt }
                })
            }
            Ok(Err(e)) => {
                self.metrics.error("error");
                self.set_up(false, Some(&e.to_string()));
                Err(Unavailable::Error)
            }
            Err(_) => {
                self.metrics.error("timeout");
                self.set_up(false, Some("no answer within `timeoutMs`"));
                Err(Unavailable::Timeout)
            }
        }
    }

    /// Gives one request back, off the request path.
    pub fn refund(self: &Arc<Self>, key: String, g: Gcra) {
        let Some(conn) = self.conn.get() else { return };
        let mut conn = conn.clone();
        let store = self.clone();
        tokio::spawn(async move {
            let mut call = store.refund.key(key);
            call.arg(g.t.div_ceil(1_000));
            let _ = tokio::time::timeout(
                store.cfg.timeout.max(Duration::from_millis(100)),
                call.invoke_async::<()>(&mut conn),
            )
            .await;
        });
    }

    fn set_up(&self, up: bool, why: Option<&str>) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            self.metrics.up.set(i64::from(up));
            if up {
                tracing::info!(url = %redacted(&self.cfg.url), "global rate limits: redis is up; decisions are shared again");
            } else {
                tracing::warn!(
                    url = %redacted(&self.cfg.url),
                    reason = why.unwrap_or(""),
                    "global rate limits: redis is down; onRedisFailure decides until it answers"
                );
            }
        }
    }

    /// Connects (a cluster) and probes Redis while it is down, with exponential
    /// backoff from 50 ms to 2 s; runs until aborted. The backoff is only reset
    /// once Redis has stayed up for 10 s, so a Redis that keeps missing the
    /// deadline flaps (and logs) at most once per backoff, not per request.
    pub async fn run(self: Arc<Self>) {
        const MIN: Duration = Duration::from_millis(50);
        const MAX: Duration = Duration::from_secs(2);
        const STABLE: Duration = Duration::from_secs(10);
        let mut backoff = Duration::ZERO;
        let mut up_since: Option<Instant> = None;
        let mut first = true;
        loop {
            if self.is_up() {
                if up_since.is_some_and(|t| t.elapsed() >= STABLE) {
                    backoff = MIN;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).clamp(MIN, MAX);
            match self.probe().await {
                Ok(()) => {
                    self.set_up(true, None);
                    up_since = Some(Instant::now());
                }
                Err(e) => {
                    if first {
                        tracing::warn!(url = %redacted(&self.cfg.url), error = %e, "global rate limits: redis is not reachable; onRedisFailure decides until it answers");
                    }
                }
            }
            first = false;
        }
    }

    async fn probe(&self) -> Result<(), String> {
        let deadline = self.cfg.timeout.max(Duration::from_millis(500));
        if self.conn.get().is_none() {
            let mut builder = redis::cluster::ClusterClientBuilder::new(vec![self.info.clone()])
                .connection_timeout(deadline)
                .response_timeout(deadline);
            if let Some(certs) = &self.certs {
                builder = builder.certs(certs.clone());
            }
            let client = builder.build().map_err(|e| e.to_string())?;
            let conn = tokio::time::timeout(deadline, client.get_async_connection())
                .await
                .map_err(|_| "no answer".to_owned())?
                .map_err(|e| e.to_string())?;
            let _ = self.conn.set(Conn::Cluster(conn));
        }
        let Some(conn) = self.conn.get() else {
            return Err("not connected".into());
        };
        let mut conn = conn.clone();
        let pong = tokio::time::timeout(
            deadline,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| e.to_string())?;
        if pong != "PONG" {
            return Err(format!("`PING` answered `{pong}`"));
        }
        // Loads the scripts, so the first decisions are EVALSHA hits.
        let load = |src: &'static str| redis::cmd("SCRIPT").arg("LOAD").arg(src).clone();
        for src in [GCRA, REFUND] {
            if !self.cfg.cluster {
                let _ = tokio::time::timeout(deadline, load(src).query_async::<String>(&mut conn))
                    .await;
            }
        }
        // Up only if it answers within the decision deadline: a Redis too slow
        // for decisions stays down instead of flapping.
        let start = Instant::now();
        let fast = tokio::time::timeout(
            self.cfg.timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        match fast {
            Ok(Ok(_)) => Ok(()),
            _ => Err(format!(
                "`PING` took {:?}, more than `timeoutMs`",
                start.elapsed()
            )),
        }
    }
}

fn manager_config(cfg: &RedisCfg) -> ConnectionManagerConfig {
    let connect = cfg.timeout.max(Duration::from_millis(500));
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(connect))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(2))
}

/// The URL without any userinfo, for logs.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashed_and_hash_tagged() {
        let k = GlobalStore::key("api:pets/shared", b'c', b"alice");
        assert!(k.starts_with("mgw:rl:{") && k.ends_with('}'), "{k}");
        assert!(!k.contains("alice"));
        assert_eq!(k, GlobalStore::key("api:pets/shared", b'c', b"alice"));
        assert_ne!(k, GlobalStore::key("api:pets/shared", b'c', b"bob"));
        assert_ne!(k, GlobalStore::key("api:other/shared", b'c', b"alice"));
    }

    #[test]
    fn logs_never_show_credentials() {
        assert_eq!(redacted("redis://u:p@h:1/0"), "redis://h:1/0");
        assert_eq!(redacted("rediss://h:1"), "rediss://h:1");
    }
}
