//! Loading a built image into a Docker engine through its API (bollard), the way
//! `docker load` does, without needing the `docker` CLI.
//!
//! The engine is the one `DOCKER_HOST` names (`unix://…`, `tcp://…`), else the local
//! socket; the API version is negotiated, so older engines work. The tarball is
//! streamed from disk. This module must never send registry credentials to the
//! engine (loading needs none) or leave the engine with a half-loaded image on
//! error without saying so.

use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::ImportImageOptions;
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

/// Loads `tarball` (a docker-archive) and returns the image `reference` names.
/// The engine is `DOCKER_HOST` from `env`, else the local socket.
pub fn load(tarball: &Path, reference: &str, env: &Env) -> Result<Loaded, DockerError> {
    let engine = engine(env);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DockerError::Connect {
            engine: engine.clone(),
            message: e.to_string(),
        })?;
    runtime.block_on(async {
        let connect = |e: bollard::errors::Error| DockerError::Connect {
            engine: engine.clone(),
            message: e.to_string(),
        };
        let docker = Docker::connect_with_host(&engine).map_err(connect)?;
        let docker = docker.negotiate_version().await.map_err(connect)?;
        let file = tokio::fs::File::open(tarball)
            .await
            .map_err(|source| DockerError::Read {
                path: tarball.to_owned(),
                source,
            })?;
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
            let info = item.map_err(|e| DockerError::Load {
                engine: engine.clone(),
                message: e.to_string(),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(DockerError::Load {
                    engine: engine.clone(),
                    message: detail.message.unwrap_or_default(),
                });
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
                message: e.to_string(),
            })?;
        Ok(Loaded {
            id: inspect.id.unwrap_or_default(),
            tags: inspect.repo_tags.unwrap_or_default(),
            engine: engine.clone(),
        })
    })
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
