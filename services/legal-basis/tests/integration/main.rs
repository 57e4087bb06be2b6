//! Integration tests of legal-basis, in one test binary (one link, one process).
#![allow(clippy::unwrap_used)]

mod common;

mod agreements;
mod check_basis;
mod outbox;
