//! Listeners and lifecycle: accept connections, configure HTTP/1.1 and h2c with
//! the bundle's limits, and drain gracefully on shutdown.
//!
//! The API listener speaks HTTP/1.1 and cleartext HTTP/2 (prior knowledge),
//! detected per connection. Slow or huge request heads are cut off by the
//! connection's timer (`conn::drive`: from accept until the first head, and from
//! the end of each response until the next head) and buffer limits, so no client can pin
//! a connection or memory. On shutdown `/readyz` turns 503 first, then the listener closes, open
//! connections are asked to finish (HTTP/1 closes after the current response,
//! HTTP/2 sends GOAWAY), and whatever is still running after the grace period is
//! dropped. The admin listener is separate so health checks never queue behind
//! API traffic; it has the same timeouts and a small connection cap.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::admin::{self, Admin, Draining};
use crate::analytics::{Analytics, Writer};
use crate::auth::{Security, SetupError};
use crate::bundle::Config;
use crate::conn::{ConnInfo, connection_builder, drive};
use crate::filter::Filters;
use crate::metrics::Metrics;
use crate::pipeline::Gateway;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on `{addr}` ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot start analytics: {0}")]
    Analytics(std::io::Error),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::BuildError),
    #[error(transparent)]
    Security(#[from] SetupError),
    #[error(transparent)]
    Filters(#[from] crate::filter::UnknownFilter),
}

/// A gateway with its listeners bound, ready to [`Server::run`].
pub struct Server {
    gateway: Arc<Gateway>,
    writer: Writer,
    /// Worker 0's API listener.
    api: TcpListener,
    /// The other workers' (`SO_REUSEPORT` on the same address), one each.
    more: Vec<std::net::TcpListener>,
    admin: TcpListener,
    /// TLS on the API listener, reloaded when its files change.
    tls: Option<Arc<crate::tls::Reloading>>,
}

impl Server {
    /// Binds both listeners and builds the pipeline. Must be called inside a
    /// tokio runtime.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        Self::bind_with(config, Filters::default()).await
    }

    /// [`Server::bind`], with native filters on every route (a custom runtime).
    pub async fn bind_with(config: Config, filters: Filters) -> Result<Server, ServeError> {
        Self::bind_workers(config, filters, 1).await
    }

    /// [`Server::bind_with`], served by `workers` worker threads, each with
    /// its own runtime and listener ([`crate::workers`]); the calling runtime
    /// is worker 0.
    pub async fn bind_workers(
        config: Config,
        filters: Filters,
        workers: usize,
    ) -> Result<Server, ServeError> {
        let mut filters = filters;
        filters.select(config.routes.iter().map(|r| {
            let api = &config.apis[r.api].name;
            (api.as_str(), r.operation_id.as_str(), r.filters.as_slice())
        }))?;
        let config = Arc::new(config);
        let bind_error = |source| ServeError::Bind {
            addr: config.api_addr,
            what: "API listener",
            source,
        };
        let mut listeners = crate::workers::bind(config.api_addr, workers)
            .map_err(bind_error)?
            .into_iter();
        let api = listeners.next().expect("at least one listener");
        let more = listeners
            .map(TcpListener::into_std)
            .collect::<Result<_, _>>()
            .map_err(bind_error)?;
        let admin = bind(config.admin_addr, "admin listener").await?;
        let metrics = Arc::new(Metrics::new(&config));
        // Certificates and secrets are read now: a missing or broken one is a
        // configuration error, reported before the gateway says it is ready.
        let tls = match &config.tls {
            Some(t) => Some(crate::tls::Reloading::load(t).map_err(SetupError::from)?),
            None => None,
        };
        let security = Security::load(&config, &metrics).await?;
        let (analytics, writer) =
            Analytics::start(config.clone(), metrics.clone()).map_err(ServeError::Analytics)?;
        let mut gateway = Gateway::new(config, security, metrics, analytics)?;
        if !filters.is_empty() {
            tracing::info!(filters = ?filters, "native filters");
        }
        gateway.set_filters(filters);
        let gateway = Arc::new(gateway);
        Ok(Server {
            gateway,
            writer,
            api,
            more,
            admin,
            tls,
        })
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.api
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Serves until `shutdown` completes, then drains and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            gateway,
            writer,
            api,
            more,
            admin,
            tls,
        } = self;
        let limits = gateway.config.limits.clone();
        let admin_addr = admin
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        // The admin listener reads the bundle, the metrics and this flag, nothing
        // else of the gateway.
        let (draining, readiness) = Draining::new();
        let admin_state = Admin::new(gateway.config.clone(), gateway.metrics.clone(), readiness);
        let admin_task = tokio::spawn(admin::serve(admin, admin_state));
        let mut background = gateway.spawn_background();
        if let Some(tls) = &tls {
            background.push(tls.watch(gateway.metrics.clone()));
        }
        let builder = connection_builder(&gateway.config);
        // Every connection task holds a receiver: `send` asks them to finish, and
        // `closed` completes when the last one is gone, on every worker.
        let drain = Arc::new(watch::channel(false).0);
        // The other workers stop accepting on `stop`, and their runtimes (with
        // any connection still open) end on `exit`.
        let (stop, _) = watch::channel(false);
        let (exit, _) = watch::channel(false);
        let mut threads = Vec::with_capacity(more.len());
        for (i, listener) in more.into_iter().enumerate() {
            let (builder, drain, gateway, tls) =
                (builder.clone(), drain.clone(), gateway.clone(), tls.clone());
            let (mut stop, mut exit) = (stop.subscribe(), exit.subscribe());
            let serve = move |api: TcpListener| async move {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                accept_loop(&api, &builder, &drain, &gateway, tls.as_ref(), stopped).await;
                drop(api);
                let _ = exit.wait_for(|e| *e).await;
            };
            match crate::workers::spawn(i + 1, listener, serve) {
                Ok(thread) => threads.push(thread),
                // Its listener is closed with it: the others get its share.
                Err(e) => tracing::error!(worker = i + 1, error = %e, "cannot start worker"),
            }
        }
        tracing::info!(
            api = %api.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            admin = %admin_addr,
            bundle = %gateway.config.digest,
            routes = gateway.config.routes.len(),
            workers = threads.len() + 1,
            "gateway ready"
        );
        accept_loop(&api, &builder, &drain, &gateway, tls.as_ref(), shutdown).await;

        // Drain: fail readiness, stop accepting, let in-flight requests finish.
        draining.start();
        drop(api);
        let _ = stop.send(true);
        tracing::info!(
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "draining"
        );
        let _ = drain.send(true);
        if tokio::time::timeout(limits.shutdown_grace, drain.closed())
            .await
            .is_err()
        {
            tracing::warn!("grace period over, closing remaining connections");
        }
        let _ = exit.send(true);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        admin_task.abort();
        for task in background {
            task.abort();
        }
        // Flush analytics off the runtime's worker threads.
        let _ = tokio::task::spawn_blocking(move || writer.stop()).await;
        tracing::info!("stopped");
    }
}

/// Accepts API connections on one worker's listener until `stop` completes.
async fn accept_loop(
    api: &TcpListener,
    builder: &auto::Builder<TokioExecutor>,
    drain: &watch::Sender<bool>,
    gateway: &Arc<Gateway>,
    tls: Option<&Arc<crate::tls::Reloading>>,
    stop: impl Future<Output = ()>,
) {
    let accepted = gateway
        .metrics
        .connections_accepted(crate::workers::current());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            conn = api.accept() => match conn {
                Ok((stream, peer)) => {
                    accepted.inc();
                    accept_connection(builder, drain.subscribe(), gateway, tls, stream, peer);
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, what, source })
}

/// Plain connections are served at once; TLS ones after their handshake, which
/// runs in the connection's task and is bounded by the header-read timeout.
fn accept_connection(
    builder: &auto::Builder<TokioExecutor>,
    drain: watch::Receiver<bool>,
    gateway: &Arc<Gateway>,
    tls: Option<&Arc<crate::tls::Reloading>>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    // The connection's clock starts now: the handshake counts against the time
    // a client has to send its first request head.
    let info = ConnInfo::new(peer);
    let Some(tls) = tls else {
        return serve_connection(builder, drain, gateway, stream, info);
    };
    // The configuration of this moment: a reload applies to later connections.
    let (tls, builder, gateway) = (tls.acceptor(), builder.clone(), gateway.clone());
    let limit = gateway.config.limits.header_read_timeout;
    tokio::spawn(async move {
        match tokio::time::timeout(limit, tls.accept(stream)).await {
            Ok(Ok(stream)) => {
                // Only a chain the client CA verified gets here with certificates.
                let subject = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|c| crate::tls::subject(c).unwrap_or_else(|| "verified-client".into()));
                let info = info.with_tls(subject.map(Into::into));
                serve_connection(&builder, drain, &gateway, stream, info);
            }
            Ok(Err(e)) => {
                gateway.metrics.connection_error("tls_handshake");
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
            }
            Err(_) => gateway.metrics.connection_error("tls_handshake_timeout"),
        }
    });
}

fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    drain: watch::Receiver<bool>,
    gateway: &Arc<Gateway>,
    stream: I,
    info: ConnInfo,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = info.peer;
    let activity = info.activity.clone();
    let gw = gateway.clone();
    // Shared by the connection's requests: one reference count each.
    let info = Arc::new(info);
    // The pipeline's future itself, not wrapped in another async block that
    // would hold the request once more (BENCHMARKS.md, "ninth wave").
    let service = service_fn(move |req| {
        gw.clone()
            .handle(req, info.clone())
            .map(Ok::<_, Infallible>)
    });
    // Each flush's first write waits for the worker's other ready tasks
    // (`write_batch`: sends in bursts, fewer wake-ups of idle CPUs).
    let io = TokioIo::new(crate::write_batch::Batched::new(stream));
    let conn = builder
        .clone()
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    let limits = gateway.config.limits.clone();
    let metrics = gateway.metrics.clone();
    metrics.connections_open.inc();
    tokio::spawn(async move {
        let result = drive(conn, |c| c.graceful_shutdown(), &activity, &limits, drain).await;
        if let Err(kind) = result {
            metrics.connection_error(kind);
            tracing::debug!(%peer, kind, "connection closed with an error");
        }
        metrics.connections_open.dec();
    });
}
