//! Test harness: the identity service on a real TLS port 0, on a fresh
//! database, started through the same `App` path production uses.
#![allow(dead_code, clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use schakel_identity::{
    Identity, IdentityConfig, MasterKey, dev::DevAccount, password::HashParams,
};
use schakel_kit::{
    auth::TokenVerifier,
    client::CallContext,
    config::AuthConfig,
    testing::{RunningServer, TestPki},
    time::Clock,
};
use schakel_proto::v1::{self as pb, identity_service_client::IdentityServiceClient};
use tonic::{service::Routes, service::interceptor::InterceptedService, transport::Channel};

pub type Client = IdentityServiceClient<InterceptedService<Channel, CallContext>>;

pub struct TestApp {
    pub server: RunningServer,
    /// The audit log the service records its changes in.
    pub audit: schakel_audit::Audit,
    _audit_db: Option<schakel_kit::testing::TestDatabase>,
    pub pki: TestPki,
    pub identity: Identity,
    pub accounts: Vec<DevAccount>,
    pub master: MasterKey,
    pub auth: AuthConfig,
    pub config: IdentityConfig,
    pub clock: Clock,
    _dir: tempfile::TempDir,
}

/// The verifiers' `auth.jwks_max_age` in these tests.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(2);

/// Waits until `call` is refused UNAUTHENTICATED with `reason`, which must
/// happen within the verifiers' maximum age (plus a margin for slow CI).
pub async fn refused_within_bound<F, Fut, T>(mut call: F, reason: &str)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + JWKS_MAX_AGE * 3;
    loop {
        match call().await {
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                assert_eq!(schakel_kit::testing::error_reason(&status), reason);
                return;
            }
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "still accepted past the bound: {:?}",
                other.err()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Cheap argon2 parameters: the tests exercise the logic, not the cost.
pub fn test_config() -> IdentityConfig {
    IdentityConfig {
        password_hash: HashParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            ..HashParams::default()
        },
        ..IdentityConfig::default()
    }
}

pub async fn spawn_app(database_url: &str) -> TestApp {
    spawn_with(database_url, test_config(), Clock::System).await
}

pub async fn spawn_with(database_url: &str, config: IdentityConfig, clock: Clock) -> TestApp {
    // A short maximum age, so that the tests of rotation and revocation
    // see the bound pass in a second or two.
    let auth = AuthConfig {
        jwks_refresh_interval: Duration::ZERO,
        jwks_max_age: JWKS_MAX_AGE,
        ..AuthConfig::default()
    };
    let master = MasterKey::generate();
    // The audit log: its own schema in the same PostgreSQL database, or its own SQLite file.
    let (audit_db, audit_url) = if database_url.starts_with("postgres") {
        (None, database_url.to_owned())
    } else {
        let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
        let url = db.url().to_owned();
        (Some(db), url)
    };
    let audit = schakel_audit::Audit::connect(
        &audit_url,
        schakel_audit::AuditConfig::default(),
        ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
        clock.clone(),
    )
    .await
    .expect("audit log");
    let identity = Identity::connect(
        database_url,
        config.clone(),
        auth.clone(),
        master.clone(),
        clock.clone(),
        Arc::new(audit.log().clone()),
    )
    .await
    .expect("identity service");
    let dir = tempfile::tempdir().unwrap();
    let accounts = schakel_identity::dev::seed(&identity, &dir.path().join("accounts.json"))
        .await
        .expect("seed");
    let pki = TestPki::new();
    let verifier = Arc::new(TokenVerifier::new(auth.clone(), identity.jwks_fetcher()));
    let server = RunningServer::serve(&pki, verifier, schakel_identity::SERVICE_NAME, |limits| {
        Routes::new(identity.clone().into_server(limits))
    })
    .await;
    TestApp {
        server,
        audit,
        _audit_db: audit_db,
        pki,
        identity,
        accounts,
        master,
        auth,
        config,
        clock,
        _dir: dir,
    }
}

impl TestApp {
    pub fn channel(&self) -> Channel {
        self.server.channel(self.pki.client_tls())
    }

    pub fn client(&self, token: Option<String>) -> Client {
        IdentityServiceClient::with_interceptor(self.channel(), CallContext::with_token(token))
    }

    pub fn password(&self, username: &str) -> String {
        self.accounts
            .iter()
            .find(|a| a.username == username)
            .expect("seeded account")
            .password
            .clone()
    }

    pub async fn try_login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<pb::IssueTokenResponse, tonic::Status> {
        let grant = pb::issue_token_request::Grant::Password(pb::PasswordGrant {
            username: username.into(),
            password: password.into(),
        });
        self.client(None)
            .issue_token(pb::IssueTokenRequest {
                grant: Some(grant),
                ttl_seconds: 0,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn token(&self, username: &str) -> String {
        self.try_login(username, &self.password(username))
            .await
            .expect("login")
            .access_token
    }

    /// A client authenticated as a seeded user.
    pub async fn as_user(&self, username: &str) -> Client {
        self.client(Some(self.token(username).await))
    }

    pub async fn organisation_id(&self, partner_type: &str) -> String {
        let orgs = self
            .as_user("coordinator")
            .await
            .list_organisations(pb::ListOrganisationsRequest {
                partner_type: partner_type.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .organisations;
        orgs[0].id.clone()
    }
}

impl TestApp {
    /// Every entry in the audit log, oldest first.
    pub async fn audit_entries(&self) -> Vec<pb::AuditEntry> {
        self.audit.log().entries().await.unwrap()
    }
}

#[allow(unused_imports)] // not every test file uses every helper
pub use schakel_kit::testing::{assert_code, bad_field};
