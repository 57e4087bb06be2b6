//! `schakel serve <service>`: one service per process (microservices mode).

use std::{path::PathBuf, sync::Arc};

use schakel_identity::{Identity, IdentityConfig};
use schakel_kit::{
    auth::TokenVerifier,
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
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
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

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _telemetry = schakel_kit::telemetry::init(args.service.name())?;
    let config: ServeConfig = schakel_kit::config::load(args.config.as_deref())?;
    let database_url = config.database_url(args.service.name())?;
    schakel_kit::tls::server_config(&config.server.tls)
        .map_err(|e| ConfigError(format!("{e:#}")))?;
    match args.service {
        Service::Identity => {
            config
                .identity
                .validate()
                .map_err(|e| ConfigError(format!("{e:#}")))?;
            let master = config
                .identity
                .load_master_key()
                .map_err(|e| ConfigError(format!("{e:#}")))?;
            let identity = Identity::connect(
                &database_url,
                config.identity.clone(),
                config.auth.clone(),
                master,
                Clock::System,
            )
            .await?;
            let verifier = Arc::new(TokenVerifier::new(
                config.auth.clone(),
                identity.jwks_fetcher(),
            ));
            let routes = Routes::new(identity.into_server(&config.server.limits));
            let app = App::build(
                config.server,
                routes,
                vec![schakel_identity::SERVICE_NAME.into()],
                verifier,
            )
            .await?;
            println!("schakel identity listening on https://{}", app.local_addr());
            app.run_until(shutdown_signal()).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_configuration_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/identity.example.toml");
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
    }
}
