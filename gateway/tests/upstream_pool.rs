//! Plain `http://` upstream connections: kept alive and reused, closed when idle
//! too long, and never reused once the upstream has closed them. The backend
//! here is a raw TCP server that counts the connections it accepts and sees
//! closed.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Counts of the raw backend's connections.
struct Raw {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    /// With `close_after_one`: each permit lets one answered connection close.
    close: Arc<Semaphore>,
}

/// Answers every request head with a small 200 (`/pets/empty`: an empty one);
/// with `close_after_one`, closes each connection after its first answer, when
/// the test adds a permit to `close`, without saying so (no `Connection:
/// close`), as an upstream whose keep-alive timer fired would.
async fn raw_backend(close_after_one: bool) -> Raw {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let close = Arc::new(Semaphore::new(0));
    let (a, c, permits) = (accepted.clone(), closed.clone(), close.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            a.fetch_add(1, Ordering::SeqCst);
            let (c, permits) = (c.clone(), permits.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    let body = if head.contains(" /pets/empty ") {
                        ""
                    } else {
                        "ok"
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                    if close_after_one {
                        permits.acquire().await.unwrap().forget();
                        break;
                    }
                }
                drop(s);
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Raw {
        addr,
        accepted,
        closed,
        close,
    }
}

fn bundle_for(raw: &Raw) -> serde_json::Value {
    bundle_json(&[format!("http://{}", raw.addr)])
}

async fn get_ok(gw: &Gw, path: &str) -> Reply {
    let r = get(&gw.url(path)).await;
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    r
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let raw = raw_backend(false).await;
    let gw = start(bundle_for(&raw)).await;
    for path in ["/pets", "/pets/empty", "/pets/1", "/pets/empty", "/pets"] {
        let r = get_ok(&gw, &format!("/pets-api/v1{path}")).await;
        let want: &[u8] = if path == "/pets/empty" { b"" } else { b"ok" };
        assert_eq!(r.body, want, "{path}");
    }
    assert_eq!(
        raw.accepted.load(Ordering::SeqCst),
        1,
        "every request, empty answers included, went over the one pooled connection"
    );
    // Concurrent requests open connections of their own, and all are answered.
    let all = futures_util::future::join_all(
        (0..8).map(|_| async { get(&gw.url("/pets-api/v1/pets")).await.status }),
    )
    .await;
    assert!(all.iter().all(|s| *s == 200), "{all:?}");
    assert!(raw.accepted.load(Ordering::SeqCst) <= 8);
    gw.shutdown().await;
}

#[tokio::test]
async fn idle_upstream_connections_are_closed_after_the_pool_idle_timeout() {
    let raw = raw_backend(false).await;
    let mut bundle = bundle_for(&raw);
    bundle["upstreams"]["pets"]["poolIdleTimeoutMs"] = 300.into();
    let gw = start(bundle).await;
    get_ok(&gw, "/pets-api/v1/pets").await;
    assert_eq!(raw.closed.load(Ordering::SeqCst), 0);
    let closed = eventually(Duration::from_secs(5), || async {
        raw.closed.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(closed, "the idle pooled connection was not closed");
    // The next request opens a new one.
    get_ok(&gw, "/pets-api/v1/pets").await;
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_not_reused() {
    let raw = raw_backend(true).await;
    let gw = start(bundle_for(&raw)).await;
    for n in 1..=3 {
        get_ok(&gw, "/pets-api/v1/pets").await;
        // The connection is back in the pool; now the upstream closes it (no
        // `Connection: close`): the next request must not fail on it.
        raw.close.add_permits(1);
        let closed = eventually(Duration::from_secs(5), || async {
            raw.closed.load(Ordering::SeqCst) == n
        })
        .await;
        assert!(closed);
    }
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 3);
    gw.shutdown().await;
}

/// With several workers, each keeps its own upstream connections (their
/// sockets are registered with its runtime, so no other thread's runtime
/// wakes for them): sequential requests, each on a new client connection
/// that the kernel hands to one worker or the other, open one upstream
/// connection per worker and no more.
#[tokio::test]
async fn each_worker_reuses_only_its_own_upstream_connections() {
    let raw_up = raw_backend(false).await;
    let gw = start_workers(bundle_for(&raw_up), 2).await;
    let request = b"GET /pets-api/v1/pets HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
    for _ in 0..32 {
        let out = raw(gw.api, request, Duration::from_secs(5)).await;
        assert!(
            out.starts_with(b"HTTP/1.1 200") && out.ends_with(b"ok"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    for worker in 0..2 {
        let sample = format!("mgw_connections_accepted_total{{worker=\"{worker}\"}}");
        let n = metric(&gw, &sample).await.unwrap_or(0.0);
        assert!(n > 0.0, "worker {worker} accepted no connection");
    }
    assert_eq!(
        raw_up.accepted.load(Ordering::SeqCst),
        2,
        "one upstream connection per worker, each reused by its own worker only"
    );
    gw.shutdown().await;
}

/// Regression test for the connection's own waker (`local_wake`): a response
/// head and a body that the upstream sends after pauses, each woken by the
/// socket alone, reach the client without waiting for any timer (the
/// gateway's timers are all a minute here; a lost wake-up would hang).
#[tokio::test]
async fn an_answer_the_upstream_sends_in_pieces_after_pauses_is_relayed_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the gateway closed before its request head");
            buf.extend_from_slice(&chunk[..n]);
        }
        let pause = Duration::from_millis(100);
        tokio::time::sleep(pause).await;
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(pause).await;
        s.write_all(b"hello").await.unwrap();
        tokio::time::sleep(pause).await;
        s.write_all(b"world").await.unwrap();
        // Kept open: the answer's end is its length, not the close.
        let _ = s.read(&mut chunk).await;
    });
    let mut bundle = bundle_json(&[format!("http://{addr}")]);
    bundle["limits"]["headerReadTimeoutMs"] = 60_000.into();
    bundle["upstreams"]["pets"]["requestTimeoutMs"] = 60_000.into();
    let gw = start(bundle).await;
    let r = tokio::time::timeout(Duration::from_secs(20), get(&gw.url("/pets-api/v1/pets")))
        .await
        .expect("no answer: a wake-up from the upstream's socket was lost");
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], b"helloworld");
    gw.shutdown().await;
}
