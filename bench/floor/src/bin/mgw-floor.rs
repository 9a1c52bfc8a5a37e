//! The floor of a plain HTTP/1 reverse proxy on tokio + httparse: what one
//! request costs with no HTTP library above the parser, shaped as nginx is
//! (one thread, each client connection's task does its upstream I/O inline on
//! a connection from a thread-local keep-alive pool, one write per response).
//! A measurement for issue 13, not a product: Content-Length bodies only, no
//! routing, no timeouts (see ../README.md).

use std::cell::RefCell;
use std::io;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MAX_HEADERS: usize = 64;
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

thread_local! {
    static POOL: RefCell<Vec<Upstream>> = const { RefCell::new(Vec::new()) };
}

struct Upstream {
    stream: TcpStream,
    buf: BytesMut,
}

fn main() -> Result<(), mgw_floor::Error> {
    let (listen, upstream) = mgw_floor::endpoints()?;
    mgw_floor::run(&listen, move |stream| async move {
        let _ = serve(stream, upstream).await;
    })
}

/// One client connection: requests in order, each proxied to the upstream.
async fn serve(mut client: TcpStream, upstream: &'static str) -> io::Result<()> {
    let mut inbuf = BytesMut::with_capacity(8192);
    let mut request = Vec::with_capacity(8192);
    let mut out = Vec::with_capacity(8192);
    loop {
        // Read until one request head is whole.
        let (head_len, body_len, close) = loop {
            if !inbuf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(&inbuf) {
                    Ok(httparse::Status::Complete(n)) => {
                        request.clear();
                        let (body_len, close) = request_head(&req, &mut request)?;
                        break (n, body_len, close);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                }
            }
            if client.read_buf(&mut inbuf).await? == 0 {
                return Ok(());
            }
        };
        while inbuf.len() < head_len + body_len {
            if client.read_buf(&mut inbuf).await? == 0 {
                return Ok(());
            }
        }
        request.extend_from_slice(&inbuf[head_len..head_len + body_len]);
        inbuf.advance(head_len + body_len);
        match exchange(upstream, &request, &mut out).await {
            Ok((up, keep)) => {
                client.write_all(&out).await?;
                if keep {
                    POOL.with(|p| p.borrow_mut().push(up));
                }
            }
            Err(_) => {
                client
                    .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                    .await?
            }
        }
        if close {
            return Ok(());
        }
    }
}

/// The upstream request's head into `out`; the body's length and whether the
/// client asked to close.
fn request_head(req: &httparse::Request, out: &mut Vec<u8>) -> io::Result<(usize, bool)> {
    let mut body_len = 0;
    let mut close = req.version == Some(0);
    out.extend_from_slice(req.method.unwrap_or("GET").as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.path.unwrap_or("/").as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = parse_len(h.value)?;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "chunked request",
            ));
        }
        copy_end_to_end(h, out);
    }
    out.extend_from_slice(b"\r\n");
    Ok((body_len, close))
}

/// `h` into `out` as one header line, unless it is hop-by-hop.
fn copy_end_to_end(h: &httparse::Header, out: &mut Vec<u8>) {
    if HOP_BY_HOP.iter().any(|n| h.name.eq_ignore_ascii_case(n)) {
        return;
    }
    out.extend_from_slice(h.name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(h.value);
    out.extend_from_slice(b"\r\n");
}

fn parse_len(v: &[u8]) -> io::Result<usize> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "content-length"))
}

/// Send `request` on a pooled connection (a fresh one if the pooled one was
/// closed) and read one whole response, written into `out` as the client gets
/// it; whether the connection stays open.
async fn exchange(addr: &str, request: &[u8], out: &mut Vec<u8>) -> io::Result<(Upstream, bool)> {
    if let Some(mut up) = POOL.with(|p| p.borrow_mut().pop()) {
        if up.stream.write_all(request).await.is_ok() {
            if let Ok(keep) = read_response(&mut up, out).await {
                return Ok((up, keep));
            }
        }
    }
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut up = Upstream {
        stream,
        buf: BytesMut::with_capacity(8192),
    };
    up.stream.write_all(request).await?;
    let keep = read_response(&mut up, out).await?;
    Ok((up, keep))
}

/// Reads one response, parsing its head once: into `out` go the status line,
/// the end-to-end headers and the body. Whether the connection stays open.
async fn read_response(up: &mut Upstream, out: &mut Vec<u8>) -> io::Result<bool> {
    up.buf.clear();
    loop {
        if up.stream.read_buf(&mut up.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(n) = res
            .parse(&up.buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        else {
            continue;
        };
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        let code = res.code.unwrap_or(502);
        out.extend_from_slice(&[
            b'0' + (code / 100 % 10) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
            b' ',
        ]);
        out.extend_from_slice(res.reason.unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        let (mut keep, mut len) = (true, None);
        for h in res.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                keep = !h.value.eq_ignore_ascii_case(b"close");
            } else if h.name.eq_ignore_ascii_case("content-length") {
                len = Some(parse_len(h.value)?);
            }
            copy_end_to_end(h, out);
        }
        out.extend_from_slice(b"\r\n");
        let len =
            len.ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no content-length"))?;
        while up.buf.len() < n + len {
            if up.stream.read_buf(&mut up.buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        out.extend_from_slice(&up.buf[n..n + len]);
        up.buf.advance(n + len);
        return Ok(keep);
    }
}
