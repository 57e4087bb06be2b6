//! Integration tests of kit, in one test binary (one link, one process).
#![allow(clippy::unwrap_used)]

mod readiness;
mod trace_propagation;
