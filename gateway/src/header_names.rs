//! Names of the headers the gateway owns, in one leaf module.
//!
//! Every stage that sets or reads one of them (header hygiene, client address,
//! proxy, error responses) imports it from here, so none of them has to reach
//! into another stage for a constant. Never: import anything from the crate here.

use http::header::HeaderName;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
