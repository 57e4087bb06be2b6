//! Integration tests of broker, in one test binary (one link, one process).
#![allow(clippy::unwrap_used)]

mod common;

mod audited;
mod chain;
mod erasure;
mod gates_basis;
mod gates_circle;
mod gates_roles;
mod idempotency;
mod listing;
mod reads;
mod requests;
mod seed_family;
mod team;
