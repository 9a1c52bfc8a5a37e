//! Harness for end-to-end tests across the mgw binaries.
