//! The same floor with actix-http's HTTP/1 codecs on both sides (`h1::Codec`
//! for the client connection, `h1::ClientCodec` upstream), driven as
//! mgw-floor drives httparse: each client connection's task does its upstream
//! I/O inline on a connection from a thread-local keep-alive pool. What a
//! maintained codec below hyper's level costs. A measurement for issue 13, not
//! a product (see ../README.md).

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use actix_codec::{Decoder, Encoder};
use actix_http::body::BodySize;
use actix_http::h1::{ClientCodec, Codec, Message};
use actix_http::header::{HeaderMap, HeaderValue, CONNECTION, HOST, TRANSFER_ENCODING, UPGRADE};
use actix_http::{RequestHead, RequestHeadType, Response, ServiceConfig};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

thread_local! {
    static POOL: RefCell<Vec<Upstream>> = const { RefCell::new(Vec::new()) };
}

struct Upstream {
    stream: TcpStream,
    codec: Option<ClientCodec>,
    buf: BytesMut,
}

fn main() -> Result<(), mgw_floor::Error> {
    let (listen, upstream) = mgw_floor::endpoints()?;
    mgw_floor::run_local(&listen, move |stream| async move {
        let _ = serve(stream, upstream).await;
    })
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

async fn serve(mut client: TcpStream, upstream: &'static str) -> Result<(), mgw_floor::Error> {
    let mut codec = Codec::new(ServiceConfig::default());
    let mut inbuf = BytesMut::with_capacity(8192);
    let mut out = BytesMut::with_capacity(8192);
    loop {
        let mut req = loop {
            match codec.decode(&mut inbuf)? {
                Some(Message::Item(req)) => break req,
                Some(Message::Chunk(_)) => return Err("request bodies are not proxied".into()),
                None if client.read_buf(&mut inbuf).await? == 0 => return Ok(()),
                None => {}
            }
        };
        let head = req.head_mut();
        let mut up_head = RequestHead::default();
        up_head.method = head.method.clone();
        up_head.uri = head
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()?;
        up_head.headers = std::mem::take(&mut head.headers);
        strip_hop_by_hop(&mut up_head.headers);
        up_head
            .headers
            .insert(HOST, HeaderValue::from_static(upstream));
        let (res_head, body, up) = exchange(upstream, Rc::new(up_head)).await?;
        let mut res = Response::with_body(res_head.status, ());
        *res.headers_mut() = res_head.headers;
        strip_hop_by_hop(res.headers_mut());
        res.headers_mut().remove(actix_http::header::CONTENT_LENGTH);
        codec.encode(
            Message::Item((res, BodySize::Sized(body.len() as u64))),
            &mut out,
        )?;
        codec.encode(Message::Chunk(Some(body)), &mut out)?;
        codec.encode(Message::Chunk(None), &mut out)?;
        client.write_all(&out).await?;
        out.clear();
        if let Some(up) = up {
            POOL.with(|p| p.borrow_mut().push(up));
        }
        if !codec.keep_alive() {
            return Ok(());
        }
    }
}

/// Send the request on a pooled connection (a fresh one if there is none, or
/// the pooled one fails) and read the whole response; the connection comes
/// back if it stays open.
async fn exchange(
    addr: &'static str,
    head: Rc<RequestHead>,
) -> Result<(actix_http::ResponseHead, Bytes, Option<Upstream>), mgw_floor::Error> {
    if let Some(mut up) = POOL.with(|p| p.borrow_mut().pop()) {
        if let Ok(r) = up.round_trip(Rc::clone(&head)).await {
            return Ok((r.0, r.1, r.2.then_some(up)));
        }
    }
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut up = Upstream {
        stream,
        codec: Some(ClientCodec::new(ServiceConfig::default())),
        buf: BytesMut::with_capacity(8192),
    };
    let (res, body, keep) = up.round_trip(head).await?;
    Ok((res, body, keep.then_some(up)))
}

impl Upstream {
    async fn round_trip(
        &mut self,
        head: Rc<RequestHead>,
    ) -> Result<(actix_http::ResponseHead, Bytes, bool), mgw_floor::Error> {
        let mut codec = self.codec.take().ok_or("connection in a bad state")?;
        let mut wbuf = BytesMut::with_capacity(1024);
        codec.encode(
            Message::Item((RequestHeadType::Rc(head, None), BodySize::None)),
            &mut wbuf,
        )?;
        self.stream.write_all(&wbuf).await?;
        let res = loop {
            if let Some(res) = codec.decode(&mut self.buf)? {
                break res;
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        };
        let mut body = BytesMut::new();
        let codec = if codec.message_type() == actix_http::h1::MessageType::None {
            codec
        } else {
            let mut payload = codec.into_payload_codec();
            loop {
                match payload.decode(&mut self.buf)? {
                    Some(Some(chunk)) => body.extend_from_slice(&chunk),
                    Some(None) => break,
                    None => {
                        if self.stream.read_buf(&mut self.buf).await? == 0 {
                            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                        }
                    }
                }
            }
            payload.into_message_codec()
        };
        let keep = codec.keep_alive();
        self.codec = Some(codec);
        Ok((res, body.freeze(), keep))
    }
}
