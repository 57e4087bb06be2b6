//! Integration tests of audit, in one test binary (one link, one process).
#![allow(clippy::unwrap_used)]

mod common;

mod log;
mod privacy;
mod query_index;
mod scope;
mod tamper;
