//! Schakel broker service: dossiers of the Ketenaanpak IFG, their content
//! contributed field by field, information requests between partners and
//! field-filtered reads. The policy enforcement point: every DESIGN.md
//! invariant meets here.
//!
//! Every RPC goes through one pipeline (`pipeline`): role class (one table,
//! `rpc`), circle, purpose and legal basis with informing, policy, one unit
//! of work, audit of grant and refusal. Its other building blocks:
//! - [`keys`]: per-dossier data keys wrapped by the master key, values
//!   encrypted bound to their dossier, field, person and contribution;
//! - [`national_number`]: the Belgian national register number's check;
//! - [`phase`]: the phases of a dossier and the transitions allowed;
//! - [`json`]: dossier content as JSON for the CLI and the seed;
//! - [`seed`]: the fictional family of seed 000, put through a broker.
#![forbid(unsafe_code)]

mod cache;
mod circle;
mod content;
mod contribute;
mod dossier;
mod form;
mod informing;
pub mod json;
pub mod keys;
pub mod lookup;
pub mod national_number;
mod notices;
mod oversight;
pub mod phase;
mod pipeline;
pub mod process;
pub mod remote;
mod requests;
mod rpc;
mod seal;
pub mod seed;
mod service;
pub mod store;
pub mod values;

use std::sync::Arc;

use schakel_kit::ports::{Basis, Directory, PolicySource};
use schakel_kit::{
    audit::AuditSink,
    config::Limits,
    db::{Database, Migrations},
    time::Clock,
};
use schakel_proto::v1::broker_service_server::BrokerServiceServer;
use sqlx::migrate::Migrator;

/// The broker service (cheap to clone).
#[derive(Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Database,
    pub(crate) clock: Clock,
    /// The audit log: changes stage their entries in their own transaction;
    /// decisions that change nothing (reads, refusals) are appended directly
    /// before their reply.
    pub(crate) outbox: schakel_kit::outbox::Outbox,
    pub(crate) basis: Arc<dyn Basis>,
    pub(crate) policy: Arc<dyn PolicySource>,
    pub(crate) keys: keys::Keyring,
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) cache: cache::Cache,
    pub(crate) process: process::ProcessConfig,
    /// Woken whenever this instance writes notices (WatchEvents streams).
    pub(crate) noticed: tokio::sync::Notify,
    /// Open WatchEvents streams per organisation.
    pub(crate) followers: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// What the broker is built on: the services it asks.
pub struct Collaborators {
    /// The audit log (the broker fails closed without it).
    pub audit: Arc<dyn AuditSink>,
    /// The legal-basis service.
    pub basis: Arc<dyn Basis>,
    /// The active policy.
    pub policy: Arc<dyn PolicySource>,
    /// Organisations and users.
    pub directory: Arc<dyn Directory>,
}

/// A broker client whose calls carry a token (the CLI, the seed, tests).
pub type Client = schakel_proto::v1::broker_service_client::BrokerServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        schakel_kit::client::CallContext,
    >,
>;

/// Broker settings (section `[broker]`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BrokerConfig {
    /// File holding the base64 master key that wraps new dossier keys.
    pub master_key_file: Option<std::path::PathBuf>,
    /// Files of earlier master keys, still unwrapping the dossier keys they
    /// wrapped until those are re-wrapped (rotation).
    pub previous_master_key_files: Vec<std::path::PathBuf>,
    /// How long a closed (or not retained) dossier is kept before the
    /// retention job erases it (seconds; default 5 years).
    #[serde(with = "schakel_kit::config::secs")]
    pub retention: std::time::Duration,
    /// The chain process's periods.
    pub process: process::ProcessConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            master_key_file: None,
            previous_master_key_files: Vec::new(),
            retention: std::time::Duration::from_secs(5 * 365 * 24 * 3600),
            process: process::ProcessConfig::default(),
        }
    }
}

impl Broker {
    /// Runs the retention job now and then daily, in the background.
    pub fn spawn_retention(&self, retention: std::time::Duration) {
        let broker = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
            loop {
                every.tick().await;
                match broker.erase_expired(retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(erased = n, "broker retention: dossiers erased"),
                    Err(err) => {
                        tracing::error!(error = format!("{err:#}"), "broker retention failed")
                    }
                }
            }
        });
    }
}

impl BrokerConfig {
    /// The keyring from the configured files.
    pub fn load_keyring(&self) -> anyhow::Result<keys::Keyring> {
        let current = schakel_kit::config::read_key_file(
            "broker.master_key_file",
            self.master_key_file.as_deref(),
        )?;
        let mut older = Vec::new();
        for file in &self.previous_master_key_files {
            older.push(schakel_kit::crypto::SecretKey::from_bytes(
                schakel_kit::config::read_key_file("broker.previous_master_key_files", Some(file))?,
            ));
        }
        Ok(keys::Keyring::new(
            schakel_kit::crypto::SecretKey::from_bytes(current),
            older,
        ))
    }
}

/// The database schema this service owns.
pub const SCHEMA: &str = "broker";

/// The gRPC service name (for health).
pub const SERVICE_NAME: &str = schakel_proto::v1::broker_service_server::SERVICE_NAME;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The broker migrations for both backends.
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    }
}

impl Broker {
    /// Connects to `database_url`, migrates, and builds the broker on its
    /// collaborators.
    pub async fn connect(
        database_url: &str,
        clock: Clock,
        keys: keys::Keyring,
        with: Collaborators,
    ) -> anyhow::Result<Self> {
        let db = Database::connect(database_url, SCHEMA, migrations()).await?;
        Ok(Broker {
            inner: Arc::new(Inner {
                outbox: schakel_kit::outbox::Outbox::new(&db, with.audit),
                db,
                clock,
                basis: with.basis,
                policy: with.policy,
                keys,
                directory: with.directory,
                cache: Default::default(),
                process: Default::default(),
                noticed: Default::default(),
                followers: Default::default(),
            }),
        })
    }

    /// The same broker with the chain process's periods set (before it is
    /// cloned or served).
    pub fn with_process(mut self, process: process::ProcessConfig) -> anyhow::Result<Self> {
        process.validate()?;
        let inner = Arc::get_mut(&mut self.inner)
            .ok_or_else(|| anyhow::anyhow!("the process is set before the broker is shared"))?;
        inner.process = process;
        Ok(self)
    }

    /// The tonic service with the message size limits applied.
    pub fn into_server(self, limits: &Limits) -> BrokerServiceServer<Broker> {
        BrokerServiceServer::new(self)
            .max_decoding_message_size(limits.max_request_bytes)
            .max_encoding_message_size(limits.max_response_bytes)
    }

    /// The database (for tests).
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// Where this service's changes stage their audit entries (pending
    /// entries, delivering them now).
    pub fn audit_outbox(&self) -> &schakel_kit::outbox::Outbox {
        &self.inner.outbox
    }
}
