//! Test harness: the audit service on TLS port 0, fresh database, tokens from
//! a test issuer (no identity service needed).
#![allow(dead_code, clippy::unwrap_used)]

use schakel_audit::{Audit, AuditConfig};
use schakel_kit::{
    auth::{PrincipalKind, Role},
    client::CallContext,
    testing::{RunningServer, TestIssuer, TestPki},
    time::Clock,
};
use schakel_proto::v1::{self as pb, audit_service_client::AuditServiceClient};
use tonic::{service::Routes, service::interceptor::InterceptedService, transport::Channel};

pub type Client = AuditServiceClient<InterceptedService<Channel, CallContext>>;

pub struct TestAudit {
    pub server: RunningServer,
    pub pki: TestPki,
    pub issuer: TestIssuer,
    pub audit: Audit,
    pub clock: Clock,
    pub database_url: String,
    pub key: ed25519_dalek::SigningKey,
}

pub const ORIGIN: &str = "test.schakel/audit";
pub const VEILIG_HUIS: &str = "org-veilig-huis";
pub const CAW: &str = "org-caw";

pub async fn spawn(database_url: &str) -> TestAudit {
    spawn_with(database_url, Clock::System).await
}

/// The audit service on `clock`, signing with the tests' checkpoint key.
pub async fn spawn_with(database_url: &str, clock: Clock) -> TestAudit {
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let config = AuditConfig {
        origin: ORIGIN.into(),
        // Small query-index segments, so that every query test runs over
        // sealed segments (posting lists) and the open one (scanned).
        index_segment: 4,
        ..AuditConfig::default()
    };
    let audit = Audit::connect(database_url, config, key.clone(), clock.clone())
        .await
        .expect("audit");
    audit.set_directory(std::sync::Arc::new(directory()));
    let pki = TestPki::new();
    let issuer = TestIssuer::new();
    let server = RunningServer::serve(
        &pki,
        issuer.verifier(),
        schakel_audit::SERVICE_NAME,
        |limits| Routes::new(audit.clone().into_server(limits)),
    )
    .await;
    TestAudit {
        server,
        pki,
        issuer,
        audit,
        clock,
        database_url: database_url.into(),
        key,
    }
}

/// The organisations the tests' entries name, with their names.
pub fn directory() -> schakel_kit::ports::FixedDirectory {
    let organisations = [
        (VEILIG_HUIS, "veilig_huis", "Veilig Huis Vlaams-Brabant"),
        (CAW, "caw", "CAW Oost-Brabant"),
        ("org-ggz", "ggz", "GGZ Kempen"),
        ("org-politie", "politie", "PZ Leuven"),
    ];
    let mut directory = schakel_kit::ports::FixedDirectory::of(
        organisations
            .iter()
            .map(|(id, ptype, _)| ((*id).to_owned(), (*ptype).to_owned()))
            .collect(),
    );
    directory.names = organisations
        .iter()
        .map(|(id, _, name)| ((*id).to_owned(), (*name).to_owned()))
        .collect();
    directory
}

impl TestAudit {
    pub fn client_with(&self, token: String) -> Client {
        AuditServiceClient::with_interceptor(
            self.server.channel(self.pki.client_tls()),
            CallContext::with_token(Some(token)),
        )
        .max_decoding_message_size(16 * 1024 * 1024)
    }

    /// Schakel's broker (an internal service).
    pub fn internal(&self) -> Client {
        self.service("broker")
    }

    /// One of Schakel's services: its certificate on the connection and a
    /// token bound to it (RFC 8705).
    pub fn service(&self, name: &str) -> Client {
        let client = self.pki.service_client(name);
        AuditServiceClient::with_interceptor(
            self.server.channel(client.tls.clone()),
            CallContext::with_token(Some(self.issuer.service_token(name, &client))),
        )
        .max_decoding_message_size(16 * 1024 * 1024)
    }

    /// A privacy officer of the Veilig Huis (sees the whole log).
    pub fn dpo_veilig_huis(&self) -> Client {
        self.client_with(self.issuer.token(
            PrincipalKind::User,
            "dpo-vh",
            VEILIG_HUIS,
            "veilig_huis",
            &[Role::PrivacyOfficer],
        ))
    }

    /// A privacy officer of a CAW (sees entries about the CAW).
    pub fn dpo_caw(&self) -> Client {
        self.client_with(self.issuer.token(
            PrincipalKind::User,
            "dpo-caw",
            CAW,
            "caw",
            &[Role::PrivacyOfficer],
        ))
    }

    pub fn team_member(&self) -> Client {
        self.client_with(self.issuer.token(
            PrincipalKind::User,
            "tm-caw",
            CAW,
            "caw",
            &[Role::TeamMember],
        ))
    }

    pub fn coordinator(&self) -> Client {
        self.client_with(self.issuer.token(
            PrincipalKind::User,
            "coord",
            "org-jh",
            "justitiehuis",
            &[Role::Coordinator],
        ))
    }

    pub async fn checkpoint(&self) -> pb::Checkpoint {
        self.internal()
            .get_checkpoint(pb::GetCheckpointRequest {})
            .await
            .unwrap()
            .into_inner()
            .checkpoint
            .unwrap()
    }

    pub fn note_verifier(&self) -> schakel_tlog::NoteVerifier {
        let signer = schakel_tlog::NoteSigner::new("schakel-audit", self.key.clone()).unwrap();
        schakel_tlog::NoteVerifier::parse(&signer.verifier_key()).unwrap()
    }

    /// Runs the client-side verifier over the whole log.
    pub async fn verify(
        &self,
        since: Option<&str>,
    ) -> Result<schakel_audit::verifier::Verified, schakel_audit::verifier::VerifyError> {
        self.verify_as(self.dpo_veilig_huis(), since).await
    }

    /// Runs the client-side verifier as `client` (in its scope).
    pub async fn verify_as(
        &self,
        mut client: Client,
        since: Option<&str>,
    ) -> Result<schakel_audit::verifier::Verified, schakel_audit::verifier::VerifyError> {
        schakel_audit::verifier::verify(
            &mut client,
            &self.note_verifier(),
            ORIGIN,
            since,
            |_, _| {},
        )
        .await
    }
}

/// A read of dossier `dossier` by `org` (partner type `ptype`) about `persons`.
pub fn read_entry(
    org: &str,
    ptype: &str,
    dossier: &str,
    persons: &[&str],
    released: &[&str],
) -> pb::AuditEntry {
    pb::AuditEntry {
        actor: Some(pb::Actor {
            subject: format!("user-of-{org}"),
            kind: pb::PrincipalKind::User as i32,
            organisation_id: org.into(),
            partner_type: ptype.into(),
            roles: vec![pb::Role::TeamMember as i32],
        }),
        action: pb::AuditAction::DossierRead as i32,
        decision: pb::Decision::PartiallyGranted as i32,
        target: Some(pb::AuditTarget {
            dossier_id: dossier.into(),
            person_ids: persons.iter().map(|p| (*p).to_owned()).collect(),
            ..Default::default()
        }),
        purpose: "case_building".into(),
        legal_basis: Some(pb::LegalBasisRef {
            agreement_id: "agr-leuven".into(),
            agreement_version: 1,
        }),
        policy_version: 1,
        fields_released: released.iter().map(|f| (*f).to_owned()).collect(),
        fields_withheld: vec![pb::WithheldField {
            path: "ggz.clinical_notes".into(),
            reason: pb::AccessDenialReason::PolicyDenied as i32,
        }],
        service: "broker".into(),
        ..Default::default()
    }
}

pub async fn append(client: &mut Client, entry: pb::AuditEntry) -> pb::AppendResponse {
    client
        .append(pb::AppendRequest {
            entry: Some(entry),
            append_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Appends `count` reads of dossiers `d0..`, one at a time (so each gets its
/// own signed checkpoint); returns the receipts.
pub async fn append_reads(app: &TestAudit, count: u64) -> Vec<pb::AppendResponse> {
    let mut internal = app.internal();
    let mut receipts = Vec::new();
    for i in 0..count {
        let entry = read_entry(
            CAW,
            "caw",
            &format!("d{i}"),
            &["p1"],
            &["registration.summary"],
        );
        receipts.push(append(&mut internal, entry).await);
    }
    receipts
}
