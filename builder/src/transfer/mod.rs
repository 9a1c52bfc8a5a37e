//! Moving images between an OCI layout on disk and a registry: [`push`] a built
//! image (and its SBOM as a referrer), [`pull`] a base image into the verified
//! local cache.
//!
//! It sits above both [`crate::oci`] (layouts, digests, media types) and
//! [`crate::registry`] (the distribution protocol), which know nothing of each
//! other's work beyond digests and media types; neither may reach up into it.

pub mod pull;
pub mod push;
