//! Loading a built image into a Docker engine through its API (bollard), the way
//! `docker load` does, without needing the `docker` CLI.
//!
//! The engine is the one `DOCKER_HOST` names (`unix://…`, `tcp://…`), else the local
//! socket; the API version is negotiated, so older engines work. The tarball is
//! streamed from disk. This module must never send registry credentials to the
//! engine (loading needs none) or leave the engine with a half-loaded image on
//! error without saying so.
//!
//! bollard is built without its `pipe` feature: that one brings hyperlocal, whose
//! default features turn on hyper's `server`, and the builder links no HTTP server.
//! Unix sockets go through [`unix_transport`] instead (a hyper http1 client
//! connection per request); `tcp://` engines through bollard's own `http` client.

use std::path::{Path, PathBuf};

use bollard::query_parameters::ImportImageOptions;
use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};
use futures_util::StreamExt;
use serde::Serialize;

use crate::env::Env;

/// What the engine now holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Loaded {
    /// The image id (`sha256:` of the config).
    pub id: String,
    pub tags: Vec<String>,
    /// The engine (`DOCKER_HOST`, or the default socket).
    pub engine: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "cannot reach the Docker engine at `{engine}`: {message}; is dockerd running, and does `DOCKER_HOST` point at it?"
    )]
    Connect { engine: String, message: String },
    #[error("cannot read `{path}`")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the Docker engine at `{engine}` refused to load the image: {message}")]
    Load { engine: String, message: String },
    #[error(
        "the Docker engine at `{engine}` loaded the tarball but has no `{reference}`: {message}"
    )]
    Missing {
        engine: String,
        reference: String,
        message: String,
    },
}

/// The engine `DOCKER_HOST` names, else the local socket.
fn engine(env: &Env) -> String {
    env.var("DOCKER_HOST")
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

/// Seconds bollard waits for each response's head (its own default). The
/// `images/load` body streams on after that for as long as the load takes.
const TIMEOUT_SECS: u64 = 120;

/// A bollard client for `engine`.
fn connect(engine: &str) -> Result<Docker, String> {
    if let Some(path) = engine.strip_prefix("unix://") {
        // bollard only builds the request URI from this address; the transport
        // dials the socket itself.
        Docker::connect_with_custom_transport(
            unix_transport(PathBuf::from(path)),
            Some("http://docker"),
            TIMEOUT_SECS,
            API_DEFAULT_VERSION,
        )
        .map_err(|e| error_chain(&e))
    } else if engine.starts_with("tcp://") || engine.starts_with("http://") {
        Docker::connect_with_http(engine, TIMEOUT_SECS, API_DEFAULT_VERSION)
            .map_err(|e| error_chain(&e))
    } else {
        Err("only `unix://` and `tcp://` engines are supported".into())
    }
}

/// bollard's transport for a Unix socket: each request dials `socket`, does an
/// HTTP/1.1 handshake, and is sent in origin form with the `Host` bollard named.
fn unix_transport(
    socket: PathBuf,
) -> impl Fn(
    BollardRequest,
) -> futures_util::future::BoxFuture<
    'static,
    Result<http::Response<hyper::body::Incoming>, bollard::errors::Error>,
> + Send
+ Sync {
    move |request: BollardRequest| {
        let socket = socket.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            if let Some(host) = parts.uri.authority().map(|a| a.as_str().to_owned()) {
                parts.headers.insert(
                    http::header::HOST,
                    http::HeaderValue::from_str(&host).map_err(http::Error::from)?,
                );
            }
            let path = parts
                .uri
                .path_and_query()
                .map_or("/", http::uri::PathAndQuery::as_str)
                .to_owned();
            parts.uri = path.parse().map_err(http::Error::from)?;
            let stream = tokio::net::UnixStream::connect(&socket).await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "docker engine connection");
                }
            });
            Ok(sender
                .send_request(BollardRequest::from_parts(parts, body))
                .await?)
        })
    }
}

/// Loads `tarball` (a docker-archive) and returns the image `reference` names.
/// The engine is `DOCKER_HOST` from `env`, else the local socket.
pub fn load(tarball: &Path, reference: &str, env: &Env) -> Result<Loaded, DockerError> {
    let engine = engine(env);
    let connect_error = |message: String| DockerError::Connect {
        engine: engine.clone(),
        message,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| connect_error(e.to_string()))?;
    runtime.block_on(async {
        let docker = connect(&engine).map_err(connect_error)?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| connect_error(error_chain(&e)))?;
        let file = tokio::fs::File::open(tarball)
            .await
            .map_err(|source| DockerError::Read {
                path: tarball.to_owned(),
                source,
            })?;
        let load_error = |message: String| DockerError::Load {
            engine: engine.clone(),
            message,
        };
        let body = tokio_util::io::ReaderStream::new(file);
        let mut stream = docker.import_image_stream(
            ImportImageOptions {
                quiet: true,
                ..Default::default()
            },
            body,
            None,
        );
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| load_error(error_chain(&e)))?;
            if let Some(detail) = info.error_detail {
                return Err(load_error(detail.message.unwrap_or_default()));
            }
            if let Some(s) = info
                .stream
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                tracing::info!(engine = %engine, message = s, "docker load");
            }
        }
        let inspect = docker
            .inspect_image(reference)
            .await
            .map_err(|e| DockerError::Missing {
                engine: engine.clone(),
                reference: reference.to_owned(),
                message: error_chain(&e),
            })?;
        Ok(Loaded {
            id: inspect.id.unwrap_or_default(),
            tags: inspect.repo_tags.unwrap_or_default(),
            engine: engine.clone(),
        })
    })
}

/// An error with its sources (hyper's own message alone hides the OS error).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Write};

    /// Plays an engine that refuses the one request it reads; returns its head.
    fn refuse<S>(stream: S) -> String
    where
        S: std::io::Read + Write + Copy,
    {
        let mut reader = std::io::BufReader::new(stream);
        let mut head = String::new();
        while reader.read_line(&mut head).unwrap() > 2 {}
        let body = r#"{"message":"engine says no"}"#;
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        head
    }

    #[test]
    fn the_engine_is_docker_host_from_the_env_seam() {
        assert_eq!(
            engine(&Env::from_map::<&str, &str>([])),
            "unix:///var/run/docker.sock"
        );
        // The engine dialled is the one the map names: a socket that reads the
        // request and refuses it, so the load fails with the engine's message.
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let (seen, heads) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            seen.send(refuse(&stream)).unwrap();
        });
        let host = format!("unix://{}", socket.display());
        let env = Env::from_map([("DOCKER_HOST", host.as_str())]);
        assert_eq!(engine(&env), host);
        let err = load(Path::new("/nonexistent.tar"), "x:y", &env).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&format!("`{host}`")), "{message}");
        assert!(message.contains("engine says no"), "{message}");
        // Sent over the socket in origin form, with a Host header (HTTP/1.1).
        let head = heads.try_recv().expect("nothing connected to the socket");
        assert!(head.starts_with("GET /version HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("\r\nhost: docker\r\n"),
            "{head}"
        );
    }

    #[test]
    fn a_tcp_engine_is_dialled_over_tcp() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("tcp://{}", listener.local_addr().unwrap());
        let (seen, heads) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            seen.send(refuse(&stream)).unwrap();
        });
        let env = Env::from_map([("DOCKER_HOST", host.as_str())]);
        let message = load(Path::new("/nonexistent.tar"), "x:y", &env)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!("cannot reach the Docker engine at `{host}`")),
            "{message}"
        );
        assert!(message.contains("engine says no"), "{message}");
        let head = heads.try_recv().expect("nothing connected to the port");
        assert!(head.starts_with("GET /version HTTP/1.1\r\n"), "{head}");
    }

    #[test]
    fn an_absent_engine_is_named_with_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}", dir.path().join("absent.sock").display());
        let env = Env::from_map([("DOCKER_HOST", host.as_str())]);
        let message = load(Path::new("/nonexistent.tar"), "x:y", &env)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!("cannot reach the Docker engine at `{host}`")),
            "{message}"
        );
        assert!(message.contains("No such file or directory"), "{message}");
        let env = Env::from_map([("DOCKER_HOST", "ssh://engine")]);
        let message = load(Path::new("/nonexistent.tar"), "x:y", &env)
            .unwrap_err()
            .to_string();
        assert!(message.contains("only `unix://` and `tcp://`"), "{message}");
    }
}
