//! Schakel audit service: the append-only, tamper-evident transparency log of
//! every access decision and administrative change (DESIGN.md invariants 1, 8, 9).
//!
//! An RFC 9162 Merkle tree over canonical entry bytes, C2SP signed checkpoints
//! (Ed25519), inclusion and consistency proofs from stored subtree nodes, group
//! commit for durable appends, and queries and GDPR art. 15 subject reports for
//! privacy officers.
#![forbid(unsafe_code)]

pub mod entry;
pub mod log;
pub mod postings;
mod query;
mod reading;
mod report;
mod retention;
mod service;
mod store;
pub mod verifier;
mod writer;

use std::{
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context;
use base64::Engine;
use schakel_kit::{
    config::{Limits, secs},
    db::{Database, Migrations},
    ports::Directory,
    time::Clock,
};
use schakel_proto::v1::audit_service_server::AuditServiceServer;
use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;

pub use log::AuditLog;

/// The database schema this service owns.
pub const SCHEMA: &str = "audit";

/// The gRPC service name (for health).
pub const SERVICE_NAME: &str = schakel_proto::v1::audit_service_server::SERVICE_NAME;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The audit migrations for both backends.
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    }
}

/// Why an append failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AppendError {
    /// The entry is malformed (caller's bug).
    #[error("{0}")]
    Invalid(entry::InvalidEntry),
    /// Not durably committed (database, standby, shutdown): the caller must
    /// not act on the decision.
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
}

/// Audit settings (section `[audit]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    /// The checkpoint origin line: names this log, e.g. `schakel.example/audit`.
    pub origin: String,
    /// The signed-note key name of the checkpoint signer.
    pub key_name: String,
    /// File with the base64 Ed25519 seed (32 bytes) that signs checkpoints.
    pub signing_key_file: Option<PathBuf>,
    /// How long entry bodies are kept (leaf hashes are kept for ever).
    #[serde(with = "secs")]
    pub retention: Duration,
    /// Most appends committed together.
    pub max_batch: usize,
    /// Entries per segment of the query index (see [`postings`]): a segment
    /// is indexed once complete, and queries scan the open one. Fixed by the
    /// first segment sealed; a different value later is ignored with a warning.
    pub index_segment: u64,
    /// Partner type whose privacy officers may query the whole log; others see
    /// entries in which their organisation acted or was the target.
    pub all_seeing_partner_type: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            origin: "schakel.local/audit".into(),
            key_name: "schakel-audit".into(),
            signing_key_file: None,
            retention: Duration::from_secs(10 * 365 * 24 * 3600 + 3 * 24 * 3600),
            max_batch: 256,
            index_segment: 65_536,
            all_seeing_partner_type: "veilig_huis".into(),
        }
    }
}

impl AuditConfig {
    /// Reads the checkpoint signing key from `signing_key_file`.
    pub fn load_signing_key(&self) -> anyhow::Result<ed25519_dalek::SigningKey> {
        let seed = schakel_kit::config::read_key_file(
            "audit.signing_key_file",
            self.signing_key_file.as_deref(),
        )?;
        Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
    }
}

/// An Ed25519 signing key from its base64 32-byte seed.
pub fn signing_key_from_base64(text: &str) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let seed = schakel_kit::config::key_from_base64(text).context("checkpoint signing key")?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// The base64 seed of a signing key (for writing a new key file).
pub fn signing_key_to_base64(key: &ed25519_dalek::SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.to_bytes())
}

/// The audit service (cheap to clone).
#[derive(Clone)]
pub struct Audit {
    log: AuditLog,
    pub(crate) config: AuditConfig,
    /// Where subject reports find organisation names; set once the identity
    /// service (which itself appends to this log) is up.
    directory: Arc<OnceLock<Arc<dyn Directory>>>,
}

impl Audit {
    /// Connects to `database_url`, migrates, checks the stored tree against its
    /// latest checkpoint, and starts the writer.
    pub async fn connect(
        database_url: &str,
        config: AuditConfig,
        key: ed25519_dalek::SigningKey,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(config.max_batch > 0, "audit.max_batch must be > 0");
        anyhow::ensure!(config.index_segment > 0, "audit.index_segment must be > 0");
        anyhow::ensure!(
            !config.origin.is_empty() && !config.origin.contains(char::is_whitespace),
            "audit.origin must be a non-empty name without spaces"
        );
        let db = Database::connect(database_url, SCHEMA, migrations()).await?;
        let log = AuditLog::open(
            db,
            &config.origin,
            &config.key_name,
            key,
            clock,
            config.max_batch,
            config.index_segment,
        )
        .await?;
        Ok(Self {
            log,
            config,
            directory: Arc::default(),
        })
    }

    /// Connects the directory of organisations (the identity service); until
    /// then subject reports are refused as UNAVAILABLE. Set once; later
    /// calls are ignored.
    pub fn set_directory(&self, directory: Arc<dyn Directory>) {
        let _ = self.directory.set(directory);
    }

    pub(crate) fn directory(&self) -> Result<Arc<dyn Directory>, tonic::Status> {
        self.directory.get().cloned().ok_or_else(|| {
            schakel_kit::error::with_reason(
                tonic::Code::Unavailable,
                "DIRECTORY_UNAVAILABLE",
                "the organisation directory is not connected yet; no report was made",
            )
        })
    }

    /// The log, also an in-process [`AuditSink`](schakel_kit::audit::AuditSink).
    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    /// The tonic service with the message size limits applied.
    pub fn into_server(self, limits: &Limits) -> AuditServiceServer<Audit> {
        AuditServiceServer::new(self)
            .max_decoding_message_size(limits.max_request_bytes)
            .max_encoding_message_size(limits.max_response_bytes)
    }

    /// Applies retention daily in the background (the first time at once).
    pub fn spawn_retention(&self) {
        let audit = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
            loop {
                every.tick().await;
                match audit.apply_retention().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(dropped = n, "audit retention: entry bodies dropped"),
                    Err(err) => {
                        tracing::error!(error = format!("{err:#}"), "audit retention failed")
                    }
                }
            }
        });
    }

    /// Applies retention once (bodies older than `audit.retention` are dropped).
    pub async fn apply_retention(&self) -> anyhow::Result<u64> {
        self.log
            .apply_retention(self.config.retention.as_secs() as i64)
            .await
    }
}
