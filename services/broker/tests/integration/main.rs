//! Integration tests of broker, in one test binary (one link, one process).
#![allow(clippy::unwrap_used)]

mod common;

mod erasure;
mod reads;
mod requests;
mod seed_family;
mod team;
