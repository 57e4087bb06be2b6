//! Schakel legal-basis service: art. 458ter cooperation agreements, records of
//! informing the client system, and `CheckBasis`, the authority on whether a
//! legal basis covers an organisation, a purpose and a dossier at a moment
//! (DESIGN.md invariant 2).
//!
//! This crate holds the decision core so far: [`check::check`], a pure
//! function over agreement versions and informing records. The gRPC service,
//! its storage and the CLI build on it.
#![forbid(unsafe_code)]

pub mod check;
