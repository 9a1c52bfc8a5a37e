//! What the floors share: the endpoints read from a gateway bundle, and one
//! current-thread runtime accepting connections until SIGTERM (exit 0, so
//! callgrind writes its profile).

use std::future::Future;

use tokio::net::{TcpListener, TcpStream};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// From `--bundle FILE` (the gateway's arguments): the API listener's address
/// and the first upstream's first URL as `host:port` (`http://` only).
pub fn endpoints() -> Result<(String, &'static str), Error> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .iter()
        .position(|a| a == "--bundle")
        .and_then(|i| args.get(i + 1))
        .ok_or("usage: --bundle FILE [--workers 1]")?;
    let bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let listen = bundle["listeners"]["api"]["address"]
        .as_str()
        .ok_or("bundle: no listeners.api.address")?
        .to_owned();
    let upstream = bundle["upstreams"]
        .as_object()
        .and_then(|u| u.values().next())
        .and_then(|u| u["urls"][0].as_str())
        .and_then(|u| u.strip_prefix("http://"))
        .ok_or("bundle: no http:// upstream URL")?
        .trim_end_matches('/')
        .to_owned();
    Ok((listen, Box::leak(upstream.into_boxed_str())))
}

/// One thread, one current-thread runtime: each accepted connection (with
/// TCP_NODELAY) is handed to `serve` in its own task.
pub fn run<F, Fut>(listen: &str, serve: F) -> Result<(), Error>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(accept(listen, |stream| {
        tokio::spawn(serve(stream));
    }))
}

/// [`run`] for connections whose task is not `Send` (actix-http's codecs): a
/// `LocalSet` on the same one thread, with the timer on (actix-http's date
/// service ticks every 500 ms).
pub fn run_local<F, Fut>(listen: &str, serve: F) -> Result<(), Error>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    tokio::task::LocalSet::new().block_on(
        &rt,
        accept(listen, |stream| {
            tokio::task::spawn_local(serve(stream));
        }),
    )
}

/// Accepts until SIGTERM, then exits the process with status 0.
async fn accept(listen: &str, mut spawn: impl FnMut(TcpStream)) -> Result<(), Error> {
    let listener = TcpListener::bind(listen).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stream.set_nodelay(true)?;
                spawn(stream);
            }
            _ = term.recv() => std::process::exit(0),
        }
    }
}
