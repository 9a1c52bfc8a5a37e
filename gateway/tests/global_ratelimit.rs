//! Global rate limits on a real `redis-server` (Debian package `redis-server`,
//! installed by `scripts/setup.sh`), started by each test on loopback ports:
//! gateway processes sharing one budget, Redis dying and returning, an ACL user
//! with a password file, and a three-master Redis Cluster.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_mgw-gateway");
const LIMIT: Duration = Duration::from_secs(20);
// Decisions get 250 ms, not the default 5 ms: these tests check exact counts on a
// machine that may be busy, where a missed deadline would (correctly) fall back.

/// A free loopback port (below 55535: a cluster node also uses port + 10000).
fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 55_535 {
            return port;
        }
    }
}

/// A `redis-server` child, killed on drop.
struct Redis {
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl Redis {
    fn start(dir: &Path, extra: &[&str]) -> Redis {
        let mut r = Redis {
            port: free_port(),
            dir: dir.to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        r.restart();
        r
    }

    fn restart(&mut self) {
        let conf = self.dir.join(format!("redis-{}.conf", self.port));
        let mut text = format!(
            "port {}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n",
            self.port,
            self.dir.display()
        );
        for line in &self.extra {
            text.push_str(&line.replace("{port}", &self.port.to_string()));
            text.push('\n');
        }
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `redis-server` ({e}); install it with scripts/setup.sh")
            });
        self.child = Some(child);
        let port = self.port;
        let up = (0..200).any(|_| {
            let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if !ok {
                std::thread::sleep(Duration::from_millis(25));
            }
            ok
        });
        assert!(up, "redis-server did not listen on {port}");
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis-cli` against this server, with extra arguments first.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (scripts/setup.sh installs redis-tools)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real `mgw-gateway` process, its listeners read from the ready log line and
/// every log line kept.
struct GwProcess {
    child: Child,
    api: String,
    admin: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl GwProcess {
    fn start(dir: &Path, bundle: &Value, env: &[(&str, &str)]) -> GwProcess {
        let path = dir.join(format!("bundle-{}.json", fastrand::u32(..)));
        std::fs::write(&path, serde_json::to_vec(bundle).unwrap()).unwrap();
        let mut child = Command::new(BIN)
            .arg("--bundle")
            .arg(&path)
            .env("MGW_LOG_FORMAT", "text")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let (mut api, mut admin) = (None, None);
        while api.is_none() || admin.is_none() {
            let line = rx
                .recv_timeout(LIMIT)
                .expect("gateway did not log its listeners");
            api = api.or_else(|| field(&line, "api="));
            admin = admin.or_else(|| field(&line, "admin="));
        }
        GwProcess {
            child,
            api: api.unwrap(),
            admin: admin.unwrap(),
            logs,
        }
    }

    async fn status(&self, method: &str, path: &str) -> StatusCode {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.api))
            .header("x-tenant", "t")
            .body(full(""))
            .unwrap();
        send(req).await.status
    }

    async fn metric(&self, sample: &str) -> Option<f64> {
        let r = get(&format!("http://{}/metrics", self.admin)).await;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        text.lines().find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }

    /// Waits until decisions go to Redis (the probe found it).
    async fn wait_redis_up(&self, up: bool) {
        let want = if up { 1.0 } else { 0.0 };
        let ok = eventually(LIMIT, || async {
            self.metric("mgw_ratelimit_redis_up").await == Some(want)
        })
        .await;
        assert!(ok, "mgw_ratelimit_redis_up never became {want}");
    }

    fn log_lines(&self, text: &str) -> usize {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for GwProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field(line: &str, key: &str) -> Option<String> {
    let i = line.find(key)?;
    let rest = &line[i + key.len()..];
    let end = rest.find(' ').unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"').to_owned())
}

/// The test bundle with `rateLimits` as given; `shared` on the API, and the
/// operations' policies from `ops` (operation index, policy).
fn bundle(b: &Backend, rate_limits: Value, api: Option<&str>, ops: &[(usize, &str)]) -> Value {
    let mut v = bundle_json(&[format!("http://{}", b.addr)]);
    v["rateLimits"] = rate_limits;
    if let Some(p) = api {
        v["apis"][0]["rateLimit"] = p.into();
    }
    for (i, p) in ops {
        v["apis"][0]["operations"][*i]["rateLimit"] = (*p).into();
    }
    v
}

const LIST_PETS: usize = 0;
const CREATE_PET: usize = 1;
const GET_PET: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateway_processes_share_one_global_budget_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), &[]);
    let b = backend("a").await;
    // One replica configured: without Redis each process would allow 6 on its own.
    let v = bundle(
        &b,
        json!({
            "redis": {"url": "${MGW_REDIS_URL}", "timeoutMs": 250},
            "policies": {"shared": {"requests": 6, "periodSeconds": 3600, "key": "api",
                                    "scope": "global"}}
        }),
        Some("shared"),
        &[],
    );
    let env = [("MGW_REDIS_URL", redis.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gws: Vec<GwProcess> = (0..3)
        .map(|_| GwProcess::start(dir.path(), &v, &env))
        .collect();
    for g in &gws {
        g.wait_redis_up(true).await;
    }
    let mut allowed = 0;
    let mut limited = 0;
    for round in 0..5 {
        for (i, g) in gws.iter().enumerate() {
            match g.status("GET", "/pets-api/v1/pets").await {
                StatusCode::OK => allowed += 1,
                StatusCode::TOO_MANY_REQUESTS => limited += 1,
                s => panic!("round {round}, gateway {i}: {s}"),
            }
        }
    }
    assert_eq!((allowed, limited), (6, 9), "{}", gws[0].logs());
    for g in &gws {
        assert_eq!(
            g.metric("mgw_ratelimit_redis_fallbacks_total{action=\"local\"}")
                .await,
            None,
            "no decision may have been made without Redis"
        );
    }
    // Keys are hashed and hash-tagged; no caller text is stored.
    let keys = redis.cli(&["--scan", "--pattern", "mgw:rl:*"]);
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(keys.trim().starts_with("mgw:rl:{"), "{keys}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_falls_back_per_policy_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Redis::start(dir.path(), &[]);
    let b = backend("a").await;
    let v = bundle(
        &b,
        json!({
            // The replica count as the helm chart sets it, from the environment.
            "redis": {"url": redis.url(), "timeoutMs": 250, "replicas": "${MGW_REPLICAS}"},
            "policies": {
                "deny": {"requests": 1000, "periodSeconds": 3600, "key": "api",
                         "scope": "global", "onRedisFailure": "deny"},
                "allow": {"requests": 1, "periodSeconds": 3600, "key": "api",
                          "scope": "global", "onRedisFailure": "allow"},
                "local": {"requests": 4, "periodSeconds": 3600, "key": "api",
                          "scope": "global"}
            }
        }),
        None,
        &[
            (LIST_PETS, "deny"),
            (GET_PET, "allow"),
            (CREATE_PET, "local"),
        ],
    );
    let gw = GwProcess::start(dir.path(), &v, &[("MGW_REPLICAS", "2")]);
    gw.wait_redis_up(true).await;
    assert_eq!(gw.status("GET", "/pets-api/v1/pets").await, StatusCode::OK);
    // With Redis, `allow`'s budget of one holds.
    assert_eq!(
        gw.status("GET", "/pets-api/v1/pets/1").await,
        StatusCode::OK
    );
    assert_eq!(
        gw.status("GET", "/pets-api/v1/pets/1").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    redis.kill();
    // `deny` refuses once a decision misses Redis; polled, not slept.
    let denied = eventually(LIMIT, || async {
        gw.status("GET", "/pets-api/v1/pets").await == StatusCode::TOO_MANY_REQUESTS
    })
    .await;
    assert!(
        denied,
        "`onRedisFailure: deny` never refused\n{}",
        gw.logs()
    );
    gw.wait_redis_up(false).await;
    // `allow` lets everything through; `local` allows requests / replicas = 2.
    for _ in 0..3 {
        assert_eq!(
            gw.status("GET", "/pets-api/v1/pets/1").await,
            StatusCode::OK
        );
    }
    let local: Vec<StatusCode> =
        futures_util::future::join_all((0..4).map(|_| gw.status("POST", "/pets-api/v1/pets")))
            .await;
    let ok = local
        .iter()
        .filter(|s| **s == StatusCode::CREATED || **s == StatusCode::OK);
    assert_eq!(ok.count(), 2, "{local:?}");
    for action in ["deny", "allow", "local"] {
        let n = gw
            .metric(&format!(
                "mgw_ratelimit_redis_fallbacks_total{{action=\"{action}\"}}"
            ))
            .await;
        assert!(n.is_some_and(|n| n >= 1.0), "{action}: {n:?}");
    }
    // /readyz stays ready: rate limiting degrades, traffic flows.
    let ready = get(&format!("http://{}/readyz", gw.admin)).await;
    assert_eq!(ready.status, StatusCode::OK);

    redis.restart();
    let back = eventually(LIMIT, || async {
        gw.status("GET", "/pets-api/v1/pets").await == StatusCode::OK
    })
    .await;
    assert!(back, "decisions never went back to Redis\n{}", gw.logs());
    gw.wait_redis_up(true).await;
    // The new Redis is empty: `allow`'s budget of one holds again.
    assert_eq!(
        gw.status("GET", "/pets-api/v1/pets/1").await,
        StatusCode::OK
    );
    assert_eq!(
        gw.status("GET", "/pets-api/v1/pets/1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // One log line per change of state, not one per request.
    assert_eq!(gw.log_lines("redis is down"), 1, "{}", gw.logs());
    assert_eq!(gw.log_lines("redis is up"), 2, "{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_is_one_down_and_one_up_not_a_flap_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), &["enable-debug-command yes"]);
    let b = backend("a").await;
    let v = bundle(
        &b,
        json!({
            "redis": {"url": redis.url(), "timeoutMs": 250},
            "policies": {"shared": {"requests": 1000, "periodSeconds": 3600, "key": "api",
                                    "scope": "global", "onRedisFailure": "allow"}}
        }),
        Some("shared"),
        &[],
    );
    let gw = GwProcess::start(dir.path(), &v, &[]);
    gw.wait_redis_up(true).await;
    // Redis stops answering for 3 s (it is alive: connections stay open).
    let port = redis.port.to_string();
    let mut sleeper = Command::new("redis-cli")
        .args(["-p", &port, "debug", "sleep", "3"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let went_down = eventually(LIMIT, || async {
        gw.status("GET", "/pets-api/v1/pets").await == StatusCode::OK
            && gw.metric("mgw_ratelimit_redis_up").await == Some(0.0)
    })
    .await;
    assert!(went_down, "{}", gw.logs());
    // Traffic flows (`allow`) while Redis is slow.
    for _ in 0..10 {
        assert_eq!(gw.status("GET", "/pets-api/v1/pets").await, StatusCode::OK);
    }
    let _ = sleeper.wait();
    gw.wait_redis_up(true).await;
    assert_eq!(gw.log_lines("redis is down"), 1, "{}", gw.logs());
    assert_eq!(gw.log_lines("redis is up"), 2, "{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_with_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cret-Pa55";
    let redis = Redis::start(
        dir.path(),
        &[
            "user default off",
            &format!("user mgw on >{secret} ~mgw:* +@all"),
        ],
    );
    let password_file = dir.path().join("redis-password");
    std::fs::write(&password_file, format!("{secret}\n")).unwrap();
    let b = backend("a").await;
    let rl = |file: &Path| {
        json!({
            "redis": {"url": redis.url(), "username": "${REDIS_USER}",
                      "passwordFile": file.display().to_string(), "timeoutMs": 250},
            "policies": {"shared": {"requests": 2, "periodSeconds": 3600, "key": "api",
                                    "scope": "global", "onRedisFailure": "deny"}}
        })
    };
    let v = bundle(&b, rl(&password_file), Some("shared"), &[]);
    let gw = GwProcess::start(dir.path(), &v, &[("REDIS_USER", "mgw")]);
    gw.wait_redis_up(true).await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(gw.status("GET", "/pets-api/v1/pets").await);
    }
    assert_eq!(
        codes,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert!(!gw.logs().contains(secret));

    // A wrong password: never up, `deny` decides, and the reason is logged once.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    let v = bundle(&b, rl(&wrong), Some("shared"), &[]);
    let gw = GwProcess::start(dir.path(), &v, &[("REDIS_USER", "mgw")]);
    let logged = eventually(LIMIT, || async {
        gw.log_lines("redis is not reachable") == 1
    })
    .await;
    assert!(logged, "{}", gw.logs());
    assert_eq!(
        gw.status("GET", "/pets-api/v1/pets").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(gw.metric("mgw_ratelimit_redis_up").await, Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_ca_from_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = support::auth::Pki::new();
    pki.write(dir.path());
    let file = |n: &str| dir.path().join(n).display().to_string();
    let redis = Redis::start(
        dir.path(),
        &[
            "port 0",
            "tls-port {port}",
            &format!("tls-cert-file {}", file("tls.crt")),
            &format!("tls-key-file {}", file("tls.key")),
            "tls-auth-clients no",
        ],
    );
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let b = backend("a").await;
    let rl = |ca: Option<String>| {
        json!({
            "redis": {"url": url, "caFile": ca, "timeoutMs": 250},
            "policies": {"shared": {"requests": 2, "periodSeconds": 3600, "key": "api",
                                    "scope": "global", "onRedisFailure": "deny"}}
        })
    };
    let gw = GwProcess::start(
        dir.path(),
        &bundle(&b, rl(Some(file("ca.crt"))), Some("shared"), &[]),
        &[],
    );
    gw.wait_redis_up(true).await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(gw.status("GET", "/pets-api/v1/pets").await);
    }
    assert_eq!(
        codes,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // Without the CA the server is not trusted: never up, `deny` decides.
    let mut v = bundle(&b, rl(None), Some("shared"), &[]);
    v["rateLimits"]["redis"]
        .as_object_mut()
        .unwrap()
        .remove("caFile");
    let gw = GwProcess::start(dir.path(), &v, &[]);
    let logged = eventually(LIMIT, || async {
        gw.log_lines("redis is not reachable") == 1
    })
    .await;
    assert!(logged, "{}", gw.logs());
    assert_eq!(gw.metric("mgw_ratelimit_redis_up").await, Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_master_redis_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Redis> = (0..3)
        .map(|i| {
            let d = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&d).unwrap();
            Redis::start(
                &d,
                &[
                    "cluster-enabled yes",
                    "cluster-config-file nodes.conf",
                    "cluster-node-timeout 5000",
                ],
            )
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let out = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli (scripts/setup.sh installs redis-tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ok = eventually(LIMIT, || async {
        nodes
            .iter()
            .all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"))
    })
    .await;
    assert!(ok, "the cluster never became ok");

    let b = backend("a").await;
    let v = bundle(
        &b,
        json!({
            "redis": {"url": nodes[0].url(), "cluster": true, "timeoutMs": 250},
            "policies": {"tenant": {"requests": 2, "periodSeconds": 3600,
                                    "key": {"header": "x-tenant"}, "scope": "global",
                                    "onRedisFailure": "deny"}}
        }),
        Some("tenant"),
        &[],
    );
    let gws: Vec<GwProcess> = (0..2)
        .map(|_| GwProcess::start(dir.path(), &v, &[]))
        .collect();
    for g in &gws {
        g.wait_redis_up(true).await;
    }
    // Twenty tenants, three requests each over two gateways: exactly two each.
    for t in 0..20 {
        let mut allowed = 0;
        for i in 0..3 {
            let req = http::Request::get(format!("http://{}/pets-api/v1/pets", gws[i % 2].api))
                .header("x-tenant", format!("tenant-{t}"))
                .body(full(""))
                .unwrap();
            if send(req).await.status == StatusCode::OK {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 2, "tenant-{t}\n{}", gws[0].logs());
    }
    // The keys spread over the masters (one slot per key, by its hash tag).
    let holding = nodes
        .iter()
        .filter(|n| n.cli(&["dbsize"]).trim().parse::<u64>().unwrap_or(0) > 0)
        .count();
    assert!(holding >= 2, "keys on {holding} masters");
}
