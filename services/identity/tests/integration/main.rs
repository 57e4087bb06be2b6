//! Integration tests of identity, in one test binary (one link, one process).
#![allow(clippy::unwrap_used)]

mod common;

mod admin;
mod audited;
mod revocation;
mod token_attacks;
mod tokens;
