//! mgw: the builder CLI's library.
#![forbid(unsafe_code)]

pub mod oci;
pub mod project;
