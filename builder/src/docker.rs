//! Loading a built image into a Docker engine through its API, the way
//! `docker load` does, without needing the `docker` CLI.
//!
//! The engine is the one `DOCKER_HOST` names (`unix://…`, `tcp://…`), else the local
//! socket. Three calls of the Engine API, over the HTTP client the builder already
//! has (reqwest, which dials Unix sockets): `GET /_ping`, `POST /images/load` and
//! `GET /images/{name}/json`, on unversioned paths so the engine answers in its
//! own API version and older engines work. The tarball is streamed from disk.
//! This module must never send registry credentials to the engine (loading needs
//! none) or leave the engine with a half-loaded image on error without saying so.

use std::path::Path;

use serde::{Deserialize, Serialize};

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

/// A client for `engine` and the base URL its requests go to.
fn client(engine: &str) -> Result<(reqwest::blocking::Client, String), String> {
    let builder = reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        // A large image takes as long as it takes to load.
        .timeout(None)
        .no_proxy();
    let (builder, base) = if let Some(path) = engine.strip_prefix("unix://") {
        (builder.unix_socket(path), "http://docker".to_owned())
    } else if let Some(addr) = engine
        .strip_prefix("tcp://")
        .or_else(|| engine.strip_prefix("http://"))
    {
        (builder, format!("http://{}", addr.trim_end_matches('/')))
    } else {
        return Err("only `unix://` and `tcp://` engines are supported".into());
    };
    let client = builder.build().map_err(|e| e.to_string())?;
    Ok((client, base))
}

/// One message of the `POST /images/load` progress stream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    error_detail: Option<ErrorDetail>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
}

/// `GET /images/{name}/json`, the parts we report.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    #[serde(default)]
    id: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
}

/// The engine's message for a refused request (`{"message": …}`), else the status.
fn refusal(r: reqwest::blocking::Response) -> String {
    let status = r.status();
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_reader::<_, Message>(r) {
        Ok(m) => m.message,
        Err(_) => status.to_string(),
    }
}

/// Loads `tarball` (a docker-archive) and returns the image `reference` names.
/// The engine is `DOCKER_HOST` from `env`, else the local socket.
pub fn load(tarball: &Path, reference: &str, env: &Env) -> Result<Loaded, DockerError> {
    let engine = engine(env);
    let connect = |message: String| DockerError::Connect {
        engine: engine.clone(),
        message,
    };
    let (client, base) = client(&engine).map_err(connect)?;
    let ping = client
        .get(format!("{base}/_ping"))
        .send()
        .map_err(|e| connect(error_chain(&e)))?;
    if !ping.status().is_success() {
        return Err(connect(refusal(ping)));
    }
    let file = std::fs::File::open(tarball).map_err(|source| DockerError::Read {
        path: tarball.to_owned(),
        source,
    })?;
    let load_error = |message: String| DockerError::Load {
        engine: engine.clone(),
        message,
    };
    let response = client
        .post(format!("{base}/images/load?quiet=1"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
        .body(reqwest::blocking::Body::new(file))
        .send()
        .map_err(|e| load_error(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(load_error(refusal(response)));
    }
    for item in serde_json::Deserializer::from_reader(response).into_iter::<Progress>() {
        let info = item.map_err(|e| load_error(e.to_string()))?;
        if info.error_detail.is_some() || info.error.is_some() {
            let message = info
                .error_detail
                .and_then(|d| d.message)
                .or(info.error)
                .unwrap_or_default();
            return Err(load_error(message));
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
    let missing = |message: String| DockerError::Missing {
        engine: engine.clone(),
        reference: reference.to_owned(),
        message,
    };
    let inspect = client
        .get(format!("{base}/images/{reference}/json"))
        .send()
        .map_err(|e| missing(error_chain(&e)))?;
    if !inspect.status().is_success() {
        return Err(missing(refusal(inspect)));
    }
    let inspect: Inspect = serde_json::from_reader(inspect).map_err(|e| missing(e.to_string()))?;
    Ok(Loaded {
        id: inspect.id,
        tags: inspect.repo_tags.unwrap_or_default(),
        engine: engine.clone(),
    })
}

/// An error with its sources (reqwest's own message alone hides the OS error).
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

    #[test]
    fn the_engine_is_docker_host_from_the_env_seam() {
        assert_eq!(
            engine(&Env::from_map::<&str, &str>([])),
            "unix:///var/run/docker.sock"
        );
        // The engine dialled is the one the map names: a socket that hangs up,
        // so the load fails after the connection was seen.
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let (seen, connected) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            seen.send(()).unwrap();
            drop(stream);
        });
        let host = format!("unix://{}", socket.display());
        let env = Env::from_map([("DOCKER_HOST", host.as_str())]);
        assert_eq!(engine(&env), host);
        let err = load(Path::new("/nonexistent.tar"), "x:y", &env).unwrap_err();
        assert!(err.to_string().contains(&format!("`{host}`")), "{err}");
        // Sent before the hang-up the load saw.
        assert!(
            connected.try_recv().is_ok(),
            "nothing connected to `{host}`: {err}"
        );
    }
}
