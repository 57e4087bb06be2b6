//! Every service in one process: what `schakel dev` runs on SQLite with
//! generated keys, and `schakel serve all` runs from a configuration file
//! (PostgreSQL in production). In-process calls replace the gRPC calls
//! between services; the gRPC surface to partners is the same.

use std::sync::Arc;

use schakel_audit::{Audit, AuditConfig};
use schakel_broker::{Broker, Collaborators, keys::Keyring};
use schakel_identity::{Identity, IdentityConfig, MasterKey};
use schakel_kit::{
    auth::TokenVerifier,
    config::{AuthConfig, Limits},
    time::Clock,
};
use schakel_legal_basis::LegalBasis;
use schakel_policy::Policies;
use tonic::service::Routes;

/// The keys of the services.
pub struct Keys {
    /// Wraps identity's token signing keys.
    pub identity_master: MasterKey,
    /// Signs the audit log's checkpoints.
    pub audit_signing: ed25519_dalek::SigningKey,
    /// Wraps the broker's per-dossier data keys.
    pub broker: Keyring,
}

/// The five services, connected to their databases and to each other.
pub struct AllServices {
    pub identity: Identity,
    pub audit: Audit,
    pub legal_basis: LegalBasis,
    pub policies: Policies,
    pub broker: Broker,
}

/// Settings of the services that have any.
pub struct Settings {
    pub identity: IdentityConfig,
    pub auth: AuthConfig,
    pub audit: AuditConfig,
    pub retention: std::time::Duration,
    pub process: schakel_broker::process::ProcessConfig,
}

impl AllServices {
    /// Connects (and migrates) each service's database, `url(service)`.
    pub async fn connect(
        url: impl Fn(&str) -> anyhow::Result<String>,
        settings: &Settings,
        keys: Keys,
    ) -> anyhow::Result<Self> {
        let audit = Audit::connect(
            &url("audit")?,
            settings.audit.clone(),
            keys.audit_signing,
            Clock::System,
        )
        .await?;
        let sink = Arc::new(audit.log().clone());
        let identity = Identity::connect(
            &url("identity")?,
            settings.identity.clone(),
            settings.auth.clone(),
            keys.identity_master,
            Clock::System,
            sink.clone(),
        )
        .await?;
        // Each service is the port the others ask of it (schakel_kit::ports).
        let directory = Arc::new(identity.clone());
        audit.set_directory(directory.clone());
        let legal_basis = LegalBasis::connect(
            &url("legal-basis")?,
            Clock::System,
            sink.clone(),
            directory.clone(),
        )
        .await?;
        let policies = Policies::connect(&url("policy")?, Clock::System, sink.clone()).await?;
        let broker = Broker::connect(
            &url("broker")?,
            Clock::System,
            keys.broker,
            Collaborators {
                audit: sink,
                basis: Arc::new(legal_basis.clone()),
                policy: Arc::new(policies.source()),
                directory,
            },
        )
        .await?
        .with_process(settings.process.clone())?;
        audit.spawn_retention();
        broker.spawn_retention(settings.retention);
        broker.spawn_sweeper();
        Ok(Self {
            identity,
            audit,
            legal_basis,
            policies,
            broker,
        })
    }

    /// The gRPC routes of all five, their health names, and a verifier of
    /// the tokens identity signs.
    pub fn into_routes(
        self,
        auth: AuthConfig,
        limits: &Limits,
    ) -> (Routes, Vec<String>, Arc<TokenVerifier>) {
        let verifier = Arc::new(TokenVerifier::new(auth, self.identity.jwks_fetcher()));
        let routes = Routes::new(self.identity.into_server(limits))
            .add_service(self.audit.into_server(limits))
            .add_service(self.legal_basis.into_server(limits))
            .add_service(self.policies.into_server(limits))
            .add_service(self.broker.into_server(limits));
        let names = [
            schakel_identity::SERVICE_NAME,
            schakel_audit::SERVICE_NAME,
            schakel_legal_basis::SERVICE_NAME,
            schakel_policy::SERVICE_NAME,
            schakel_broker::SERVICE_NAME,
        ]
        .map(String::from)
        .to_vec();
        (routes, names, verifier)
    }
}
