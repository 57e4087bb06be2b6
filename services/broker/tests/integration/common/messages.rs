//! Requests the tests send, built from what varies between them: a phase
//! step, circle changes, contributions, questions and their answers,
//! informing, erasure and look-ups.

use super::*;

/// A request to move a dossier from `from` to `to` for `reason`: track
/// chain approach into case_direction, no track otherwise; closing from
/// follow-up (before its check date) with GOALS_CONFIRMED.
pub fn step(
    dossier_id: &str,
    from: pb::Phase,
    to: pb::Phase,
    reason: &str,
) -> pb::AdvancePhaseRequest {
    let track = if to == pb::Phase::CaseDirection {
        pb::Track::ChainApproach
    } else {
        pb::Track::Unspecified
    };
    pb::AdvancePhaseRequest {
        dossier_id: dossier_id.into(),
        expected_phase: from as i32,
        target_phase: to as i32,
        track: track as i32,
        reason: reason.into(),
        reason_code: if (from, to) == (pb::Phase::FollowUp, pb::Phase::Closed) {
            pb::PhaseReason::GoalsConfirmed as i32
        } else {
            pb::PhaseReason::Unspecified as i32
        },
    }
}

impl TestApp {
    /// A request to add `partner`'s organisation to a dossier's circle.
    pub fn joins(&self, dossier_id: &str, partner: &str) -> pb::AddParticipantRequest {
        pb::AddParticipantRequest {
            dossier_id: dossier_id.into(),
            organisation_id: self.orgs[partner].clone(),
        }
    }

    /// A request to remove `partner`'s organisation from a dossier's circle
    /// for `reason`.
    pub fn leaves(
        &self,
        dossier_id: &str,
        partner: &str,
        reason: &str,
    ) -> pb::RemoveParticipantRequest {
        pb::RemoveParticipantRequest {
            dossier_id: dossier_id.into(),
            organisation_id: self.orgs[partner].clone(),
            reason: reason.into(),
        }
    }
}

/// A request to appoint `user_id` of `organisation_id` as a dossier's case
/// director.
pub fn appoint(
    dossier_id: &str,
    user_id: &str,
    organisation_id: &str,
) -> pb::AssignCaseDirectorRequest {
    pb::AssignCaseDirectorRequest {
        dossier_id: dossier_id.into(),
        user_id: user_id.into(),
        organisation_id: organisation_id.into(),
    }
}

/// A text value.
pub fn text_value(t: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(pb::field_value::Kind::Text(t.into())),
    }
}

/// A contribution of `value` to the field `path` (no person, superseding
/// nothing).
pub fn input(path: &str, value: pb::FieldValue) -> pb::ContributionInput {
    pb::ContributionInput {
        path: path.into(),
        value: Some(value),
        ..Default::default()
    }
}

/// A request to contribute `contributions` to a dossier for `purpose`, under
/// the idempotency key `key` ("" for none).
pub fn contribution(
    dossier_id: &str,
    purpose: &str,
    contributions: Vec<pb::ContributionInput>,
    key: &str,
) -> pb::ContributeRequest {
    pb::ContributeRequest {
        dossier_id: dossier_id.into(),
        purpose: purpose.into(),
        contributions,
        idempotency_key: key.into(),
    }
}

/// A request to add a family member (role familie, no relations) to a
/// dossier for triage, under the idempotency key `key` ("" for none).
pub fn relative(dossier_id: &str, given: &str, family: &str, key: &str) -> pb::AddPersonRequest {
    pb::AddPersonRequest {
        dossier_id: dossier_id.into(),
        purpose: "triage".into(),
        person: Some(pb::ClientPersonInput {
            roles: vec![pb::PersonRole::Familie as i32],
            given_name: given.into(),
            family_name: family.into(),
            ..Default::default()
        }),
        relations: vec![],
        idempotency_key: key.into(),
    }
}

/// A request to read the information request `id`.
pub fn question(id: &str) -> pb::GetInformationRequestRequest {
    pb::GetInformationRequestRequest {
        information_request_id: id.into(),
    }
}

/// An answer to the information request `id`: `contributions` and
/// `declined` fields, no note, no idempotency key.
pub fn answer(
    id: &str,
    contributions: Vec<pb::ContributionInput>,
    declined: Vec<pb::DeclinedField>,
) -> pb::AnswerInformationRequestRequest {
    pb::AnswerInformationRequestRequest {
        information_request_id: id.into(),
        contributions,
        declined_fields: declined,
        note: String::new(),
        idempotency_key: String::new(),
    }
}

/// An asked field not answered, for `reason`.
pub fn declined(path: &str, reason: pb::InformationRequestDeclineReason) -> pb::DeclinedField {
    pb::DeclinedField {
        path: path.into(),
        reason: reason as i32,
    }
}

/// A request to decline the information request `id` for `reason`.
pub fn decline(
    id: &str,
    reason: pb::InformationRequestDeclineReason,
    explanation: &str,
) -> pb::DeclineInformationRequestRequest {
    pb::DeclineInformationRequestRequest {
        information_request_id: id.into(),
        reason: reason as i32,
        explanation: explanation.into(),
    }
}

/// A request to cancel the information request `id`.
pub fn cancel(id: &str, explanation: &str) -> pb::CancelInformationRequestRequest {
    pb::CancelInformationRequestRequest {
        information_request_id: id.into(),
        explanation: explanation.into(),
    }
}

/// A request to list the caller's organisation's information requests in
/// `mailbox` (inbox or outbox), unfiltered.
pub fn mailbox(mailbox: pb::InformationRequestBox) -> pb::ListInformationRequestsRequest {
    pb::ListInformationRequestsRequest {
        r#box: mailbox as i32,
        ..Default::default()
    }
}

/// Informed at T0, by `method`.
pub fn informed(method: pb::InformingMethod) -> pb::InformingDetails {
    pb::InformingDetails {
        state: pb::InformingState::Informed as i32,
        informed_at: Some(to_timestamp(T0)),
        method: method as i32,
        ..Default::default()
    }
}

/// A request to record `details` of informing a person of a dossier.
pub fn informing(
    dossier_id: &str,
    person_id: &str,
    details: pb::InformingDetails,
) -> pb::UpdateInformingRequest {
    pb::UpdateInformingRequest {
        dossier_id: dossier_id.into(),
        person_id: person_id.into(),
        details: Some(details),
    }
}

/// A request to read a dossier's informing records for `purpose`.
pub fn informing_status(
    dossier_id: &str,
    purpose: &str,
    include_history: bool,
) -> pb::GetInformingStatusRequest {
    pb::GetInformingStatusRequest {
        dossier_id: dossier_id.into(),
        purpose: purpose.into(),
        include_history,
    }
}

/// A request to erase a dossier for `reason` under the privacy officer's
/// `reference`.
pub fn erase(
    dossier_id: &str,
    reason: pb::ErasureReason,
    reference: &str,
) -> pb::EraseDossierRequest {
    pb::EraseDossierRequest {
        dossier_id: dossier_id.into(),
        reason: reason as i32,
        reference: reference.into(),
    }
}

/// A data-subject look-up by national register number.
pub fn by_number(n: &str) -> pb::LookupDataSubjectRequest {
    pb::LookupDataSubjectRequest {
        subject: Some(pb::lookup_data_subject_request::Subject::NationalNumber(
            n.into(),
        )),
        request_reference: "DSR-2026-17".into(),
    }
}

/// The seeded family's registration with Marie (the victim) not informed.
pub fn uninformed(key: &str) -> pb::RegisterDossierRequest {
    let mut request = registration(key);
    request.form.as_mut().unwrap().persons[0].informing = None;
    request
}
