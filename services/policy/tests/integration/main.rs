//! Integration tests of policy, in one test binary (one link, one process).
#![allow(clippy::unwrap_used)]

mod common;

mod versions;
