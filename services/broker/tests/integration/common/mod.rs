//! Test harness: the broker on a real TLS port 0 with the real legal-basis
//! and policy services in process (an approved agreement for leuven with the
//! eight kernpartners), an audit log behind a switch, a manual clock, fresh
//! databases, and tokens from a test issuer.
#![allow(dead_code, clippy::unwrap_used)]

use std::{collections::HashMap, sync::Arc};

use schakel_broker::{Broker, keys::Keyring};
use schakel_kit::ports::{DirectoryUser, FixedDirectory};
use schakel_kit::{
    auth::{PrincipalKind, Role},
    client::CallContext,
    crypto::SecretKey,
    testing::{RunningServer, SwitchableSink, TestDatabase, TestIssuer, TestPki},
    time::{Clock, to_timestamp},
};
use schakel_legal_basis::LegalBasis;
use schakel_proto::v1::{self as pb, broker_service_client::BrokerServiceClient};
use tonic::service::Routes;

mod audit_log;
mod gates;
mod messages;
#[allow(unused_imports)] // the bench uses the harness without these
pub use {audit_log::*, gates::*, messages::*};

pub use schakel_broker::Client;

#[allow(unused_imports)] // not every test file uses every helper
pub use schakel_kit::testing::{assert_code, bad_field, error_reason};

/// 2026-01-05T00:00:00Z.
pub const T0: i64 = 1_767_571_200;
pub const DAY: i64 = 24 * 3600;
/// The harness's chain process (shorter than the defaults, so that dates
/// come within the test agreement's 90 days): follow-up check after 20
/// days, spoor 2 reviewed every 15 days, spoor 3 every 10.
pub const FOLLOW_UP: i64 = 20 * DAY;
pub const SPOOR_2_REVIEW: i64 = 15 * DAY;
pub const SPOOR_3_REVIEW: i64 = 10 * DAY;
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
    pub broker: Broker,
    pub legal_basis: LegalBasis,
    pub policies: schakel_policy::Policies,
    pub audit: schakel_audit::Audit,
    pub sink: Arc<SwitchableSink>,
    pub clock: Clock,
    pub orgs: HashMap<&'static str, String>,
    pub agreement_id: String,
    /// Organisations and the users tests add.
    pub directory: Arc<FixedDirectory>,
    _dbs: Vec<TestDatabase>,
}

/// A database URL per service: PostgreSQL schemas in one database, or one
/// SQLite file each.
fn url_for(base: &str, dbs: &mut Vec<TestDatabase>) -> String {
    if base.starts_with("postgres") {
        base.to_owned()
    } else {
        let db = TestDatabase::sqlite().unwrap();
        let url = db.url().to_owned();
        dbs.push(db);
        url
    }
}

/// The harness on `database_url` (PostgreSQL, or fresh SQLite files).
pub async fn spawn(database_url: &str) -> TestApp {
    let clock = Clock::manual(T0);
    let mut dbs = Vec::new();
    let audit = schakel_audit::Audit::connect(
        &url_for(database_url, &mut dbs),
        schakel_audit::AuditConfig::default(),
        ed25519_dalek::SigningKey::from_bytes(&[8; 32]),
        clock.clone(),
    )
    .await
    .unwrap();
    let sink = Arc::new(SwitchableSink::new(Arc::new(audit.log().clone())));
    let mut orgs = HashMap::new();
    for p in PARTNERS.iter().copied().chain(["outsider"]) {
        orgs.insert(p, uuid::Uuid::new_v4().to_string());
    }
    let directory = Arc::new(FixedDirectory::of(
        orgs.iter()
            .map(|(p, id)| {
                let ptype = if *p == "outsider" { "ocmw" } else { p };
                (id.clone(), ptype.to_owned())
            })
            .collect(),
    ));
    let legal_basis = LegalBasis::connect(
        &url_for(database_url, &mut dbs),
        clock.clone(),
        sink.clone(),
        directory.clone(),
    )
    .await
    .unwrap();
    let coordinator = pb::Actor {
        subject: "coordinator-1".into(),
        kind: pb::PrincipalKind::User as i32,
        roles: vec![pb::Role::Coordinator as i32],
        ..Default::default()
    };
    let terms = pb::AgreementTerms {
        title: "Ketenaanpak Leuven".into(),
        districts: vec!["leuven".into()],
        parties: PARTNERS
            .iter()
            .map(|p| pb::AgreementParty {
                organisation_id: orgs[p].clone(),
                partner_type: String::new(),
            })
            .collect(),
        statutory_purposes: vec![pb::StatutoryPurpose::IntegrityProtection as i32],
        processing_purposes: ["triage", "case_building", "case_direction", "follow_up"]
            .map(String::from)
            .to_vec(),
        valid_from: Some(to_timestamp(T0)),
        valid_until: Some(to_timestamp(T0 + 90 * DAY)),
        scope: None,
        signed_document: Some(pb::SignedDocumentRef {
            sha256: vec![1; 32],
            location: "x".into(),
        }),
        modalities: String::new(),
    };
    let agreement = legal_basis
        .create_agreement(&coordinator, Some(&terms))
        .await
        .unwrap();
    // Four-eyes: a second coordinator approves.
    legal_basis
        .approve(
            &pb::Actor {
                subject: "coordinator-2".into(),
                ..coordinator.clone()
            },
            &agreement.agreement_id,
            1,
            Some(&pb::ProsecutorApproval {
                prosecutor_office: "Parket Leuven".into(),
                prosecutor_name: "Procureur".into(),
                decided_at: Some(to_timestamp(T0)),
                reference: "LE/1".into(),
                reasons: "Integriteit.".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let policies = schakel_policy::Policies::connect(
        &url_for(database_url, &mut dbs),
        clock.clone(),
        sink.clone(),
    )
    .await
    .unwrap();
    let broker = Broker::connect(
        &url_for(database_url, &mut dbs),
        clock.clone(),
        Keyring::new(SecretKey::generate(), []),
        schakel_broker::Collaborators {
            audit: sink.clone(),
            basis: Arc::new(legal_basis.clone()),
            policy: Arc::new(policies.source()),
            directory: directory.clone(),
        },
    )
    .await
    .unwrap()
    .with_process(schakel_broker::process::ProcessConfig {
        follow_up_check: std::time::Duration::from_secs(FOLLOW_UP as u64),
        case_support_review: std::time::Duration::from_secs(SPOOR_2_REVIEW as u64),
        chain_approach_review: std::time::Duration::from_secs(SPOOR_3_REVIEW as u64),
        ..Default::default()
    })
    .unwrap();
    let pki = TestPki::new();
    let issuer = TestIssuer::new();
    let server = RunningServer::serve(
        &pki,
        issuer.verifier(),
        schakel_broker::SERVICE_NAME,
        |limits| Routes::new(broker.clone().into_server(limits)),
    )
    .await;
    TestApp {
        server,
        pki,
        issuer,
        broker,
        legal_basis,
        policies,
        audit,
        sink,
        clock,
        agreement_id: agreement.agreement_id,
        directory,
        orgs,
        _dbs: dbs,
    }
}

/// A coordinator (of the Justitiehuis) as the in-process services see one.
pub fn coordinator(subject: &str) -> pb::Actor {
    pb::Actor {
        subject: subject.into(),
        kind: pb::PrincipalKind::User as i32,
        roles: vec![pb::Role::Coordinator as i32],
        ..Default::default()
    }
}

impl TestApp {
    /// One coordinator proposes the repository's policy plus `extra_rules`
    /// (policy.csv lines), a second approves it (four eyes): the new active
    /// version, while the broker runs.
    pub async fn activate_policy_with(&self, extra_rules: &str, description: &str) -> u64 {
        let mut csv = schakel_policy::document::repository_files().policy_csv;
        csv.push_str(extra_rules);
        let (proposed, _) = self
            .policies
            .propose(
                coordinator("coordinator-a"),
                &pb::ProposePolicyRequest {
                    document: Some(pb::PolicyDocument {
                        policy_csv: csv,
                        ..Default::default()
                    }),
                    base_version: 1,
                    description: description.into(),
                    validate_only: false,
                },
            )
            .await
            .unwrap();
        let version = proposed.unwrap().version;
        self.policies
            .approve(coordinator("coordinator-b"), version)
            .await
            .unwrap();
        version
    }

    /// A professional of `partner` holding `roles`.
    pub fn as_user(&self, subject: &str, partner: &str, roles: &[Role]) -> Client {
        let org = self.orgs[partner].clone();
        let ptype = if partner == "outsider" {
            "ocmw"
        } else {
            partner
        };
        let token = self
            .issuer
            .token(PrincipalKind::User, subject, &org, ptype, roles);
        self.client(token)
    }

    fn client(&self, token: String) -> Client {
        BrokerServiceClient::with_interceptor(
            self.server.channel(self.pki.client_tls()),
            CallContext::with_token(Some(token)),
        )
    }

    /// Registers a user of `partner`'s organisation holding `roles` in the
    /// test directory and returns its user id (a new UUID v4), the subject of
    /// its tokens: `app.as_user(&user_id, partner, roles)`.
    pub fn add_user(&self, partner: &str, roles: &[Role]) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let user = DirectoryUser {
            organisation_id: self.orgs[partner].clone(),
            roles: roles.to_vec(),
            disabled: false,
        };
        self.directory.add_user(&id, user);
        id
    }

    /// The police's aanmelder registers the seeded family under `key`.
    pub async fn register_family(&self, key: &str) -> pb::RegisterDossierResponse {
        self.register(registration(key)).await
    }

    pub fn team(&self, partner: &str) -> Client {
        self.as_user(&format!("team-{partner}"), partner, &[Role::TeamMember])
    }

    /// Every audit entry, oldest first.
    pub async fn audit_entries(&self) -> Vec<pb::AuditEntry> {
        self.audit.log().entries().await.unwrap()
    }
}

/// Deferred for the victim's safety, to review after 30 days.
fn deferred() -> pb::InformingDetails {
    pb::InformingDetails {
        state: pb::InformingState::Deferred as i32,
        deferral_reason: pb::DeferralReason::SafetyOfVictim as i32,
        review_at: Some(to_timestamp(T0 + 30 * DAY)),
        ..Default::default()
    }
}

/// The seeded family: Marie (slachtoffer, informed), Tom (pleger, deferred,
/// with a national register number), Lotte (kind).
pub fn registration(key: &str) -> pb::RegisterDossierRequest {
    let person =
        |r: &str, roles: &[pb::PersonRole], given: &str, informing| pb::ClientPersonInput {
            client_ref: r.into(),
            roles: roles.iter().map(|x| *x as i32).collect(),
            given_name: given.into(),
            family_name: "Peeters".into(),
            birth_date: Some(pb::CalendarDate {
                year: 1985,
                month: 7,
                day: 30,
            }),
            national_number: if r == "tom" {
                "85.07.30-033.28".into()
            } else {
                String::new()
            },
            address: None,
            informing,
        };
    pb::RegisterDossierRequest {
        district: "leuven".into(),
        requested_track: pb::Track::ChainApproach as i32,
        form: Some(pb::RegistrationForm {
            violence_types: vec!["fysiek".into(), "psychisch".into()],
            violence_forms: vec!["partnergeweld".into(), "kinderen_getuige".into()],
            situation_description: "Herhaald fysiek geweld; Marie vreest voor haar leven.".into(),
            risk_factors: vec![pb::ObservedFactor {
                code: "doodsbedreiging".into(),
                note: String::new(),
            }],
            protective_factors: vec![],
            involved_organisations: vec![pb::InvolvedOrganisation {
                organisation_id: String::new(),
                name: "Huisartsenpraktijk".into(),
                sector: "huisarts".into(),
            }],
            source_reference: "PV-2026-0042".into(),
            persons: vec![
                person(
                    "marie",
                    &[pb::PersonRole::Slachtoffer],
                    "Marie",
                    Some(informed(pb::InformingMethod::InPerson)),
                ),
                person("tom", &[pb::PersonRole::Pleger], "Tom", Some(deferred())),
                person(
                    "lotte",
                    &[pb::PersonRole::Kind],
                    "Lotte",
                    Some(informed(pb::InformingMethod::InPerson)),
                ),
            ],
            relations: vec![],
            additional_fields: vec![],
        }),
        idempotency_key: key.into(),
    }
}

/// The values of a released field, as text where they are text.
pub fn texts(response: &pb::GetDossierResponse, path: &str) -> Vec<String> {
    response
        .released
        .iter()
        .filter(|f| f.path == path)
        .flat_map(|f| f.contributions.iter())
        .filter_map(|c| match c.value.as_ref().and_then(|v| v.kind.clone()) {
            Some(pb::field_value::Kind::Text(t)) => Some(t),
            _ => None,
        })
        .collect()
}

/// Why a field was withheld from a read, if it was.
pub fn withheld(response: &pb::GetDossierResponse, path: &str) -> Option<pb::AccessDenialReason> {
    response
        .withheld
        .iter()
        .find(|w| w.path == path)
        .map(|w| pb::AccessDenialReason::try_from(w.reason).unwrap())
}

/// A read of every field of a dossier (no persons, no history) for `purpose`.
pub fn read_request(dossier_id: &str, purpose: &str) -> pb::GetDossierRequest {
    pb::GetDossierRequest {
        dossier_id: dossier_id.into(),
        purpose: purpose.into(),
        fields: vec![],
        person_ids: vec![],
        include_history: false,
    }
}
