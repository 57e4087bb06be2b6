//! Integration tests of tlog, in one test binary (one link, one process).
#![allow(clippy::unwrap_used)]

mod common;

mod checkpoint;
mod note;
mod properties;
mod vectors;
