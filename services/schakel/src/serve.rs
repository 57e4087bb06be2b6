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
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Audit => "audit",
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
    /// Where the other services are.
    pub services: ServicesConfig,
}

/// Addresses of the services a service calls (mTLS with `server.tls`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServicesConfig {
    /// The audit service, e.g. `https://audit.schakel.svc:50051`.
    pub audit_url: Option<String>,
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

fn config_error(err: anyhow::Error) -> ConfigError {
    ConfigError(format!("{err:#}"))
}

/// A verifier that fetches the JWKS from the identity service at `auth.identity_url`.
fn remote_verifier(config: &ServeConfig) -> anyhow::Result<Arc<TokenVerifier>> {
    let url = config
        .auth
        .identity_url
        .as_deref()
        .ok_or_else(|| ConfigError("auth.identity_url is required".into()))?;
    let tls = schakel_kit::tls::peer_client_config(&config.server.tls).map_err(config_error)?;
    let channel = schakel_kit::client::channel(url, tls).map_err(config_error)?;
    Ok(Arc::new(TokenVerifier::new(
        config.auth.clone(),
        remote_jwks(channel),
    )))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let name = args.service.name();
    let _telemetry = schakel_kit::telemetry::init(name)?;
    let config: ServeConfig = schakel_kit::config::load(args.config.as_deref())?;
    let database_url = config.database_url(name)?;
    schakel_kit::tls::server_config(&config.server.tls).map_err(config_error)?;
    let limits = config.server.limits.clone();
    let (routes, service, verifier) = match args.service {
        Service::Identity => {
            config.identity.validate().map_err(config_error)?;
            let master = config.identity.load_master_key().map_err(config_error)?;
            let audit_url = config.services.audit_url.as_deref().ok_or_else(|| {
                ConfigError("services.audit_url is required: identity records every change in the audit log".into())
            })?;
            let tls =
                schakel_kit::tls::peer_client_config(&config.server.tls).map_err(config_error)?;
            let channel = schakel_kit::client::channel(audit_url, tls).map_err(config_error)?;
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
            let token = identity.internal_token("identity").await?;
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
            crate::dev::spawn_retention(audit.clone());
            (
                Routes::new(audit.into_server(&limits)),
                schakel_audit::SERVICE_NAME,
                verifier,
            )
        }
    };
    let app = App::build(config.server, routes, vec![service.into()], verifier).await?;
    println!("schakel {name} listening on https://{}", app.local_addr());
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
