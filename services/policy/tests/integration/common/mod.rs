//! Test harness: the policy service on a real TLS port 0, on a fresh
//! database, with an in-process audit log behind a switch and tokens from a
//! test issuer.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use schakel_kit::{
    auth::{PrincipalKind, Role},
    client::CallContext,
    testing::{RunningServer, SwitchableSink, TestDatabase, TestIssuer, TestPki},
    time::Clock,
};
use schakel_policy::Policies;
use schakel_proto::v1::{self as pb, policy_service_client::PolicyServiceClient};
use tonic::{service::Routes, service::interceptor::InterceptedService, transport::Channel};

pub type Client = PolicyServiceClient<InterceptedService<Channel, CallContext>>;

#[allow(unused_imports)] // not every test file uses every helper
pub use schakel_kit::testing::{assert_code, bad_field, error_reason};

pub struct TestApp {
    pub server: RunningServer,
    pub pki: TestPki,
    pub issuer: TestIssuer,
    pub service: Policies,
    pub audit: schakel_audit::Audit,
    pub sink: Arc<SwitchableSink>,
    pub database_url: String,
    _audit_db: Option<TestDatabase>,
}

pub async fn spawn(database_url: &str) -> TestApp {
    let clock = Clock::manual(1_767_571_200);
    let (audit_db, audit_url) = if database_url.starts_with("postgres") {
        (None, database_url.to_owned())
    } else {
        let db = TestDatabase::sqlite().unwrap();
        let url = db.url().to_owned();
        (Some(db), url)
    };
    let audit = schakel_audit::Audit::connect(
        &audit_url,
        schakel_audit::AuditConfig::default(),
        ed25519_dalek::SigningKey::from_bytes(&[6; 32]),
        clock.clone(),
    )
    .await
    .expect("audit log");
    let sink = Arc::new(SwitchableSink::new(Arc::new(audit.log().clone())));
    let service = Policies::connect(database_url, clock, sink.clone())
        .await
        .expect("policy service");
    let pki = TestPki::new();
    let issuer = TestIssuer::new();
    let server = RunningServer::serve(
        &pki,
        issuer.verifier(),
        schakel_policy::SERVICE_NAME,
        |limits| Routes::new(service.clone().into_server(limits)),
    )
    .await;
    TestApp {
        server,
        pki,
        issuer,
        service,
        audit,
        sink,
        database_url: database_url.to_owned(),
        _audit_db: audit_db,
    }
}

impl TestApp {
    pub fn client_as(&self, subject: &str, partner_type: &str, roles: &[Role]) -> Client {
        let token = self
            .issuer
            .token(PrincipalKind::User, subject, "org-1", partner_type, roles);
        PolicyServiceClient::with_interceptor(
            self.server.channel(self.pki.client_tls()),
            CallContext::with_token(Some(token)),
        )
    }

    /// The first coordinator.
    pub fn coordinator(&self) -> Client {
        self.client_as("coordinator-a", "justitiehuis", &[Role::Coordinator])
    }

    /// A second coordinator.
    pub fn coordinator2(&self) -> Client {
        self.client_as("coordinator-b", "justitiehuis", &[Role::Coordinator])
    }

    pub fn team_member(&self) -> Client {
        self.client_as("team-ggz", "ggz", &[Role::TeamMember])
    }

    pub async fn active(&self) -> pb::PolicyVersion {
        self.team_member()
            .get_active_policy(pb::GetActivePolicyRequest {})
            .await
            .unwrap()
            .into_inner()
            .policy
            .unwrap()
    }

    /// Proposes `policy_csv` (other files unchanged) against the active version.
    pub async fn propose(
        &self,
        client: &mut Client,
        policy_csv: String,
    ) -> Result<pb::ProposePolicyResponse, tonic::Status> {
        let base = self.active().await.version;
        client
            .propose_policy(pb::ProposePolicyRequest {
                document: Some(pb::PolicyDocument {
                    policy_csv,
                    ..Default::default()
                }),
                base_version: base,
                description: "test change".into(),
                validate_only: false,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every entry in the audit log, oldest first.
    pub async fn audit_entries(&self) -> Vec<pb::AuditEntry> {
        self.audit.log().entries().await.unwrap()
    }
}

/// The repository's policy.csv with one more rule line.
pub fn with_rule(line: &str) -> String {
    let mut csv = schakel_policy::document::repository_files().policy_csv;
    csv.push_str(line);
    csv.push('\n');
    csv
}
