//! Agreements as stored, their lifecycle, and the rules requests must follow.
//!
//! The lifecycle is computed from the clock when read, so that expiry, a newer
//! version taking over and a revocation all take effect exactly at their
//! moment, with no background job: an agreement version is
//! - a draft until the prosecutor's approval is recorded;
//! - then approved: the legal basis during `[valid_from, valid_until)`;
//! - superseded once a newer approved version of the same agreement starts;
//! - expired after `valid_until`; revoked (every version) from `revoked_at`.

use schakel_kit::validate::{self, Invalid, Valid};
use schakel_proto::v1 as pb;

use crate::check::{self, Time};

/// The processing purposes of the IFG chain approach (the catalogue can grow:
/// any code is accepted, these are the ones the dev seed uses).
pub const IFG_PURPOSES: [&str; 4] = ["triage", "case_building", "case_direction", "follow_up"];

/// Longest free text kept in an agreement (modalities, reasons, explanations).
const MAX_TEXT: usize = 4000;
/// Most entries in any list of an agreement (districts, parties, purposes, forms).
const MAX_LIST: usize = 200;

/// One stored version of an agreement.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    /// Version number, from 1.
    pub version: u32,
    /// The terms (parties carry their partner type).
    pub terms: pb::AgreementTerms,
    /// The prosecutor's approval, once recorded.
    pub approval: Option<pb::ProsecutorApproval>,
    /// When the approval was recorded: from then on the version can be a basis.
    pub approved_at: Option<Time>,
    /// What an amendment changed.
    pub change_summary: String,
    /// Subject id of the coordinator who created it.
    pub created_by: String,
    /// Subject id of the coordinator who last wrote its terms.
    pub edited_by: String,
    /// When created and last changed.
    pub created_at: Time,
    /// Last change (drafts only change).
    pub updated_at: Time,
}

impl Version {
    /// Start of validity.
    pub fn valid_from(&self) -> Time {
        self.terms.valid_from.as_ref().map_or(0, |t| t.seconds)
    }

    /// End of validity (exclusive).
    pub fn valid_until(&self) -> Time {
        self.terms.valid_until.as_ref().map_or(0, |t| t.seconds)
    }
}

/// An agreement with all its versions, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Opaque id.
    pub agreement_id: String,
    /// When version 1 was created.
    pub created_at: Time,
    /// Dossiers counted against the cap.
    pub dossier_count: u32,
    /// The revocation, if any, and when it took effect.
    pub revocation: Option<(Time, pb::AgreementRevocation)>,
    /// Every version, oldest first (never empty).
    pub versions: Vec<Version>,
}

impl Agreement {
    /// The latest version.
    pub fn latest(&self) -> &Version {
        // Never empty: an agreement is created with its version 1.
        &self.versions[self.versions.len() - 1]
    }

    /// The version with this number.
    pub fn version(&self, number: u32) -> Option<&Version> {
        self.versions.iter().find(|v| v.version == number)
    }

    /// Whether the agreement is revoked at `at`.
    pub fn revoked_at(&self, at: Time) -> bool {
        self.revocation.as_ref().is_some_and(|(t, _)| *t <= at)
    }

    /// The version that answers for this agreement at `at`: among the versions
    /// approved by then, the newest whose validity has started, or else the
    /// oldest approved one (which is then not yet valid). `None` when nothing
    /// was approved by `at`.
    pub fn effective(&self, at: Time) -> Option<&Version> {
        let approved = || {
            self.versions
                .iter()
                .filter(move |v| v.approved_at.is_some_and(|a| a <= at))
        };
        approved()
            .filter(|v| v.valid_from() <= at)
            .max_by_key(|v| v.version)
            .or_else(|| approved().min_by_key(|v| v.version))
    }

    /// The status of version `number` at `at`.
    pub fn status(&self, number: u32, at: Time) -> pb::AgreementStatus {
        let Some(version) = self.version(number) else {
            return pb::AgreementStatus::Unspecified;
        };
        if self.revoked_at(at) {
            return pb::AgreementStatus::Revoked;
        }
        if version.approved_at.is_none_or(|a| a > at) {
            return pb::AgreementStatus::Draft;
        }
        match self.effective(at) {
            Some(effective) if effective.version > number => pb::AgreementStatus::Superseded,
            _ if at >= version.valid_until() => pb::AgreementStatus::Expired,
            _ => pb::AgreementStatus::Approved,
        }
    }

    /// Whether version `number` is the legal basis at `at`.
    pub fn in_force(&self, number: u32, at: Time) -> bool {
        self.status(number, at) == pb::AgreementStatus::Approved
            && self.version(number).is_some_and(|v| v.valid_from() <= at)
    }

    /// The version effective at `at`, as the decision core sees it.
    pub fn candidate(&self, at: Time) -> Option<check::AgreementVersion> {
        let version = self.effective(at)?;
        let terms = &version.terms;
        let scope = terms.scope.clone().unwrap_or_default();
        Some(check::AgreementVersion {
            agreement_id: self.agreement_id.clone(),
            version: version.version,
            parties: terms
                .parties
                .iter()
                .map(|p| p.organisation_id.clone())
                .collect(),
            districts: terms.districts.clone(),
            purposes: terms.processing_purposes.clone(),
            valid_from: version.valid_from(),
            valid_until: version.valid_until(),
            revoked_at: self.revocation.as_ref().map(|(t, _)| *t),
            scope: check::Scope {
                max_dossiers: scope.max_dossiers,
                tracks: scope.tracks.iter().filter_map(|t| track(*t)).collect(),
                violence_forms: scope.violence_forms,
            },
            dossiers_counted: self.dossier_count,
        })
    }

    /// Version `number` as the API shows it at `at`.
    pub fn to_proto(&self, number: u32, at: Time) -> Option<pb::Agreement> {
        let v = self.version(number)?;
        Some(pb::Agreement {
            agreement_id: self.agreement_id.clone(),
            version: v.version,
            status: self.status(number, at) as i32,
            terms: Some(v.terms.clone()),
            approval: v.approval.clone(),
            revocation: self.revocation.as_ref().map(|(_, r)| r.clone()),
            created_by: v.created_by.clone(),
            created_at: Some(schakel_kit::time::to_timestamp(v.created_at)),
            updated_at: Some(schakel_kit::time::to_timestamp(v.updated_at)),
            in_force: self.in_force(number, at),
            dossier_count: self.dossier_count,
            change_summary: v.change_summary.clone(),
            edited_by: v.edited_by.clone(),
        })
    }
}

/// The decision core's track for a proto track.
pub fn track(value: i32) -> Option<check::Track> {
    match pb::Track::try_from(value).ok()? {
        pb::Track::Consult => Some(check::Track::Consult),
        pb::Track::CaseSupport => Some(check::Track::CaseSupport),
        pb::Track::ChainApproach => Some(check::Track::ChainApproach),
        pb::Track::Unspecified => None,
    }
}

fn list<T>(field: &'static str, values: &[T], min: usize) -> Valid<()> {
    if values.len() < min {
        return Err(Invalid::new(field, format!("at least {min} required")));
    }
    if values.len() > MAX_LIST {
        return Err(Invalid::new(field, format!("at most {MAX_LIST} allowed")));
    }
    Ok(())
}

fn codes(field: &'static str, values: &[String], min: usize) -> Valid<Vec<String>> {
    list(field, values, min)?;
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        let code = validate::code(field, value)?;
        if out.contains(&code) {
            return Err(Invalid::new(field, format!("{code} is listed twice")));
        }
        out.push(code);
    }
    Ok(out)
}

/// Checks and normalises a coordinator's terms. Parties are checked for form
/// here and for existence by the service (their partner type is filled in
/// there).
pub fn terms(terms: Option<&pb::AgreementTerms>) -> Valid<pb::AgreementTerms> {
    let t = terms.ok_or_else(|| Invalid::new("terms", "is required"))?;
    let title = validate::label("terms.title", &t.title)?;
    list("terms.districts", &t.districts, 1)?;
    let mut districts = Vec::new();
    for d in &t.districts {
        let d = validate::region("terms.districts", d)?;
        if districts.contains(&d) {
            return Err(Invalid::new(
                "terms.districts",
                format!("{d} is listed twice"),
            ));
        }
        districts.push(d);
    }
    list("terms.parties", &t.parties, 2)?;
    let mut parties: Vec<pb::AgreementParty> = Vec::new();
    for p in &t.parties {
        let id = validate::id("terms.parties", &p.organisation_id)?;
        if parties.iter().any(|q| q.organisation_id == id) {
            return Err(Invalid::new(
                "terms.parties",
                format!("{id} is listed twice"),
            ));
        }
        parties.push(pb::AgreementParty {
            organisation_id: id,
            partner_type: String::new(),
        });
    }
    list("terms.statutory_purposes", &t.statutory_purposes, 1)?;
    let mut statutory = Vec::new();
    for s in &t.statutory_purposes {
        match pb::StatutoryPurpose::try_from(*s) {
            Ok(p) if p != pb::StatutoryPurpose::Unspecified && !statutory.contains(s) => {
                statutory.push(*s)
            }
            _ => {
                return Err(Invalid::new(
                    "terms.statutory_purposes",
                    format!("{s} is not a statutory purpose, or is listed twice"),
                ));
            }
        }
    }
    let purposes = codes("terms.processing_purposes", &t.processing_purposes, 1)?;
    let from = validate::timestamp("terms.valid_from", t.valid_from.as_ref())?;
    let until = validate::timestamp("terms.valid_until", t.valid_until.as_ref())?;
    if until <= from {
        return Err(Invalid::new(
            "terms.valid_until",
            "must be later than valid_from",
        ));
    }
    let scope = t.scope.clone().unwrap_or_default();
    let mut tracks = Vec::new();
    for tr in &scope.tracks {
        if track(*tr).is_none() || tracks.contains(tr) {
            return Err(Invalid::new(
                "terms.scope.tracks",
                format!("{tr} is not a track, or is listed twice"),
            ));
        }
        tracks.push(*tr);
    }
    let forms = codes("terms.scope.violence_forms", &scope.violence_forms, 0)?;
    let document = match &t.signed_document {
        None => None,
        Some(d) => {
            if d.sha256.len() != 32 {
                return Err(Invalid::new(
                    "terms.signed_document.sha256",
                    "must be a SHA-256 digest (32 bytes)",
                ));
            }
            Some(pb::SignedDocumentRef {
                sha256: d.sha256.clone(),
                location: validate::text("terms.signed_document.location", &d.location, 500)?,
            })
        }
    };
    Ok(pb::AgreementTerms {
        title,
        districts,
        parties,
        statutory_purposes: statutory,
        processing_purposes: purposes,
        valid_from: t.valid_from,
        valid_until: t.valid_until,
        scope: Some(pb::AgreementScope {
            max_dossiers: scope.max_dossiers,
            tracks,
            violence_forms: forms,
        }),
        signed_document: document,
        modalities: validate::text("terms.modalities", &t.modalities, MAX_TEXT)?,
    })
}

/// Checks the prosecutor's approval as recorded by a coordinator at `now`.
pub fn approval(
    approval: Option<&pb::ProsecutorApproval>,
    now: Time,
) -> Valid<pb::ProsecutorApproval> {
    let a = approval.ok_or_else(|| Invalid::new("approval", "is required"))?;
    let decided = validate::timestamp("approval.decided_at", a.decided_at.as_ref())?;
    if decided > now {
        return Err(Invalid::new("approval.decided_at", "lies in the future"));
    }
    let reasons = validate::text("approval.reasons", &a.reasons, MAX_TEXT)?;
    if reasons.is_empty() {
        return Err(Invalid::new(
            "approval.reasons",
            "art. 458ter requires a reasoned authorisation: summarise the reasons",
        ));
    }
    Ok(pb::ProsecutorApproval {
        prosecutor_office: validate::label("approval.prosecutor_office", &a.prosecutor_office)?,
        prosecutor_name: validate::label("approval.prosecutor_name", &a.prosecutor_name)?,
        decided_at: a.decided_at,
        reference: validate::label("approval.reference", &a.reference)?,
        reasons,
        recorded_by: String::new(),
        recorded_at: None,
    })
}

/// Checks what is recorded about informing one person, at `now`. `own_org` is
/// the organisation the professional works for (the default informer).
pub fn informing(
    details: Option<&pb::InformingDetails>,
    own_org: &str,
    now: Time,
) -> Valid<pb::InformingDetails> {
    let d = details.ok_or_else(|| Invalid::new("details", "is required"))?;
    let informed_fields =
        d.informed_at.is_some() || !d.informed_by_organisation_id.is_empty() || d.method != 0;
    let deferral_fields =
        d.deferral_reason != 0 || !d.deferral_explanation.is_empty() || d.review_at.is_some();
    match pb::InformingState::try_from(d.state) {
        Ok(pb::InformingState::Informed) => {
            if deferral_fields {
                return Err(Invalid::new(
                    "details",
                    "an informed person has no deferral reason, explanation or review date",
                ));
            }
            let at = validate::timestamp("details.informed_at", d.informed_at.as_ref())?;
            if at > now + 60 {
                return Err(Invalid::new("details.informed_at", "lies in the future"));
            }
            let method = match pb::InformingMethod::try_from(d.method) {
                Ok(m) if m != pb::InformingMethod::Unspecified => m,
                _ => return Err(Invalid::new("details.method", "is required")),
            };
            let by = if d.informed_by_organisation_id.is_empty() {
                own_org.to_owned()
            } else {
                validate::id(
                    "details.informed_by_organisation_id",
                    &d.informed_by_organisation_id,
                )?
            };
            Ok(pb::InformingDetails {
                state: d.state,
                informed_at: d.informed_at,
                informed_by_organisation_id: by,
                method: method as i32,
                ..Default::default()
            })
        }
        Ok(pb::InformingState::Deferred) => {
            if informed_fields {
                return Err(Invalid::new(
                    "details",
                    "a deferral has no informed time, informer or method",
                ));
            }
            let reason = match pb::DeferralReason::try_from(d.deferral_reason) {
                Ok(r) if r != pb::DeferralReason::Unspecified => r,
                _ => return Err(Invalid::new("details.deferral_reason", "is required")),
            };
            let review = validate::timestamp("details.review_at", d.review_at.as_ref())?;
            if review <= now {
                return Err(Invalid::new(
                    "details.review_at",
                    "must lie in the future: the team reviews the deferral then",
                ));
            }
            Ok(pb::InformingDetails {
                state: d.state,
                deferral_reason: reason as i32,
                deferral_explanation: validate::text(
                    "details.deferral_explanation",
                    &d.deferral_explanation,
                    1000,
                )?,
                review_at: d.review_at,
                ..Default::default()
            })
        }
        Ok(pb::InformingState::NotInformed) => {
            if informed_fields || deferral_fields {
                return Err(Invalid::new(
                    "details",
                    "a person not informed has no other details",
                ));
            }
            Ok(pb::InformingDetails {
                state: d.state,
                ..Default::default()
            })
        }
        _ => Err(Invalid::new(
            "details.state",
            "must be INFORMED, DEFERRED or NOT_INFORMED",
        )),
    }
}

/// A pseudonymous person id (as the broker issues them).
pub fn person_id(field: &'static str, value: &str) -> Valid<String> {
    validate::id(field, value)
}

#[cfg(test)]
mod tests;
