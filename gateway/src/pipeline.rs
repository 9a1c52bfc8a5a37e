//! The request path, as one ordered pipeline.
//!
//! ```text
//! header hygiene → request id → [CORS preflight] → route → authenticate
//!   → authorize → rate-limit → body limit → validate → transform → filters
//!   → proxy | mock → record
//! ```
//!
//! Each stage is a step in [`Gateway::handle`] and returns early with a
//! [`GatewayError`]; errors become responses in exactly one place
//! ([`GatewayError::into_response`]). Recording happens when the response body ends
//! (or the client goes away), so latency and byte counts cover the whole exchange.
//! Authentication and authorization ([`crate::auth`]) sit after routing because
//! they need the operation, and before the body limit and proxy so that rejected
//! callers cost no upstream work; rate limiting comes after them so it can key on
//! the consumer and so that requests refused by auth count against no quota. CORS
//! preflights are answered before authentication: browsers send them without
//! credentials.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::header::{HeaderValue, ORIGIN};
use http::{Extensions, Method, Request, Response};
use hyper::body::Incoming;

use crate::analytics::{Analytics, Event};
use crate::auth::{Identity, Security};
use crate::body::{BodyState, Finish, RequestBody, ResponseBody};
use crate::bundle::transform::TransformCfg;
use crate::bundle::{Config, RouteCfg, SandboxBy};
use crate::conn::{ConnInfo, InFlight};
use crate::cors::{self, CorsPolicy};
use crate::error::GatewayError;
use crate::filter::{Filters, RouteInfo, Session};
use crate::header_names::X_REQUEST_ID;
use crate::headers;
use crate::metrics::{AuthOutcome, Metrics, RouteMetrics};
use crate::mock;
use crate::proxy::{self, Outbound, Upstream};
use crate::ratelimit::{self, Caller, RateLimiter, RouteLimits, Verdict};
use crate::request_id;
use crate::resilience::ConcurrencyPermit;
use crate::response_check;
use crate::router::{Lookup, Params, Router, RouterBuilder};
use crate::trace::{self, Exporter, RequestTrace, Stage, Tracer};
use crate::transform::{self, Facts};
use crate::validate::{self, Checked};

/// A route with its runtime handles. Its configuration is read from
/// `config.routes[index]` ([`Gateway::cfg`]), kept there once.
struct Route {
    index: u32,
    metrics: RouteMetrics,
    /// The rate-limit scopes that apply to this route; `None` when none does
    /// (boxed: most routes of a large bundle have none, and the scopes and
    /// policy headers are 112 bytes).
    limits: Option<Box<RouteLimits>>,
    /// The CORS policy of the route's API, shared by all its routes.
    cors: Option<Arc<CorsPolicy>>,
}

/// Everything the request path needs, built once from the bundle.
pub struct Gateway {
    pub config: Arc<Config>,
    router: Router<Route>,
    upstreams: Vec<Upstream>,
    pub metrics: Arc<Metrics>,
    analytics: Analytics,
    /// `None` when the bundle has no rate-limit policy.
    rate_limiter: Option<RateLimiter>,
    /// Authentication and authorization per API.
    security: Security,
    /// Native filters of a custom runtime (none in the stock gateway).
    filters: Filters,
    /// `None` when tracing is off.
    tracer: Option<Tracer>,
    /// Taken by [`Gateway::spawn_background`].
    exporter: std::sync::Mutex<Option<Exporter>>,
}

/// Why the pipeline cannot be built from a checked configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build the router: {0}")]
    Router(#[from] crate::router::RouteError),
    #[error(transparent)]
    UpstreamTls(#[from] crate::upstream_tls::UpstreamTlsError),
    #[error(transparent)]
    Redis(#[from] crate::ratelimit::redis::RedisSetupError),
    #[error(transparent)]
    Otlp(#[from] crate::otlp::OtlpSetupError),
}

impl Gateway {
    /// Builds the pipeline from a checked configuration and the security
    /// providers [`Security::load`] started for it.
    pub fn new(
        config: Arc<Config>,
        security: Security,
        metrics: Arc<Metrics>,
        analytics: Analytics,
    ) -> Result<Self, BuildError> {
        let mut builder = RouterBuilder::new();
        let mut rate_limiter = RateLimiter::new(&config, &metrics)?;
        let cors: Vec<Option<Arc<CorsPolicy>>> = config
            .apis
            .iter()
            .map(|a| a.cors.clone().map(|c| Arc::new(CorsPolicy::new(c))))
            .collect();
        // `metrics` was built from this `config`: one series per route, in order.
        let series = metrics.routes();
        debug_assert_eq!(series.len(), config.routes.len());
        for ((i, r), route_metrics) in config.routes.iter().enumerate().zip(series) {
            let route = Route {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                metrics: route_metrics,
                limits: rate_limiter
                    .as_mut()
                    .map(|rl| rl.route(&config, r))
                    .filter(|l| !l.is_empty())
                    .map(Box::new),
                cors: cors[r.api].clone(),
            };
            builder.insert(r.method.clone(), &r.template, route)?;
        }
        // At its final size: collecting a `Result` grows the vector by
        // doubling, and every outgrown copy (kilobytes per upstream) would
        // stay as garbage in pages that long-lived objects keep resident.
        let mut upstreams = Vec::with_capacity(config.upstreams.len());
        for u in &config.upstreams {
            upstreams.push(Upstream::new(u.clone(), metrics.upstream(&u.name))?);
        }
        let (tracer, exporter) = match &config.tracing {
            Some(t) => {
                let (tr, ex) = Tracer::new(t, &config.gateway.name, metrics.traffic.trace.clone())?;
                (Some(tr), Some(ex))
            }
            None => (None, None),
        };
        Ok(Self {
            tracer,
            exporter: std::sync::Mutex::new(exporter),
            security,
            filters: Filters::default(),
            router: builder.build(),
            upstreams,
            config,
            metrics,
            analytics,
            rate_limiter,
        })
    }

    /// Runs these native filters on every route (before the gateway is shared).
    pub fn set_filters(&mut self, filters: Filters) {
        self.filters = filters;
    }

    /// Starts the traffic-policy background tasks: sweeping idle rate-limit keys
    /// and active upstream health checks. Abort them at shutdown.
    pub fn spawn_background(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if self.rate_limiter.is_some() {
            let gw = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    if let Some(rl) = &gw.rate_limiter {
                        rl.sweep();
                    }
                }
            }));
        }
        let exporter = self.exporter.lock().ok().and_then(|mut e| e.take());
        if let Some(exporter) = exporter {
            tasks.push(tokio::spawn(exporter.run()));
        }
        if let Some(store) = self.rate_limiter.as_ref().and_then(|rl| rl.global_store()) {
            tasks.push(tokio::spawn(store.clone().run()));
        }
        for u in &self.upstreams {
            if let Some(checker) = u.health_checker() {
                tasks.push(tokio::spawn(checker));
            }
        }
        tasks
    }

    /// The rate limiter's own counters (keys, capacity, bytes, evictions).
    pub fn rate_limit_stats(&self) -> Option<ratelimit::StoreStats> {
        self.rate_limiter.as_ref().map(RateLimiter::stats)
    }

    /// Serves one request; never fails: every error becomes a response here.
    /// The gateway and the connection come as owned pointers: the future holds
    /// 8 bytes of each, and a request costs one reference count per `Arc`
    /// (BENCHMARKS.md, "ninth wave").
    pub async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        conn: Arc<ConnInfo>,
    ) -> Response<ResponseBody> {
        // Stage 0: header hygiene, before anything reads a header: hop-by-hop
        // headers (and those `Connection` names) go now, so no client header can
        // remove one the gateway sets later; an ambiguous `Host` is refused below.
        let hygiene = headers::sanitize(&mut req);
        // Stage 1: request id, first, so that every answer, errors included, carries it.
        // The wall clock, read only for the analytics event and the trace.
        let time = (self.analytics.is_on() || self.tracer.is_some()).then(SystemTime::now);
        let mut ctx = Ctx {
            // Joins the caller's trace (W3C `traceparent`) or starts one.
            trace: self
                .tracer
                .as_ref()
                .map(|t| t.start(req.headers(), time.unwrap_or_else(SystemTime::now))),
            start: Instant::now(),
            time,
            request_id: request_id::take_or_generate(req.headers().get(&X_REQUEST_ID)),
            method: req.method().clone(),
            client_ip: crate::client_ip::client_ip(
                &self.config.trusted_proxies,
                conn.peer.ip(),
                req.headers(),
            ),
            rate_limit: None,
            upstream_permit: None,
            // Dropped with the record, or with this future if the client goes away first.
            in_flight: InFlight::start(&conn, req.version(), &self.metrics),
            origin: None,
            identity: None,
            auth: None,
            filter_ctx: Extensions::new(),
        };
        let hygiene = match hygiene {
            Ok(h) => h,
            Err(e) => return self.reject(e, None, ctx),
        };

        // Stage 2: route. Everything after needs to know the operation. A CORS
        // preflight is routed by the method the browser asks about and, when that
        // route's API configures CORS, answered here, before authentication
        // (browsers send preflights without credentials).
        let path = req.uri().path();
        let preflight = cors::preflight(&req);
        let routed = match &preflight {
            Some((_, requested)) => self.route(requested, path),
            None => self.route(req.method(), path),
        };
        if let (Ok(route), Some((origin, requested))) = (&routed, &preflight) {
            if let Some(policy) = &route.cors {
                return self.answer_preflight(route, policy, &req, (origin, requested), ctx);
            }
        }
        // A preflight to an API without CORS is the `OPTIONS` request it is.
        let routed = match preflight {
            Some(_) => self.route(req.method(), path),
            None => routed,
        };
        let route = match routed {
            Ok(route) => route,
            Err(e) => return self.reject(e, None, ctx),
        };
        if route.cors.is_some() {
            ctx.origin = req.headers().get(ORIGIN).cloned();
        }
        let cfg = self.cfg(route);
        // Header names with `_`, by the API's policy, before any stage reads them.
        let api = cfg.api;
        if let Err(e) = headers::underscores(
            req.headers_mut(),
            self.config.apis[api].underscore_headers,
            |name| self.security.is_claim_header(api, name),
        ) {
            return self.reject(e, Some(route), ctx);
        }

        // Stage 3: authenticate and authorize. The operation names its security
        // requirements; the identity feeds analytics and rate-limit keys.
        let t = ctx.stage_start();
        let (checked, outcome) = self.security.check(cfg, &mut req, &conn).await;
        ctx.stage(Stage::Auth, t);
        ctx.auth = Some(outcome);
        match checked {
            Ok(identity) => ctx.identity = identity,
            Err(e) => return self.reject(e, Some(route), ctx),
        }

        // Stage 4: rate limit. After authentication (a quota is kept per consumer, and
        // requests refused by auth never count against one), before the body limit
        // and the proxy so a refused request costs no upstream work.
        let consumer: Option<&str> = ctx.identity.as_ref().map(|i| &*i.consumer);
        let allowed = match &self.rate_limiter {
            None => None,
            Some(rl) => {
                let caller = Caller {
                    consumer,
                    client_ip: ctx.client_ip,
                    headers: req.headers(),
                    claims: ctx.identity.as_deref().map(|i| i as &dyn ratelimit::Claims),
                };
                let t = ctx.trace.is_some().then(SystemTime::now);
                let verdict = match &route.limits {
                    Some(limits) => rl.check(limits, &caller, ctx.start).await,
                    None => Verdict::Unlimited,
                };
                if let (Some(tr), Some(t)) = (&mut ctx.trace, t) {
                    tr.stage(Stage::RateLimit, t);
                }
                match verdict {
                    Verdict::Unlimited => None,
                    Verdict::Allowed(a) => {
                        ctx.rate_limit = rl.outcome(&a);
                        Some(a)
                    }
                    Verdict::Limited(l) => {
                        ctx.rate_limit = Some(l.outcome.clone());
                        return self.reject(GatewayError::RateLimited(l), Some(route), ctx);
                    }
                }
            }
        };

        // Stage 5: body limit. Before the proxy so an oversized declared body costs
        // no upstream connection; bodies without a length are limited while streaming.
        let limit = cfg.max_body_bytes;
        if declared_length(&req).is_some_and(|len| len > limit) {
            return self.reject(GatewayError::PayloadTooLarge { limit }, Some(route), ctx);
        }

        // Stage 6: request validation against the operation's OpenAPI contract.
        // After authentication and rate limiting, so an unknown or over-quota
        // caller costs no parsing and sees no schema detail; after the body limit,
        // so an oversized declared body is refused before it is read; before the
        // mock and the proxy, so an invalid request costs no upstream work. Only a
        // JSON body with a schema is buffered; every other body keeps streaming.
        let (parts, incoming) = req.into_parts();
        let source = match &cfg.request {
            None => Checked::Stream(incoming),
            Some(contract) => {
                let params = if contract.has_path_parameters {
                    self.params(&parts.method, parts.uri.path())
                        .into_iter()
                        .collect()
                } else {
                    Vec::new()
                };
                match validate::request(contract, &parts, &params, incoming, limit).await {
                    Ok(checked) => checked,
                    Err(e) => {
                        let reason = match &e {
                            GatewayError::InvalidRequest(i) => i.reason,
                            other => other.kind(),
                        };
                        self.metrics.validation_failed(
                            &self.config.apis[api].name,
                            &cfg.operation_id,
                            reason,
                        );
                        return self.reject(e, Some(route), ctx);
                    }
                }
            }
        };

        let mut req = Request::from_parts(parts, source);

        // Stage 7: transforms (`transform`), after every check so policies and
        // validation judge the request as the client sent it, and just before the
        // filters and the proxy so the upstream sees what they produce. A route
        // without any skips it.
        let response_edits = match &cfg.transforms {
            None => None,
            Some(t) => match self.transform(t, &mut req, &ctx, cfg.base_segments) {
                Ok(transform::Outcome::Forward(edits)) => edits,
                Ok(transform::Outcome::Answer(r)) => {
                    return self.answer(route, r, allowed.as_ref(), ctx);
                }
                Err(e) => return self.reject(e, Some(route), ctx),
            },
        };

        // Stage 7b: native filters, after the transforms they may build on; a
        // gateway without filters skips it.
        if !self.filters.is_empty() {
            req = match self.filter_request(route, req, &mut ctx) {
                Ok(req) => req,
                Err(answer) => {
                    let answer = (*answer).map(ResponseBody::full);
                    return self.answer(route, answer, allowed.as_ref(), ctx);
                }
            };
        }

        // Stage 8: proxy (or the mock answer of an operation that asks for one).
        // The head stays here and the proxy borrows it: a request moved into
        // each async layer is copied into each one's state.
        let (mut parts, source) = req.into_parts();
        let (body, body_state) = match source {
            Checked::Stream(b) if hyper::body::Body::is_end_stream(&b) => {
                (RequestBody::Empty, None)
            }
            Checked::Stream(b) => {
                let (body, state) = RequestBody::streaming(b, limit);
                (body, Some(state))
            }
            Checked::Buffered(b) if b.is_empty() => (RequestBody::Empty, None),
            Checked::Buffered(b) => {
                let (body, state) = RequestBody::buffered(b, limit);
                (body, Some(state))
            }
        };
        // Sandbox traffic (a claim of the authenticated caller, or a header) has
        // its own upstream.
        let sandbox = cfg.sandbox.as_ref().filter(|sb| match &sb.by {
            SandboxBy::Claim(claim) => ctx
                .identity
                .as_ref()
                .is_some_and(|id| id.claim_is(claim, &sb.value)),
            SandboxBy::Header(h) => parts.headers.get(h).is_some_and(|v| v == sb.value.as_str()),
        });
        let upstream = sandbox.map_or(cfg.upstream, |sb| sb.upstream);
        let outbound = Outbound {
            upstream: &self.upstreams[upstream],
            base_segments: cfg.base_segments,
            forwarded_for: &conn.forwarded_for,
            request_id: &ctx.request_id,
            body: body_state.clone(),
            proto: if conn.tls { "https" } else { "http" },
            // Opt-in per operation: elsewhere the upgrade was stripped and the
            // request goes upstream as a plain one.
            websocket: hygiene.websocket && cfg.websocket,
        };
        let (mut response, upstream_latency, error, tunnel) = if let Some(m) = &cfg.mock {
            (mock::answer(m, &parts.headers), None, None, None)
        } else {
            // The upstream call is a client span, the parent of the upstream's own.
            if let Some(tr) = &mut ctx.trace {
                tr.propagate(&mut parts.headers);
            }
            // Sent after the worker's other ready tasks, with their sends
            // (`write_batch`); the upstream stage's clock starts after.
            crate::write_batch::after_ready_tasks().await;
            let t = ctx.stage_start();
            let forwarded = proxy::forward(outbound, &mut parts, body).await;
            ctx.stage(Stage::Upstream, t);
            match forwarded {
                Ok(answer) => {
                    // Counted against the upstream's concurrency cap until the body ends.
                    ctx.upstream_permit = Some(answer.permit);
                    let (parts, body) = answer.response.into_parts();
                    let mut response = Response::from_parts(parts, ResponseBody::upstream(body));
                    // Report mode: compared with the document, never held up.
                    if let Some(rc) = &cfg.responses {
                        let op = response_check::Operation {
                            api: &self.config.apis[api].name,
                            id: &cfg.operation_id,
                        };
                        response_check::observe(rc, &mut response, &self.metrics, op, limit);
                    }
                    (response, Some(answer.latency), None, answer.tunnel)
                }
                Err(e) => {
                    let kind = e.kind();
                    (e.into_response(&ctx.request_id), None, Some(kind), None)
                }
            }
        };
        // The upstream's answer (or the mock standing in for it) only, before the
        // gateway's own headers below.
        if let (Some(edits), None) = (&response_edits, error) {
            edits.apply(response.headers_mut());
        }
        if !self.filters.is_empty() && error.is_none() {
            response = self.filter_response(route, response, &mut ctx);
        }
        response
            .headers_mut()
            .insert(X_REQUEST_ID, ctx.request_id.clone());
        if let (Some(rl), Some(a), Some(l)) = (&self.rate_limiter, &allowed, &route.limits) {
            rl.write_headers(l, a, response.headers_mut());
        }
        self.apply_cors(route, ctx.origin.as_ref(), &mut response);

        // Stage 9: record, when the response body is done; for a spliced
        // WebSocket, when the tunnel closes, with the bytes it carried.
        if let Some(tunnel) = tunnel {
            let record = self.record_of(&response, Some(route), ctx, upstream_latency, None, None);
            tokio::spawn(async move {
                let t = tunnel.await.unwrap_or_default();
                Box::new(Record {
                    tunnel_in: t.from_client,
                    ..record
                })
                .finish(t.to_client);
            });
            return response;
        }
        self.record(
            &mut response,
            Some(route),
            ctx,
            upstream_latency,
            error,
            body_state,
        );
        response
    }

    /// The route stage: the route of `method` and `path`. `/a/` where only `/a`
    /// is routed finds that route, if its API allows it (the upstream still gets
    /// the path as sent).
    fn route(&self, method: &Method, path: &str) -> Result<&Route, GatewayError> {
        match self.router.find(method, path) {
            Lookup::Found(m) => Ok(m.value),
            Lookup::NotFound if path.len() > 1 && path.ends_with('/') => {
                match self.router.find(method, &path[..path.len() - 1]) {
                    Lookup::Found(m) if self.cfg(m.value).ignore_trailing_slash => Ok(m.value),
                    _ => Err(GatewayError::NotFound),
                }
            }
            Lookup::MethodNotAllowed { allow } => Err(GatewayError::MethodNotAllowed {
                allow: allow.clone(),
            }),
            Lookup::NotFound => Err(GatewayError::NotFound),
            Lookup::InvalidPath(_) => Err(GatewayError::BadPath),
        }
    }

    /// The transform stage. Path parameters are looked up again (the route
    /// stage keeps none) only when a template reads one.
    fn transform<B>(
        &self,
        t: &Arc<TransformCfg>,
        req: &mut Request<B>,
        ctx: &Ctx,
        base_segments: usize,
    ) -> Result<transform::Outcome, GatewayError> {
        let uri = t.reads_path_params.then(|| req.uri().clone());
        let params = match &uri {
            Some(uri) => self.params(req.method(), uri.path()),
            None => Params::default(),
        };
        let facts = Facts {
            identity: ctx.identity.as_deref(),
            client_ip: ctx.client_ip,
            request_id: &ctx.request_id,
            params: &params,
            base_segments,
        };
        transform::on_request(t, req, &facts)
    }

    /// The decoded path parameters of the route serving `method` and `path`
    /// (the route stage's trailing-slash rule included).
    fn params<'a>(&'a self, method: &Method, path: &'a str) -> Params<'a, 'a> {
        if let Lookup::Found(m) = self.router.lookup(method, path) {
            return m.params;
        }
        match path
            .strip_suffix('/')
            .map(|p| self.router.lookup(method, p))
        {
            Some(Lookup::Found(m)) => m.params,
            _ => Params::default(),
        }
    }

    /// The checked configuration of `route`: `Gateway::new` numbered the
    /// routes from `config.routes`, so the index is always in range.
    fn cfg(&self, route: &Route) -> &RouteCfg {
        &self.config.routes[route.index as usize]
    }

    fn route_info<'a>(&'a self, r: &'a RouteCfg) -> RouteInfo<'a> {
        RouteInfo {
            api: &self.config.apis[r.api].name,
            operation_id: &r.operation_id,
            method: &r.method,
            template: &r.template,
        }
    }

    /// The filters' request phase: the request to forward, or their answer.
    fn filter_request<B>(
        &self,
        route: &Route,
        req: Request<B>,
        ctx: &mut Ctx,
    ) -> Result<Request<B>, Box<Response<bytes::Bytes>>> {
        let (mut parts, body) = req.into_parts();
        let mut session = Session {
            route: self.route_info(self.cfg(route)),
            identity: ctx.identity.as_deref(),
            client_ip: ctx.client_ip,
            request_id: &ctx.request_id,
            ctx: &mut ctx.filter_ctx,
        };
        match self.filters.on_request(&mut session, &mut parts) {
            Some(answer) => Err(Box::new(answer)),
            None => Ok(Request::from_parts(parts, body)),
        }
    }

    fn filter_response(
        &self,
        route: &Route,
        response: Response<ResponseBody>,
        ctx: &mut Ctx,
    ) -> Response<ResponseBody> {
        let (mut parts, body) = response.into_parts();
        let mut session = Session {
            route: self.route_info(self.cfg(route)),
            identity: ctx.identity.as_deref(),
            client_ip: ctx.client_ip,
            request_id: &ctx.request_id,
            ctx: &mut ctx.filter_ctx,
        };
        self.filters.on_upstream_response(&mut session, &mut parts);
        Response::from_parts(parts, body)
    }

    /// The gateway's own answer after every check (a static response).
    fn answer(
        self: &Arc<Self>,
        route: &Route,
        mut response: Response<ResponseBody>,
        allowed: Option<&ratelimit::Allowed>,
        ctx: Ctx,
    ) -> Response<ResponseBody> {
        response
            .headers_mut()
            .insert(X_REQUEST_ID, ctx.request_id.clone());
        if let (Some(rl), Some(a), Some(l)) = (&self.rate_limiter, allowed, &route.limits) {
            rl.write_headers(l, a, response.headers_mut());
        }
        self.apply_cors(route, ctx.origin.as_ref(), &mut response);
        self.record(&mut response, Some(route), ctx, None, None, None);
        response
    }

    /// The gateway's answer to a CORS preflight for a route whose API
    /// configures CORS.
    fn answer_preflight(
        self: &Arc<Self>,
        route: &Route,
        policy: &CorsPolicy,
        req: &Request<Incoming>,
        (origin, requested): (&HeaderValue, &Method),
        ctx: Ctx,
    ) -> Response<ResponseBody> {
        if !policy.allows(origin) {
            return self.reject(GatewayError::CorsRejected, Some(route), ctx);
        }
        let mut response = policy.preflight_response(req, origin, requested);
        response
            .headers_mut()
            .insert(X_REQUEST_ID, ctx.request_id.clone());
        self.record(&mut response, Some(route), ctx, None, None, None);
        response
    }

    /// Answers with an error before any upstream work.
    fn reject(
        self: &Arc<Self>,
        error: GatewayError,
        route: Option<&Route>,
        ctx: Ctx,
    ) -> Response<ResponseBody> {
        let kind = error.kind();
        if route.is_none() {
            self.metrics.unrouted(kind);
        }
        let mut response = error.into_response(&ctx.request_id);
        if let Some(route) = route {
            self.apply_cors(route, ctx.origin.as_ref(), &mut response);
        }
        self.record(&mut response, route, ctx, None, Some(kind), None);
        response
    }

    /// CORS headers on an actual response, for an API that configures CORS.
    fn apply_cors(
        &self,
        route: &Route,
        origin: Option<&HeaderValue>,
        response: &mut Response<ResponseBody>,
    ) {
        if let Some(policy) = &route.cors {
            policy.apply(origin, response.headers_mut());
        }
    }

    fn record(
        self: &Arc<Self>,
        response: &mut Response<ResponseBody>,
        route: Option<&Route>,
        ctx: Ctx,
        upstream: Option<Duration>,
        error: Option<&'static str>,
        body: Option<Arc<BodyState>>,
    ) {
        let record = self.record_of(response, route, ctx, upstream, error, body);
        response.body_mut().on_finish(Box::new(record));
    }

    fn record_of(
        self: &Arc<Self>,
        response: &Response<ResponseBody>,
        route: Option<&Route>,
        ctx: Ctx,
        upstream: Option<Duration>,
        error: Option<&'static str>,
        body: Option<Arc<BodyState>>,
    ) -> Record {
        Record {
            gateway: self.clone(),
            route: route.map(|r| r.index),
            route_metrics: route.map(|r| r.metrics.clone()),
            status: response.status().as_u16(),
            ctx,
            upstream,
            error,
            body,
            tunnel_in: 0,
        }
    }
}

/// What every stage may need to know about the request being served.
struct Ctx {
    start: Instant,
    /// When the request came, by the wall clock; `None` when neither analytics
    /// nor tracing is on.
    time: Option<SystemTime>,
    request_id: HeaderValue,
    method: http::Method,
    /// The client's address after trusted proxies (see `client_ip`).
    client_ip: IpAddr,
    rate_limit: Option<ratelimit::Outcome>,
    /// The upstream concurrency slot, released with the record.
    upstream_permit: Option<ConcurrencyPermit>,
    /// Released when the record is dropped, after `finish`.
    in_flight: InFlight,
    /// `Origin`, kept only for APIs with CORS.
    origin: Option<HeaderValue>,
    /// Who is calling, once authenticated (rate limits may key on it).
    identity: Option<Arc<Identity>>,
    /// Authentication outcome, for analytics.
    auth: Option<AuthOutcome>,
    /// Native filters' per-request state (empty, and free, without filters).
    filter_ctx: Extensions,
    /// This request's spans, when tracing is on.
    trace: Option<RequestTrace>,
}

impl Ctx {
    /// When a stage starts, read only when the request is traced.
    fn stage_start(&self) -> Option<SystemTime> {
        self.trace.is_some().then(SystemTime::now)
    }

    fn stage(&mut self, stage: Stage, start: Option<SystemTime>) {
        if let (Some(t), Some(start)) = (&mut self.trace, start) {
            t.stage(stage, start);
        }
    }
}

/// The body's `Content-Length`, as hyper read it from the head (and checked:
/// a malformed or conflicting one never gets here); `None` for a chunked body.
fn declared_length(req: &Request<Incoming>) -> Option<u64> {
    hyper::body::Body::size_hint(req.body()).exact()
}

/// The record stage: runs once when the response body is finished or dropped.
struct Record {
    gateway: Arc<Gateway>,
    route: Option<u32>,
    route_metrics: Option<RouteMetrics>,
    status: u16,
    ctx: Ctx,
    upstream: Option<Duration>,
    error: Option<&'static str>,
    body: Option<Arc<BodyState>>,
    /// Bytes the client sent through a spliced WebSocket.
    tunnel_in: u64,
}

impl Finish for Record {
    fn finish(mut self: Box<Self>, bytes_out: u64) {
        // One clock read: the latency, and when the connection became idle.
        let now = Instant::now();
        let total = now.saturating_duration_since(self.ctx.start);
        let trace = self.ctx.trace.take();
        let trace_id = trace.as_ref().map(RequestTrace::trace_id_hex);
        let g = &self.gateway;
        if let (false, Some(i)) = (g.filters.is_empty(), self.route) {
            let cfg = &g.config.routes[i as usize];
            let mut session = Session {
                route: g.route_info(cfg),
                identity: self.ctx.identity.as_deref(),
                client_ip: self.ctx.client_ip,
                request_id: &self.ctx.request_id,
                ctx: &mut self.ctx.filter_ctx,
            };
            let status = http::StatusCode::from_u16(self.status).unwrap_or_default();
            g.filters.on_end(&mut session, status);
        }
        if let (Some(tracer), Some(t)) = (&g.tracer, trace) {
            let route = self.route.and_then(|i| g.config.routes.get(i as usize));
            tracer.finish(
                t,
                &trace::Finished {
                    method: self.ctx.method.as_str(),
                    route: route.map(|r| r.template.as_str()),
                    api: route.map(|r| g.config.apis[r.api].name.as_str()),
                    operation: route.map(|r| r.operation_id.as_str()),
                    status: self.status,
                },
            );
        }
        if let Some(m) = &self.route_metrics {
            m.observe(self.status, total);
        }
        // Not even built when no analytics sink is configured.
        if g.analytics.is_on() {
            g.analytics.record(
                Event {
                    time: self.ctx.time.unwrap_or_else(SystemTime::now),
                    request_id: self.ctx.request_id,
                    route: self.route,
                    method: self.ctx.method,
                    status: self.status,
                    total,
                    upstream: self.upstream,
                    bytes_in: self.body.as_ref().map_or(0, |b| b.bytes()) + self.tunnel_in,
                    bytes_out,
                    client: self.ctx.client_ip,
                    rate_limit: self.ctx.rate_limit,
                    error: self.error,
                    consumer: self.ctx.identity.as_ref().map(|i| i.consumer.clone()),
                    auth: self.ctx.auth.map(AuthOutcome::label),
                    trace_id,
                },
                &g.metrics,
            );
        }
        self.ctx.in_flight.end(now);
    }
}
