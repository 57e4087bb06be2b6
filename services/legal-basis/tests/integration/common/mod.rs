//! Test harness: the legal-basis service on a real TLS port 0, on a fresh
//! database, with an in-process audit log behind a switch, a manual clock and
//! tokens from a test issuer.
#![allow(dead_code, clippy::unwrap_used)]

use std::{collections::HashMap, sync::Arc};

use schakel_kit::{
    audit::AuditSink,
    auth::{PrincipalKind, Role},
    client::CallContext,
    testing::{RunningServer, SwitchableSink, TestDatabase, TestIssuer, TestPki},
    time::{Clock, to_timestamp},
};
use schakel_legal_basis::{FixedDirectory, LegalBasis};
use schakel_proto::v1::{self as pb, legal_basis_service_client::LegalBasisServiceClient};
use tonic::{service::Routes, service::interceptor::InterceptedService, transport::Channel};

pub type Client = LegalBasisServiceClient<InterceptedService<Channel, CallContext>>;

/// 2026-01-05T00:00:00Z, where every test's clock starts.
pub const T0: i64 = 1_767_571_200;
pub const DAY: i64 = 24 * 3600;

/// The kernpartners of the test network.
pub const PARTNERS: [&str; 8] = [
    "politie",
    "parket",
    "caw",
    "vk",
    "ggz",
    "justitiehuis",
    "ocj",
    "veilig_huis",
];

pub struct TestApp {
    pub server: RunningServer,
    pub pki: TestPki,
    pub issuer: TestIssuer,
    pub service: LegalBasis,
    pub audit: schakel_audit::Audit,
    pub sink: Arc<SwitchableSink>,
    pub clock: Clock,
    /// Partner type → organisation id (the parties), plus "outsider": an
    /// organisation that exists but is party to nothing.
    pub orgs: HashMap<&'static str, String>,
    _audit_db: Option<TestDatabase>,
}

pub async fn spawn(database_url: &str) -> TestApp {
    spawn_wrapped(database_url, |log| log).await
}

/// As [`spawn`], with the service's audit sink built around the log by
/// `wrap` (to lose replies, hold appends, ...).
pub async fn spawn_wrapped(
    database_url: &str,
    wrap: impl FnOnce(Arc<dyn AuditSink>) -> Arc<dyn AuditSink>,
) -> TestApp {
    let clock = Clock::manual(T0);
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
        ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
        clock.clone(),
    )
    .await
    .expect("audit log");
    let sink = Arc::new(SwitchableSink::new(wrap(Arc::new(audit.log().clone()))));
    let mut orgs = HashMap::new();
    for p in PARTNERS.iter().copied().chain(["outsider"]) {
        orgs.insert(p, uuid::Uuid::new_v4().to_string());
    }
    let directory = FixedDirectory::of(
        orgs.iter()
            .map(|(p, id)| {
                let ptype = if *p == "outsider" { "ocmw" } else { p };
                (id.clone(), ptype.to_owned())
            })
            .collect(),
    );
    let service = LegalBasis::connect(
        database_url,
        clock.clone(),
        sink.clone(),
        Arc::new(directory),
    )
    .await
    .expect("legal-basis service");
    let pki = TestPki::new();
    let issuer = TestIssuer::new();
    let server = RunningServer::serve(
        &pki,
        issuer.verifier(),
        schakel_legal_basis::SERVICE_NAME,
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
        clock,
        orgs,
        _audit_db: audit_db,
    }
}

impl TestApp {
    pub fn org(&self, partner: &str) -> String {
        self.orgs[partner].clone()
    }

    pub fn client_with(&self, token: Option<String>) -> Client {
        LegalBasisServiceClient::with_interceptor(
            self.server.channel(self.pki.client_tls()),
            CallContext::with_token(token),
        )
    }

    /// A coordinator of the Justitiehuis.
    pub fn coordinator(&self) -> Client {
        self.as_user("coordinator-1", "justitiehuis", &[Role::Coordinator])
    }

    /// Another coordinator of the Justitiehuis (approves what the first wrote).
    pub fn second_coordinator(&self) -> Client {
        self.as_user("coordinator-2", "justitiehuis", &[Role::Coordinator])
    }

    /// A professional of a partner.
    pub fn as_user(&self, subject: &str, partner: &str, roles: &[Role]) -> Client {
        let token = self.issuer.token(
            PrincipalKind::User,
            subject,
            &self.org(partner),
            partner,
            roles,
        );
        self.client_with(Some(token))
    }

    /// Schakel's broker.
    pub fn broker(&self) -> Client {
        self.service("broker")
    }

    /// One of Schakel's services: its certificate on the connection and a
    /// token bound to it (RFC 8705).
    pub fn service(&self, name: &str) -> Client {
        let client = self.pki.service_client(name);
        LegalBasisServiceClient::with_interceptor(
            self.server.channel(client.tls.clone()),
            CallContext::with_token(Some(self.issuer.service_token(name, &client))),
        )
    }

    pub fn anonymous(&self) -> Client {
        self.client_with(None)
    }

    /// Terms covering `leuven`, every partner, the four IFG purposes, from
    /// `from` for `days` days, with a signed document.
    pub fn terms(&self, from: i64, days: i64) -> pb::AgreementTerms {
        pb::AgreementTerms {
            title: "Samenwerkingsakkoord Ketenaanpak IFG Leuven".into(),
            districts: vec!["leuven".into()],
            parties: PARTNERS
                .iter()
                .map(|p| pb::AgreementParty {
                    organisation_id: self.org(p),
                    partner_type: String::new(),
                })
                .collect(),
            statutory_purposes: vec![pb::StatutoryPurpose::IntegrityProtection as i32],
            processing_purposes: ["triage", "case_building", "case_direction", "follow_up"]
                .map(String::from)
                .to_vec(),
            valid_from: Some(to_timestamp(from)),
            valid_until: Some(to_timestamp(from + days * DAY)),
            scope: None,
            signed_document: Some(pb::SignedDocumentRef {
                sha256: vec![7; 32],
                location: "archief/458ter/leuven.pdf".into(),
            }),
            modalities: "Casusoverleg in het Veilig Huis.".into(),
        }
    }

    pub fn approval(&self) -> pb::ProsecutorApproval {
        pb::ProsecutorApproval {
            prosecutor_office: "Parket Leuven".into(),
            prosecutor_name: "Mr. Procureur Testnaam".into(),
            decided_at: Some(to_timestamp(self.clock.now() - DAY)),
            reference: "LE/458ter/2026/001".into(),
            reasons: "Bescherming van de fysieke en psychische integriteit.".into(),
            recorded_by: String::new(),
            recorded_at: None,
        }
    }

    pub async fn create(&self, terms: pb::AgreementTerms) -> pb::Agreement {
        self.coordinator()
            .create_agreement(pb::CreateAgreementRequest { terms: Some(terms) })
            .await
            .unwrap()
            .into_inner()
            .agreement
            .unwrap()
    }

    /// Approves as the second coordinator (four-eyes: the one who wrote the
    /// draft cannot).
    pub async fn approve(&self, id: &str, version: u32) -> pb::Agreement {
        self.second_coordinator()
            .approve_agreement(pb::ApproveAgreementRequest {
                agreement_id: id.into(),
                version,
                approval: Some(self.approval()),
            })
            .await
            .unwrap()
            .into_inner()
            .agreement
            .unwrap()
    }

    /// Creates and approves `terms`; returns the agreement id.
    pub async fn in_force(&self, terms: pb::AgreementTerms) -> String {
        let created = self.create(terms).await;
        self.approve(&created.agreement_id, 1).await;
        created.agreement_id
    }

    pub async fn get(&self, id: &str, version: u32) -> pb::GetAgreementResponse {
        self.coordinator()
            .get_agreement(pb::GetAgreementRequest {
                agreement_id: id.into(),
                version,
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// CheckBasis as the broker asks it.
    pub async fn check(&self, request: pb::CheckBasisRequest) -> pb::CheckBasisResponse {
        self.broker()
            .check_basis(request)
            .await
            .unwrap()
            .into_inner()
    }

    /// Every entry in the audit log, oldest first.
    pub async fn audit_entries(&self) -> Vec<pb::AuditEntry> {
        self.audit.log().entries().await.unwrap()
    }

    /// The raw bytes of every audit entry, concatenated.
    pub async fn audit_bytes(&self) -> Vec<u8> {
        let log = self.audit.log();
        let size = log.checkpoint().await.unwrap().tree_size;
        let mut bytes = Vec::new();
        let mut start = 0;
        while start < size {
            let leaves = log.leaves(start, size).await.unwrap();
            start += leaves.len() as u64;
            for leaf in leaves {
                bytes.extend_from_slice(&leaf.entry_bytes);
            }
        }
        bytes
    }
}

/// A question about a leuven dossier for `purpose` by `org`.
pub fn question(org: &str, purpose: &str) -> pb::CheckBasisRequest {
    pb::CheckBasisRequest {
        organisation_id: org.into(),
        purpose: purpose.into(),
        dossier: Some(pb::BasisDossierContext {
            dossier_id: uuid::Uuid::new_v4().to_string(),
            district: "leuven".into(),
            track: pb::Track::ChainApproach as i32,
            violence_forms: vec!["partnergeweld".into()],
            victim_person_ids: vec![],
            perpetrator_person_ids: vec![],
        }),
        at: None,
        count_dossier: false,
        informing: pb::InformingRequirement::Unspecified as i32,
    }
}

/// The denial reason of a CheckBasis answer (Unspecified when allowed).
pub fn reason(answer: &pb::CheckBasisResponse) -> pb::BasisDenialReason {
    pb::BasisDenialReason::try_from(answer.denial_reason).unwrap()
}

pub fn status(agreement: &pb::Agreement) -> pb::AgreementStatus {
    pb::AgreementStatus::try_from(agreement.status).unwrap()
}

#[allow(unused_imports)] // not every test file uses every helper
pub use schakel_kit::testing::{assert_code, bad_field, error_reason};
