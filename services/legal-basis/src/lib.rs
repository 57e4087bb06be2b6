//! Schakel legal-basis service: art. 458ter cooperation agreements, records of
//! informing the client system, and `CheckBasis`, the authority on whether a
//! legal basis covers an organisation, a purpose and a dossier at a moment
//! (DESIGN.md invariant 2).
//!
//! - [`check`]: the decision, a pure function over agreement versions and
//!   informing records, exhaustively tested.
//! - [`model`]: agreements as stored, their lifecycle (computed from the clock,
//!   so expiry is exact at its boundary) and request validation.
//! - [`store`]: the tables; approved versions and informing records are
//!   protected against change by the database itself.
//! - the `LegalBasisService` RPCs, each change audited before it commits.
#![forbid(unsafe_code)]

pub mod check;
pub mod dev;
pub mod model;
mod port;
mod service;
pub mod store;

use std::sync::Arc;

use schakel_kit::{
    audit::AuditSink,
    config::Limits,
    db::{Database, Migrations},
    time::Clock,
};
use schakel_proto::v1::legal_basis_service_server::LegalBasisServiceServer;
use sqlx::migrate::Migrator;

pub use schakel_kit::ports::{Directory as Organisations, FixedDirectory, RemoteDirectory};
pub use service::denial_reason;

/// The database schema this service owns.
pub const SCHEMA: &str = "legal_basis";

/// The gRPC service name (for health).
pub const SERVICE_NAME: &str = schakel_proto::v1::legal_basis_service_server::SERVICE_NAME;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The legal-basis migrations for both backends.
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    }
}

/// The legal-basis service (cheap to clone).
#[derive(Clone)]
pub struct LegalBasis {
    inner: Arc<service::Inner>,
}

impl LegalBasis {
    /// Builds the service on a migrated database. Every change is recorded in
    /// `audit` before it commits (fail closed); parties are looked up in
    /// `organisations`.
    pub fn new(
        db: Database,
        clock: Clock,
        audit: Arc<dyn AuditSink>,
        organisations: Arc<dyn Organisations>,
    ) -> Self {
        Self {
            inner: Arc::new(service::Inner::new(db, clock, audit, organisations)),
        }
    }

    /// Connects to `database_url`, migrates, and builds the service.
    pub async fn connect(
        database_url: &str,
        clock: Clock,
        audit: Arc<dyn AuditSink>,
        organisations: Arc<dyn Organisations>,
    ) -> anyhow::Result<Self> {
        let db = Database::connect(database_url, SCHEMA, migrations()).await?;
        Ok(Self::new(db, clock, audit, organisations))
    }

    /// The tonic service with the message size limits applied.
    pub fn into_server(self, limits: &Limits) -> LegalBasisServiceServer<LegalBasis> {
        LegalBasisServiceServer::new(self)
            .max_decoding_message_size(limits.max_request_bytes)
            .max_encoding_message_size(limits.max_response_bytes)
    }

    /// The database (for seeding and tests).
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// Where this service's changes stage their audit entries (pending
    /// entries, delivering them now).
    pub fn audit_outbox(&self) -> &schakel_kit::outbox::Outbox {
        &self.inner.outbox
    }

    /// The clock the service decides with.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }
}
