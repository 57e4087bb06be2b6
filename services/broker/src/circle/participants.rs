//! AddParticipant and RemoveParticipant: the case team changes the
//! need-to-know circle, under a legal basis. An organisation joins only when
//! it has a legal basis for the dossier itself; the registrant's and the
//! case director's organisations stay.

use schakel_kit::{
    time::to_timestamp,
    validate::{self, Invalid},
};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Covered, Outcome, Refusal, basis},
    store,
};

impl Broker {
    /// `org` (of `partner_type`) as a participant, when an agreement covers
    /// it for this dossier in its phase; NOT_COVERED otherwise.
    pub(crate) async fn joining(
        &self,
        covered: &Covered<'_>,
        org: &str,
    ) -> Outcome<pb::DossierParticipant> {
        let partner_type = self
            .inner
            .directory
            .partner_type(org)
            .await?
            .ok_or_else(|| Invalid::new("organisation_id", "no such organisation"))?;
        let question = basis::Question {
            organisation_id: org,
            purpose: covered.purpose(),
            dossier: covered.dossier(),
            violence_forms: basis::violence_forms(
                covered.key(),
                covered.dossier(),
                covered.contributions(),
            )?,
            informing: pb::InformingRequirement::NotRequired,
        };
        let answer = self.ask_basis(&question, false).await?;
        if !answer.allowed {
            let reason = basis::denial_name(&answer);
            let mut scope = covered.scope();
            scope.organisation = org.to_owned();
            let message = "the organisation has no legal basis for this dossier";
            return Err(Refusal::precondition(scope, "NOT_COVERED", message)
                .with("basis_denial_reason", reason)
                .into());
        }
        Ok(pb::DossierParticipant {
            organisation_id: org.to_owned(),
            partner_type,
            registrant: false,
            added_by: covered.call().caller.subject.clone(),
            added_at: Some(to_timestamp(covered.call().now)),
        })
    }
}

/// AddParticipant.
pub(crate) async fn add(
    broker: &Broker,
    call: &Call,
    req: pb::AddParticipantRequest,
) -> Outcome<pb::AddParticipantResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let org = validate::id("organisation_id", &req.organisation_id)?;
    let covered = broker.covered(call, &dossier_id, None).await?;
    if covered.dossier().in_circle(&org) {
        return Err(
            tonic::Status::already_exists("the organisation is already in the circle").into(),
        );
    }
    let participant = broker.joining(&covered, &org).await?;
    let mut unit = covered.begin(broker).await?;
    if !store::add_participant(unit.conn(), &dossier_id, &participant).await? {
        return Err(tonic::Status::aborted("the circle changed meanwhile; retry").into());
    }
    unit.event(pb::AuditAction::ParticipantAdd, |e| {
        e.organisation_id = org.clone()
    });
    let mut scope = covered.scope();
    scope.organisation = org;
    let audit_index = unit.commit(broker, scope).await?;
    let mut loaded = covered.dossier().clone();
    loaded.participants.push(participant);
    Ok(pb::AddParticipantResponse {
        dossier: Some(loaded.to_proto(call.now)),
        audit_index,
    })
}

/// RemoveParticipant.
pub(crate) async fn remove(
    broker: &Broker,
    call: &Call,
    req: pb::RemoveParticipantRequest,
) -> Outcome<pb::RemoveParticipantResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let org = validate::id("organisation_id", &req.organisation_id)?;
    let reason = crate::dossier::advance::reason(&req.reason)?;
    let covered = broker.covered(call, &dossier_id, None).await?;
    let mut scope = covered.scope();
    scope.organisation = org.clone();
    let row = &covered.dossier().row;
    let directs = row
        .case_director
        .as_ref()
        .is_some_and(|(_, director_org, _, _)| *director_org == org);
    if directs || row.registering_org == org || !covered.dossier().in_circle(&org) {
        let message = "not in the circle, or the registering or the case director's organisation";
        return Err(Refusal::precondition(scope, "NOT_REMOVABLE", message).into());
    }
    let mut unit = covered.begin(broker).await?;
    if !store::remove_participant(unit.conn(), &dossier_id, &org).await? {
        return Err(
            Refusal::precondition(scope, "NOT_REMOVABLE", "the circle changed meanwhile").into(),
        );
    }
    unit.event(pb::AuditAction::ParticipantRemove, |e| {
        e.organisation_id = org.clone();
        e.reason = reason;
    });
    let audit_index = unit.commit(broker, scope).await?;
    let mut loaded = covered.dossier().clone();
    loaded.participants.retain(|p| p.organisation_id != org);
    Ok(pb::RemoveParticipantResponse {
        dossier: Some(loaded.to_proto(call.now)),
        audit_index,
    })
}
