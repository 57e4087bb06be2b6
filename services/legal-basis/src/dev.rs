//! Demo data for `schakel dev`: one approved agreement for district `leuven`
//! with every seeded organisation as a party, valid for a year from the first
//! start. Created through the service's own operations, so it is audited like
//! any other agreement.

use schakel_kit::time::to_timestamp;
use schakel_proto::v1 as pb;

use crate::{LegalBasis, model::IFG_PURPOSES, store};

/// The seeded agreement's title (how the seed recognises it on a restart).
pub const DEV_TITLE: &str = "Samenwerkingsakkoord Ketenaanpak IFG arrondissement Leuven (dev)";

/// The judicial district of the seeded agreement.
pub const DEV_DISTRICT: &str = "leuven";

/// Seconds in the year the seeded agreement is valid.
const YEAR: i64 = 365 * 24 * 3600;

/// Creates and approves the dev agreement unless it exists; returns its id.
pub async fn seed(service: &LegalBasis, parties: &[String]) -> anyhow::Result<String> {
    let existing = store::all_agreements(service.database().pool()).await?;
    if let Some(found) = existing
        .iter()
        .find(|a| a.versions.iter().any(|v| v.terms.title == DEV_TITLE))
    {
        return Ok(found.agreement_id.clone());
    }
    let actor = pb::Actor {
        subject: "svc-dev-seed".into(),
        kind: pb::PrincipalKind::InternalService as i32,
        ..Default::default()
    };
    let now = service.clock().now();
    let document = "Samenwerkingsakkoord art. 458ter Sw. - Ketenaanpak IFG Leuven (demo)";
    let terms = pb::AgreementTerms {
        title: DEV_TITLE.into(),
        districts: vec![DEV_DISTRICT.into()],
        parties: parties
            .iter()
            .map(|id| pb::AgreementParty {
                organisation_id: id.clone(),
                partner_type: String::new(),
            })
            .collect(),
        statutory_purposes: vec![pb::StatutoryPurpose::IntegrityProtection as i32],
        processing_purposes: IFG_PURPOSES.iter().map(|p| (*p).to_owned()).collect(),
        valid_from: Some(to_timestamp(now)),
        valid_until: Some(to_timestamp(now + YEAR)),
        scope: None,
        signed_document: Some(pb::SignedDocumentRef {
            sha256: <sha2::Sha256 as sha2::Digest>::digest(document.as_bytes()).to_vec(),
            location: "demo: no signed original".into(),
        }),
        modalities: "Casusoverleg in het Veilig Huis; delen via Schakel, need-to-know per partner."
            .into(),
    };
    let created = service.create_agreement(&actor, Some(&terms)).await?;
    let approval = pb::ProsecutorApproval {
        prosecutor_office: "Parket Leuven (demo)".into(),
        prosecutor_name: "Procureur des Konings (demo)".into(),
        decided_at: Some(to_timestamp(now)),
        reference: "DEMO/458ter/1".into(),
        reasons: "Demo data for schakel dev: protecting the physical and psychological \
                  integrity of persons in families with intra-family violence."
            .into(),
        recorded_by: String::new(),
        recorded_at: None,
    };
    // Four-eyes: a second actor approves what the first wrote.
    let second = pb::Actor {
        subject: "svc-dev-seed-second".into(),
        ..actor.clone()
    };
    service
        .approve(&second, &created.agreement_id, 1, Some(&approval))
        .await?;
    Ok(created.agreement_id)
}
