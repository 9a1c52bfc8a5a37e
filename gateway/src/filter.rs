//! Native filters: Rust code a project adds to its gateway (its `runtime/`
//! crate registers them and runs the gateway with [`crate::run_with`]).
//!
//! The phases follow pingora's `ProxyHttp`: [`Filter::on_request`] after
//! authentication, rate limits, the body limit and transforms, before the
//! upstream (it may answer instead); [`Filter::on_upstream_response`] on the
//! upstream's response head; [`Filter::on_end`] once the response is done
//! (logging, counting). Filters run in registration order, every filter on
//! every route — except a filter the bundle names (a WSO2
//! `x-wso2-*-interceptor` on an operation or its API, [`Filters::select`]):
//! that one runs only on the operations naming it. Otherwise a filter that is
//! for some routes only checks [`Session::route`]. A filter reads the route, the identity and its claims
//! through [`Session`], and keeps per-request state in [`Session::ctx`] (a
//! typed map, empty and free until a filter inserts something).
//!
//! Filters are trusted code compiled into the image: they can change any
//! header of the request or response head, the gateway's own included — but
//! `X-Forwarded-*` and `X-Request-Id` are set again by the proxy after them.
//! They must not block: they run on the gateway's async workers. A gateway
//! with no filter never enters this module.

use std::borrow::Cow;
use std::net::IpAddr;

use bytes::Bytes;
use http::{Extensions, HeaderValue, Method, Response, StatusCode};

use crate::auth::Identity;
use crate::ratelimit::Claims;

/// The route a request was matched to.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo<'a> {
    pub api: &'a str,
    pub operation_id: &'a str,
    pub method: &'a Method,
    /// The full path template, base path included (`/petstore/v1/pets/{petId}`).
    pub template: &'a str,
}

/// What a filter can see of the request being served, in every phase.
pub struct Session<'a> {
    pub route: RouteInfo<'a>,
    /// The authenticated caller, if the operation has security.
    pub identity: Option<&'a Identity>,
    /// The client's address after trusted proxies.
    pub client_ip: IpAddr,
    pub request_id: &'a HeaderValue,
    /// Per-request state a filter keeps between its phases.
    pub ctx: &'a mut Extensions,
}

impl Session<'_> {
    /// A claim of the caller's token as text (numbers in their JSON form).
    pub fn claim(&self, name: &str) -> Option<Cow<'_, str>> {
        self.identity?.claim(name)
    }

    /// The authenticated consumer.
    pub fn consumer(&self) -> Option<&str> {
        self.identity.map(|i| &*i.consumer)
    }
}

/// One native filter. Every method has a default that does nothing.
pub trait Filter: Send + Sync + 'static {
    /// The name the image labels list and `x-wso2-*-interceptor` would name.
    fn name(&self) -> &str;

    /// After authentication, rate limits, the body limit and transforms,
    /// before the upstream. Return a response to answer with it instead (it
    /// gets `X-Request-Id` and CORS headers like every gateway answer).
    fn on_request(
        &self,
        _session: &mut Session<'_>,
        _request: &mut http::request::Parts,
    ) -> Option<Response<Bytes>> {
        None
    }

    /// The upstream's response head (not the gateway's own error answers).
    fn on_upstream_response(
        &self,
        _session: &mut Session<'_>,
        _response: &mut http::response::Parts,
    ) {
    }

    /// Once the response is finished (or the client went away).
    fn on_end(&self, _session: &mut Session<'_>, _status: StatusCode) {}
}

/// The filters a gateway runs, in order.
#[derive(Default)]
pub struct Filters {
    list: Vec<Box<dyn Filter>>,
    /// Per filter: `None` runs everywhere; `Some` only on these operations
    /// (those the bundle names it on).
    only: Vec<Option<Vec<OperationKey>>>,
}

/// `(API name, operation id)`.
type OperationKey = (Box<str>, Box<str>);

/// The bundle names a filter the gateway was not built with.
#[derive(Debug, thiserror::Error)]
#[error(
    "operation `{operation}` of API `{api}` names the native filter `{name}`, and this gateway has {}; build the image from the project with that filter in its `runtime/`",
    if .have.is_empty() { "none".to_owned() } else { .have.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ") }
)]
pub struct UnknownFilter {
    pub name: String,
    pub api: String,
    pub operation: String,
    pub have: Vec<String>,
}

impl Filters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a filter after those already registered.
    #[must_use]
    pub fn with(mut self, filter: impl Filter) -> Self {
        self.list.push(Box::new(filter));
        self.only.push(None);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|f| f.name()).collect()
    }

    /// Restricts each filter that `operations` (`(API, operation id, filter
    /// names)`) name to those operations.
    pub fn select<'a>(
        &mut self,
        operations: impl IntoIterator<Item = (&'a str, &'a str, &'a [String])>,
    ) -> Result<(), UnknownFilter> {
        for (api, operation, names) in operations {
            for name in names {
                let Some(i) = self.list.iter().position(|f| f.name() == name) else {
                    return Err(UnknownFilter {
                        name: name.clone(),
                        api: api.to_owned(),
                        operation: operation.to_owned(),
                        have: self.names().into_iter().map(str::to_owned).collect(),
                    });
                };
                self.only[i]
                    .get_or_insert_with(Vec::new)
                    .push((api.into(), operation.into()));
            }
        }
        Ok(())
    }

    /// The filters that run on this request's route.
    fn active<'s>(&'s self, route: &RouteInfo<'_>) -> impl Iterator<Item = &'s dyn Filter> {
        let (api, id) = (route.api, route.operation_id);
        self.list
            .iter()
            .zip(&self.only)
            .filter(move |(_, only)| {
                only.as_ref()
                    .is_none_or(|ops| ops.iter().any(|(a, o)| **a == *api && **o == *id))
            })
            .map(|(f, _)| &**f)
    }

    /// Runs every filter's request phase; the first answer wins.
    pub fn on_request(
        &self,
        session: &mut Session<'_>,
        request: &mut http::request::Parts,
    ) -> Option<Response<Bytes>> {
        let route = session.route;
        self.active(&route)
            .find_map(|f| f.on_request(session, request))
    }

    pub fn on_upstream_response(
        &self,
        session: &mut Session<'_>,
        response: &mut http::response::Parts,
    ) {
        let route = session.route;
        for f in self.active(&route) {
            f.on_upstream_response(session, response);
        }
    }

    pub fn on_end(&self, session: &mut Session<'_>, status: StatusCode) {
        let route = session.route;
        for f in self.active(&route) {
            f.on_end(session, status);
        }
    }
}

impl std::fmt::Debug for Filters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
