//! mgw-gateway: the runtime inside every mgw image.
//!
//! It loads one bundle at start ([`bundle`]), builds a router from it, and serves
//! the API listener and the admin listener until SIGTERM. See `ARCHITECTURE.md`.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod env;
pub mod router;
