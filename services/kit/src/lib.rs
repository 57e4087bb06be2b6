//! `schakel-kit`: the plumbing every Schakel service shares.
//!
//! - [`config`]: typed configuration (file + `SCHAKEL_*` environment).
//! - [`telemetry`]: tracing, OpenTelemetry export, W3C trace-context propagation.
//! - [`tls`] and [`devca`]: rustls server/client TLS, mTLS identities, a dev CA.
//! - [`auth`]: token verification and the typed [`auth::Caller`].
//! - [`audit`]: appending to the audit log, failing closed.
//! - [`crypto`]: AES-256-GCM sealing of secrets at rest.
//! - [`db`]: the SQLite/PostgreSQL pool with per-service migrations.
//! - [`server`]: one TLS port serving services with health, reflection and
//!   graceful shutdown; [`client`]: channels and call metadata.
//! - [`error`]: mapping errors to precise gRPC statuses.
//! - [`validate`]: request fields checked the same way everywhere.
//! - [`time`]: a controllable clock, and timestamps at the proto boundary.
//! - [`testing`]: fresh databases on both backends for tests.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod crypto;
pub mod db;
pub mod decision;
pub mod devca;
pub mod error;
pub mod outbox;
pub mod ports;
pub mod server;
pub mod telemetry;
pub mod testing;
pub mod time;
pub mod tls;
pub mod validate;
