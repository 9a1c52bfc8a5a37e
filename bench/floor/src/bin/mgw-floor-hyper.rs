//! The same floor with hyper's HTTP/1 on both sides (server connection, and a
//! thread-local pool of `hyper::client::conn::http1` senders upstream): what
//! hyper costs per request before any of the gateway's own pipeline. A
//! measurement for issue 13, not a product (see ../README.md).

use std::cell::RefCell;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, CONNECTION, HOST, TRANSFER_ENCODING, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

thread_local! {
    static POOL: RefCell<Vec<SendRequest<Incoming>>> = const { RefCell::new(Vec::new()) };
}

fn main() -> Result<(), mgw_floor::Error> {
    let (listen, upstream) = mgw_floor::endpoints()?;
    mgw_floor::run(&listen, move |stream| async move {
        let service = hyper::service::service_fn(move |req| proxy(req, upstream));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

async fn proxy(
    req: Request<Incoming>,
    upstream: &'static str,
) -> Result<Response<Incoming>, mgw_floor::Error> {
    let mut sender = loop {
        match POOL.with(|p| p.borrow_mut().pop()) {
            Some(s) if s.is_ready() => break s,
            Some(_) => continue,
            None => {
                let stream = TcpStream::connect(upstream).await?;
                stream.set_nodelay(true)?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                break sender;
            }
        }
    };
    let mut req = req;
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()?;
    *req.uri_mut() = path;
    strip_hop_by_hop(req.headers_mut());
    req.headers_mut().insert(HOST, upstream.parse()?);
    let mut res = sender.send_request(req).await?;
    POOL.with(|p| p.borrow_mut().push(sender));
    strip_hop_by_hop(res.headers_mut());
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err("upgrade".into());
    }
    Ok(res)
}
