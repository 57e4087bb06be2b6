//! The `CheckBasis` decision: pure, deterministic, and exhaustively tested.
//!
//! A basis exists when an approved agreement version, in force at the moment
//! checked, names the organisation as a party, covers the dossier's district,
//! lists the processing purpose, is not revoked, covers the dossier's track and
//! forms of violence, has room under its dossier cap (for a new dossier), and,
//! beyond triage, the client system has been informed.
//!
//! Exactly one reason is reported on denial. The checks run in a fixed order
//! (party, district, purpose, revoked, not yet valid, expired, scope, dossier
//! cap, informing); among several candidate agreements the reason reported is
//! that of the candidate that passed the most checks.

use std::collections::HashMap;

/// Seconds since the Unix epoch.
pub type Time = i64;

/// The purpose for which informing the client system is not yet required.
pub const TRIAGE: &str = "triage";

/// A spoor (track).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    /// Spoor 1: consult or referral.
    Consult,
    /// Spoor 2: case support.
    CaseSupport,
    /// Spoor 3: chain approach.
    ChainApproach,
}

/// Limits on what an agreement covers (empty lists and 0 mean no limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Most dossiers registered under the agreement (0 = no cap).
    pub max_dossiers: u32,
    /// Tracks covered.
    pub tracks: Vec<Track>,
    /// Forms of violence covered; a dossier is covered when one of its forms is listed.
    pub violence_forms: Vec<String>,
}

/// One approved version of an agreement, as the checks need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementVersion {
    /// Agreement id.
    pub agreement_id: String,
    /// Version number (amendments are new versions).
    pub version: u32,
    /// Organisation ids of the parties.
    pub parties: Vec<String>,
    /// Judicial districts covered.
    pub districts: Vec<String>,
    /// Processing purposes allowed, e.g. `triage`, `case_building`.
    pub purposes: Vec<String>,
    /// Start of validity (inclusive).
    pub valid_from: Time,
    /// End of validity (exclusive): expiry is exact at this second.
    pub valid_until: Time,
    /// When the agreement was revoked, if it was.
    pub revoked_at: Option<Time>,
    /// Scope limits.
    pub scope: Scope,
    /// Dossiers already counted against the cap (over all versions).
    pub dossiers_counted: u32,
}

/// Whether a person of the client system was told about the chain approach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Informing {
    /// Informed.
    Informed,
    /// Informing deferred for safety (allowed for plegers only).
    Deferred,
}

/// What the check needs to know about a dossier. Ids and codes only.
#[derive(Clone, Debug, Default)]
pub struct Dossier {
    /// Judicial district.
    pub district: String,
    /// Track.
    pub track: Option<Track>,
    /// Forms of violence.
    pub violence_forms: Vec<String>,
    /// Pseudonymous ids of the victims (children included): each must be informed.
    pub victims: Vec<String>,
    /// Pseudonymous ids of the perpetrators: each informed or deferred.
    pub perpetrators: Vec<String>,
    /// The latest informing record per person.
    pub informing: HashMap<String, Informing>,
    /// Whether the dossier already counts against a cap (registered before).
    pub already_counted: bool,
}

/// A question to answer.
#[derive(Clone, Debug)]
pub struct Question<'a> {
    /// The organisation that wants to process.
    pub organisation_id: &'a str,
    /// Processing purpose code.
    pub purpose: &'a str,
    /// The dossier.
    pub dossier: &'a Dossier,
    /// The moment checked.
    pub at: Time,
    /// Whether a new dossier would be counted against the cap.
    pub new_dossier: bool,
    /// Whether the client system must have been informed (see
    /// [`informing_required`]).
    pub informing_required: bool,
}

/// Whether informing is checked: as the caller says, or, when it does not
/// say, for every purpose but triage.
pub fn informing_required(
    requirement: schakel_proto::v1::InformingRequirement,
    purpose: &str,
) -> bool {
    use schakel_proto::v1::InformingRequirement as R;
    match requirement {
        R::Required => true,
        R::NotRequired => false,
        R::Unspecified => purpose != TRIAGE,
    }
}

/// Why there is no basis: exactly one reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Denial {
    /// No approved agreement exists at all.
    NoAgreement,
    /// The organisation is not a party to any approved agreement.
    NotAParty,
    /// The purpose is not among the agreement's purposes.
    PurposeNotCovered,
    /// Validity has not started.
    NotYetValid,
    /// Validity has ended.
    Expired,
    /// The agreement was revoked.
    Revoked,
    /// The dossier's district is not covered.
    DistrictNotCovered,
    /// Track or forms of violence outside the scope.
    ScopeNotCovered,
    /// The dossier cap is reached (new dossiers only).
    DossierCapReached,
    /// Beyond triage, a victim is not informed or a perpetrator neither informed nor deferred.
    ClientNotInformed,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Covered by this agreement version, valid until then.
    Allowed {
        /// Agreement id.
        agreement_id: String,
        /// Version.
        version: u32,
        /// End of validity: cache the answer no longer than this.
        valid_until: Time,
    },
    /// Not covered.
    Denied {
        /// The one reason.
        reason: Denial,
        /// The agreement the reason is about (none for NoAgreement and NotAParty).
        agreement: Option<(String, u32)>,
        /// For ClientNotInformed: who still has to be informed (or deferred).
        uninformed: Vec<String>,
    },
}

/// The order the checks run in; a candidate's progress is how many it passed.
const ORDER: [Denial; 9] = [
    Denial::NotAParty,
    Denial::DistrictNotCovered,
    Denial::PurposeNotCovered,
    Denial::Revoked,
    Denial::NotYetValid,
    Denial::Expired,
    Denial::ScopeNotCovered,
    Denial::DossierCapReached,
    Denial::ClientNotInformed,
];

fn scope_covers(scope: &Scope, dossier: &Dossier) -> bool {
    let track = scope.tracks.is_empty() || dossier.track.is_some_and(|t| scope.tracks.contains(&t));
    let forms = scope.violence_forms.is_empty()
        || dossier
            .violence_forms
            .iter()
            .any(|f| scope.violence_forms.contains(f));
    track && forms
}

/// Who still has to be informed: victims not informed, perpetrators neither
/// informed nor deferred.
fn uninformed(dossier: &Dossier) -> Vec<String> {
    let status = |p: &String| dossier.informing.get(p).copied();
    let victims = dossier
        .victims
        .iter()
        .filter(|p| status(p) != Some(Informing::Informed));
    let perpetrators = dossier.perpetrators.iter().filter(|p| status(p).is_none());
    let mut missing: Vec<String> = victims.chain(perpetrators).cloned().collect();
    missing.sort();
    missing.dedup();
    missing
}

/// The first check `version` fails for `question`, or `None` when it covers it.
fn first_failure(version: &AgreementVersion, q: &Question<'_>) -> Option<Denial> {
    ORDER.into_iter().find(|check| match check {
        Denial::NotAParty => !version.parties.iter().any(|p| p == q.organisation_id),
        Denial::DistrictNotCovered => !version.districts.contains(&q.dossier.district),
        Denial::PurposeNotCovered => !version.purposes.iter().any(|p| p == q.purpose),
        Denial::Revoked => version.revoked_at.is_some_and(|r| r <= q.at),
        Denial::NotYetValid => q.at < version.valid_from,
        Denial::Expired => q.at >= version.valid_until,
        Denial::ScopeNotCovered => !scope_covers(&version.scope, q.dossier),
        Denial::DossierCapReached => {
            q.new_dossier
                && !q.dossier.already_counted
                && version.scope.max_dossiers > 0
                && version.dossiers_counted >= version.scope.max_dossiers
        }
        Denial::ClientNotInformed => q.informing_required && !uninformed(q.dossier).is_empty(),
        Denial::NoAgreement => false,
    })
}

fn progress(failure: Option<Denial>) -> usize {
    failure.map_or(ORDER.len(), |f| {
        ORDER.iter().position(|c| *c == f).unwrap_or(0)
    })
}

/// Answers `question` against the approved agreement versions in force.
pub fn check(versions: &[AgreementVersion], question: &Question<'_>) -> Answer {
    if versions.is_empty() {
        return Answer::Denied {
            reason: Denial::NoAgreement,
            agreement: None,
            uninformed: vec![],
        };
    }
    // The best candidate: the one that passed the most checks; among those that
    // pass all, the one valid longest (ties: by id and version, for determinism).
    let best = versions
        .iter()
        .map(|v| (v, first_failure(v, question)))
        .max_by(|(a, fa), (b, fb)| {
            progress(*fa)
                .cmp(&progress(*fb))
                .then(a.valid_until.cmp(&b.valid_until))
                .then(b.agreement_id.cmp(&a.agreement_id))
                .then(a.version.cmp(&b.version))
        });
    let Some((version, failure)) = best else {
        return Answer::Denied {
            reason: Denial::NoAgreement,
            agreement: None,
            uninformed: vec![],
        };
    };
    match failure {
        None => Answer::Allowed {
            agreement_id: version.agreement_id.clone(),
            version: version.version,
            valid_until: version.valid_until,
        },
        Some(Denial::NotAParty) => Answer::Denied {
            reason: Denial::NotAParty,
            agreement: None,
            uninformed: vec![],
        },
        Some(reason) => Answer::Denied {
            reason,
            agreement: Some((version.agreement_id.clone(), version.version)),
            uninformed: if reason == Denial::ClientNotInformed {
                uninformed(question.dossier)
            } else {
                vec![]
            },
        },
    }
}

#[cfg(test)]
mod tests;
