//! Schakel identity service: organisations (partner type, region, KBO number),
//! users and roles, service accounts for partner systems, and the short-lived
//! Ed25519-signed JWTs every other service verifies against the published JWKS.
#![forbid(unsafe_code)]

mod accounts;
pub mod bootstrap;
pub mod dev;
mod directory;
pub mod error;
mod grants;
pub mod kbo;
pub mod keys;
pub mod model;
pub mod password;
pub mod ratelimit;
mod service;
pub mod store;
pub mod token;
mod users;

use std::{path::PathBuf, sync::Arc, time::Duration};

use schakel_kit::{
    audit::AuditSink,
    auth::{Confirmation, JwkSet, JwksFetcher, PrincipalKind},
    client::TokenSource,
    config::{AuthConfig, Limits, secs},
    db::{Database, Migrations},
    time::Clock,
};
use schakel_proto::v1::identity_service_server::IdentityServiceServer;
use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;

pub use keys::MasterKey;

/// The database schema this service owns.
pub const SCHEMA: &str = "identity";

/// The gRPC service name (for health).
pub const SERVICE_NAME: &str = schakel_proto::v1::identity_service_server::SERVICE_NAME;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The identity migrations for both backends.
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    }
}

/// Identity settings (section `[identity]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentityConfig {
    /// File holding the base64 master key that encrypts signing keys at rest.
    pub master_key_file: Option<PathBuf>,
    /// Token lifetime when the client asks for none.
    #[serde(with = "secs")]
    pub default_token_ttl: Duration,
    /// Longest token lifetime a client may ask for (at most 15 minutes).
    #[serde(with = "secs")]
    pub max_token_ttl: Duration,
    /// argon2id cost.
    pub password_hash: password::HashParams,
    /// Failed logins per account within `failure_window` before refusing.
    pub max_failures_per_account: usize,
    /// Failed logins per peer address within `failure_window` before refusing.
    pub max_failures_per_peer: usize,
    /// The sliding window for failed logins.
    #[serde(with = "secs")]
    pub failure_window: Duration,
    /// Schakel's own services, by the common name of their mTLS certificate
    /// (issued by the deployment CA). A caller presenting such a certificate
    /// gets a token of kind `internal_service` for client id `svc-<name>`
    /// with the client-certificate grant.
    pub internal_services: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            master_key_file: None,
            default_token_ttl: Duration::from_secs(600),
            max_token_ttl: Duration::from_secs(900),
            password_hash: password::HashParams::default(),
            max_failures_per_account: 5,
            max_failures_per_peer: 50,
            failure_window: Duration::from_secs(900),
            internal_services: ["audit", "broker", "legal-basis", "policy"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl IdentityConfig {
    /// Checks the settings before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_token_ttl <= Duration::from_secs(900) && !self.max_token_ttl.is_zero(),
            "identity.max_token_ttl must be between 1 and 900 seconds"
        );
        anyhow::ensure!(
            !self.default_token_ttl.is_zero() && self.default_token_ttl <= self.max_token_ttl,
            "identity.default_token_ttl must be between 1 second and identity.max_token_ttl"
        );
        anyhow::ensure!(
            self.max_failures_per_account > 0,
            "identity.max_failures_per_account must be > 0"
        );
        anyhow::ensure!(
            self.max_failures_per_peer > 0,
            "identity.max_failures_per_peer must be > 0"
        );
        Ok(())
    }

    /// Reads the master key from `master_key_file`.
    pub fn load_master_key(&self) -> anyhow::Result<MasterKey> {
        let bytes = schakel_kit::config::read_key_file(
            "identity.master_key_file",
            self.master_key_file.as_deref(),
        )?;
        Ok(MasterKey::from_bytes(bytes))
    }
}

/// The identity service (cheap to clone).
#[derive(Clone)]
pub struct Identity {
    inner: Arc<service::Inner>,
}

impl Identity {
    /// Builds the service on a migrated database; creates the first signing
    /// key if there is none. Every administrative change and every token
    /// issued is recorded in `audit` (fail closed).
    pub async fn new(
        db: Database,
        config: IdentityConfig,
        auth: AuthConfig,
        master: MasterKey,
        clock: Clock,
        audit: Arc<dyn AuditSink>,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let inner = service::Inner::new(db, config, auth, master, clock, audit)?;
        inner.keys.ensure_active().await?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Connects to `database_url`, migrates, and builds the service.
    pub async fn connect(
        database_url: &str,
        config: IdentityConfig,
        auth: AuthConfig,
        master: MasterKey,
        clock: Clock,
        audit: Arc<dyn AuditSink>,
    ) -> anyhow::Result<Self> {
        let db = Database::connect(database_url, SCHEMA, migrations()).await?;
        Self::new(db, config, auth, master, clock, audit).await
    }

    /// What GetJwks publishes: the signing key and the next one, and the
    /// revocations young enough that a token they void could be unexpired.
    pub async fn published(&self) -> error::Result<JwkSet> {
        let mut set = self.inner.keys.jwks().await?;
        let window = self.inner.config.max_token_ttl.as_secs() as i64
            + self.inner.auth.leeway.as_secs() as i64
            + service::REVOCATION_MARGIN_SECS;
        let since = self.inner.clock_now() - window;
        set.revoked = store::revocations(self.inner.db.pool(), since).await?;
        Ok(set)
    }

    /// Reads the JWKS straight from this service, for verifiers in the same
    /// process.
    pub fn jwks_fetcher(&self) -> JwksFetcher {
        let this = self.clone();
        Arc::new(move || {
            let this = this.clone();
            Box::pin(async move {
                let set = this.published().await.map_err(anyhow::Error::new)?;
                Ok(serde_json::to_string(&set)?)
            })
        })
    }

    /// The tonic service with the message size limits applied.
    pub fn into_server(self, limits: &Limits) -> IdentityServiceServer<Identity> {
        IdentityServiceServer::new(self)
            .max_decoding_message_size(limits.max_request_bytes)
            .max_encoding_message_size(limits.max_response_bytes)
    }

    /// A token for `service` (one of Schakel's own services, kind
    /// `internal_service`) signed by this identity service and bound to the
    /// service's certificate `bound_to` (RFC 8705), kept fresh in the
    /// background (renewed before it expires and at once after a key
    /// rotation): how identity authenticates to the audit log.
    pub async fn internal_token(
        &self,
        service: &str,
        bound_to: Confirmation,
    ) -> anyhow::Result<TokenSource> {
        let sign = {
            let this = self.clone();
            let subject = format!("{}{service}", service::INTERNAL_PREFIX);
            move || {
                let this = this.clone();
                let subject = subject.clone();
                let bound_to = bound_to.clone();
                async move {
                    let principal = token::Principal {
                        subject,
                        kind: PrincipalKind::InternalService,
                        organisation_id: String::new(),
                        partner_type: String::new(),
                        region: String::new(),
                        roles: Vec::new(),
                        bound_to: Some(bound_to),
                        revoked_until: None,
                    };
                    let ttl = this.inner.config.max_token_ttl;
                    let keys = &this.inner.keys;
                    let auth = &this.inner.auth;
                    let signed = token::sign(
                        keys,
                        &auth.issuer,
                        &auth.audience,
                        principal,
                        this.inner.clock_now(),
                        ttl.as_secs() as i64,
                    )
                    .await?;
                    Ok((signed.token, ttl / 3))
                }
            }
        };
        let published = {
            let keys = self.inner.keys.clone();
            move || {
                let keys = keys.clone();
                async move { Ok(keys.jwks().await?.keys.into_iter().map(|k| k.kid).collect()) }
            }
        };
        let first = sign().await?;
        Ok(schakel_kit::client::renewing(
            first,
            sign,
            published,
            self.inner.rotated.clone(),
        ))
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
}
