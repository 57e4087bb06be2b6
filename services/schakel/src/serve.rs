//! `schakel serve <service>`: one service per process (microservices mode).

use std::{path::PathBuf, sync::Arc};

use schakel_audit::{Audit, AuditConfig};
use schakel_identity::{Identity, IdentityConfig};
use schakel_kit::{
    audit::{AppendFuture, AuditError, AuditSink, GrpcAuditSink},
    auth::{TokenVerifier, remote_jwks},
    client::CallContext,
    config::{AuthConfig, ConfigError, ServerConfig},
    server::{App, shutdown_signal},
    time::Clock,
};
use schakel_legal_basis::{LegalBasis, RemoteDirectory};
use schakel_policy::Policies;
use serde::{Deserialize, Serialize};
use tonic::service::Routes;

/// Options of `schakel serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The service to run.
    service: Service,
    /// TOML configuration file; `SCHAKEL_*` environment variables override it
    /// (nested keys joined with `__`, e.g. `SCHAKEL_SERVER__LISTEN`).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Service {
    /// Organisations, users, service accounts, tokens and the JWKS.
    Identity,
    /// The transparency log of every decision.
    Audit,
    /// Art. 458ter agreements, informing the client system, CheckBasis.
    LegalBasis,
    /// The versioned need-to-know policy and its decision table.
    Policy,
    /// Dossiers, contributions and field-filtered reads: the enforcement point.
    Broker,
    /// All five in one process (small deployments), each in its own schema.
    All,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Audit => "audit",
            Service::LegalBasis => "legal-basis",
            Service::Policy => "policy",
            Service::Broker => "broker",
            Service::All => "all",
        }
    }
}

/// Configuration of `schakel serve`.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    /// Listening address, TLS files, limits.
    pub server: ServerConfig,
    /// `sqlite://...` or `postgres://...`; `{service}` is replaced by the
    /// service name (one SQLite file each; PostgreSQL uses a schema each).
    pub database_url: String,
    /// Token verification.
    pub auth: AuthConfig,
    /// The identity service.
    pub identity: IdentityConfig,
    /// The audit service.
    pub audit: AuditConfig,
    /// The broker.
    pub broker: schakel_broker::BrokerConfig,
    /// Where the other services are.
    pub services: ServicesConfig,
}

/// Addresses of the services a service calls (mTLS with `server.tls`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServicesConfig {
    /// The audit service, e.g. `https://audit.schakel.svc:50051`.
    pub audit_url: Option<String>,
    /// The legal-basis service (called by the broker).
    pub legal_basis_url: Option<String>,
    /// The policy service (followed by the broker).
    pub policy_url: Option<String>,
}

impl ServeConfig {
    /// The database URL of `service`.
    pub fn database_url(&self, service: &str) -> Result<String, ConfigError> {
        if self.database_url.is_empty() {
            return Err(ConfigError("database_url is required".into()));
        }
        Ok(self.database_url.replace("{service}", service))
    }
}

/// A sink set once the service that mints its token exists (identity signs
/// its own service token, but needs its sink to be built).
#[derive(Default)]
struct DeferredSink(std::sync::OnceLock<GrpcAuditSink>);

impl DeferredSink {
    fn set(&self, sink: GrpcAuditSink) {
        let _ = self.0.set(sink);
    }
}

impl AuditSink for DeferredSink {
    fn append(&self, entry: schakel_proto::v1::AuditEntry, append_id: String) -> AppendFuture<'_> {
        match self.0.get() {
            Some(sink) => sink.append(entry, append_id),
            None => Box::pin(async { Err(AuditError::Unavailable("starting".into())) }),
        }
    }
}

/// The audit service at `services.audit_url`: every service records its
/// changes and decisions there.
fn audit_channel(config: &ServeConfig) -> anyhow::Result<tonic::transport::Channel> {
    peer_channel(
        config,
        "services.audit_url",
        config.services.audit_url.as_deref(),
        "audit",
    )
}

fn config_error(err: anyhow::Error) -> ConfigError {
    ConfigError(format!("{err:#}"))
}

/// An mTLS channel to the service `service` at `url` (the setting `key`),
/// presenting this service's certificate and accepting only a certificate
/// issued for `service`.
fn peer_channel(
    config: &ServeConfig,
    key: &str,
    url: Option<&str>,
    service: &str,
) -> anyhow::Result<tonic::transport::Channel> {
    let url = url.ok_or_else(|| ConfigError(format!("{key} is required")))?;
    let tls =
        schakel_kit::tls::peer_client_config(&config.server.tls, service).map_err(config_error)?;
    Ok(schakel_kit::client::channel(url, tls).map_err(config_error)?)
}

/// The identity service at `auth.identity_url`.
fn identity_channel(config: &ServeConfig) -> anyhow::Result<tonic::transport::Channel> {
    peer_channel(
        config,
        "auth.identity_url",
        config.auth.identity_url.as_deref(),
        "identity",
    )
}

/// A verifier that fetches the JWKS from the identity service at `auth.identity_url`.
fn remote_verifier(config: &ServeConfig) -> anyhow::Result<Arc<TokenVerifier>> {
    Ok(Arc::new(TokenVerifier::new(
        config.auth.clone(),
        remote_jwks(identity_channel(config)?),
    )))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let name = args.service.name();
    let _telemetry = schakel_kit::telemetry::init(name)?;
    let config: ServeConfig = schakel_kit::config::load(args.config.as_deref())?;
    let database_url = config.database_url(name)?;
    schakel_kit::tls::server_config(&config.server.tls).map_err(config_error)?;
    config.auth.validate().map_err(config_error)?;
    let limits = config.server.limits.clone();
    // Set for services that may stand by (audit): health follows it.
    let mut readiness = None;
    let (routes, service, verifier) = match args.service {
        Service::All => return serve_all(config).await,
        Service::Identity => {
            config.identity.validate().map_err(config_error)?;
            let master = config.identity.load_master_key().map_err(config_error)?;
            let channel = audit_channel(&config)?;
            let sink = Arc::new(DeferredSink::default());
            let identity = Identity::connect(
                &database_url,
                config.identity.clone(),
                config.auth.clone(),
                master,
                Clock::System,
                sink.clone(),
            )
            .await?;
            // Bound to this service's own certificate, which it presents to audit.
            let own =
                schakel_kit::tls::own_confirmation(&config.server.tls).map_err(config_error)?;
            let token = identity.internal_token("identity", own).await?;
            sink.set(GrpcAuditSink::new(channel, CallContext::with_source(token)));
            let verifier = Arc::new(TokenVerifier::new(
                config.auth.clone(),
                identity.jwks_fetcher(),
            ));
            (
                Routes::new(identity.into_server(&limits)),
                schakel_identity::SERVICE_NAME,
                verifier,
            )
        }
        Service::Audit => {
            let key = config.audit.load_signing_key().map_err(config_error)?;
            let verifier = remote_verifier(&config)?;
            let audit =
                Audit::connect(&database_url, config.audit.clone(), key, Clock::System).await?;
            // Organisation names for subject reports, with this service's
            // token (common name "audit").
            let identity = identity_channel(&config)?;
            let directory = audit.clone();
            tokio::spawn(async move {
                let token = schakel_kit::client::certificate_token(identity.clone(), "audit").await;
                directory.set_directory(Arc::new(RemoteDirectory::new(
                    identity,
                    CallContext::with_source(token),
                )));
            });
            audit.spawn_retention();
            readiness = Some(audit.log().writer_status());
            (
                Routes::new(audit.into_server(&limits)),
                schakel_audit::SERVICE_NAME,
                verifier,
            )
        }
        Service::LegalBasis => {
            let verifier = remote_verifier(&config)?;
            let audit = audit_channel(&config)?;
            let identity = identity_channel(&config)?;
            // The service's token, from identity for its mTLS certificate
            // (common name "legal-basis"): for the audit log and organisation lookups.
            let token = schakel_kit::client::certificate_token(identity.clone(), name).await;
            let legal_basis = LegalBasis::connect(
                &database_url,
                Clock::System,
                Arc::new(GrpcAuditSink::new(
                    audit,
                    CallContext::with_source(token.clone()),
                )),
                Arc::new(RemoteDirectory::new(
                    identity,
                    CallContext::with_source(token),
                )),
            )
            .await?;
            (
                Routes::new(legal_basis.into_server(&limits)),
                schakel_legal_basis::SERVICE_NAME,
                verifier,
            )
        }
        Service::Policy => {
            let verifier = remote_verifier(&config)?;
            let audit = audit_channel(&config)?;
            let token =
                schakel_kit::client::certificate_token(identity_channel(&config)?, name).await;
            let policies = Policies::connect(
                &database_url,
                Clock::System,
                Arc::new(GrpcAuditSink::new(audit, CallContext::with_source(token))),
            )
            .await?;
            (
                Routes::new(policies.into_server(&limits)),
                schakel_policy::SERVICE_NAME,
                verifier,
            )
        }
        Service::Broker => {
            let keys = config.broker.load_keyring().map_err(config_error)?;
            let verifier = remote_verifier(&config)?;
            let audit = audit_channel(&config)?;
            let identity = identity_channel(&config)?;
            let legal_basis = peer_channel(
                &config,
                "services.legal_basis_url",
                config.services.legal_basis_url.as_deref(),
                "legal-basis",
            )?;
            let policy = peer_channel(
                &config,
                "services.policy_url",
                config.services.policy_url.as_deref(),
                "policy",
            )?;
            let token = schakel_kit::client::certificate_token(identity.clone(), name).await;
            let context = || CallContext::with_source(token.clone());
            // The broker decides nothing without the active policy.
            let policy = Arc::new(schakel_broker::remote::remote_policy(policy, context()).await);
            let broker = schakel_broker::Broker::connect(
                &database_url,
                Clock::System,
                keys,
                schakel_broker::Collaborators {
                    audit: Arc::new(GrpcAuditSink::new(audit, context())),
                    basis: Arc::new(schakel_broker::remote::RemoteBasis::new(
                        legal_basis,
                        context(),
                    )),
                    policy,
                    directory: Arc::new(RemoteDirectory::new(identity, context())),
                },
            )
            .await?
            .with_process(config.broker.process.clone())?;
            broker.spawn_retention(config.broker.retention);
            broker.spawn_sweeper();
            (
                Routes::new(broker.into_server(&limits)),
                schakel_broker::SERVICE_NAME,
                verifier,
            )
        }
    };
    let mut app = App::build(config.server, routes, vec![service.into()], verifier).await?;
    if let Some(ready) = readiness {
        app = app.with_readiness(ready);
    }
    println!("schakel {name} listening on https://{}", app.local_addr());
    app.run_until(shutdown_signal()).await
}

/// `schakel serve all`: the five services in one process, configured as in
/// microservices mode (the `services.*` addresses are not needed). `run`
/// has checked the database URL and the TLS files.
async fn serve_all(config: ServeConfig) -> anyhow::Result<()> {
    config.identity.validate().map_err(config_error)?;
    let keys = crate::all::Keys {
        identity_master: config.identity.load_master_key().map_err(config_error)?,
        audit_signing: config.audit.load_signing_key().map_err(config_error)?,
        broker: config.broker.load_keyring().map_err(config_error)?,
    };
    let settings = crate::all::Settings {
        identity: config.identity.clone(),
        auth: config.auth.clone(),
        audit: config.audit.clone(),
        retention: config.broker.retention,
        process: config.broker.process.clone(),
    };
    let services = crate::all::AllServices::connect(
        |service| Ok(config.database_url(service)?),
        &settings,
        keys,
    )
    .await?;
    // A standby (another instance holds the audit writer lock) serves nothing.
    let ready = services.audit.log().writer_status();
    let limits = config.server.limits.clone();
    let (routes, names, verifier) = services.into_routes(config.auth.clone(), &limits);
    let app = App::build(config.server, routes, names, verifier)
        .await?
        .with_readiness(ready);
    println!("schakel all listening on https://{}", app.local_addr());
    app.run_until(shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_configuration_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/schakel.example.toml");
        let config: ServeConfig = schakel_kit::config::load(Some(&path)).expect("example parses");
        assert!(
            config
                .database_url("identity")
                .expect("url")
                .starts_with("postgres://")
        );
        assert_eq!(config.server.listen.port(), 50051);
        assert!(config.server.tls.cert.is_some());
        config.identity.validate().expect("valid identity settings");
        assert_eq!(config.identity.max_token_ttl.as_secs(), 900);
        assert!(config.services.audit_url.is_some() && config.auth.identity_url.is_some());
        assert!(config.audit.signing_key_file.is_some());
        assert_eq!(config.audit.retention.as_secs(), 315_619_200);
    }
}
