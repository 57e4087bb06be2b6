//! AssignCaseDirector: the case team appoints (or replaces) the
//! casusregisseur from assessment on: an enabled user holding
//! ROLE_CASUSREGISSEUR of the organisation named, which must itself have a
//! legal basis for the dossier; it joins the circle if it is not in it.

use schakel_kit::{auth::Role, validate};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Covered, Outcome, Refusal},
    store,
};

/// Whether `user` is an enabled casusregisseur of `org`.
async fn is_casusregisseur(broker: &Broker, user: &str, org: &str) -> Outcome<bool> {
    let found = broker.inner.directory.user(user).await?;
    Ok(found.is_some_and(|u| {
        !u.disabled && u.organisation_id == org && u.roles.contains(&Role::Casusregisseur)
    }))
}

fn check_phase(covered: &Covered<'_>) -> Outcome<()> {
    let phase = covered.dossier().phase();
    if matches!(phase, pb::Phase::Assessment | pb::Phase::CaseDirection) {
        return Ok(());
    }
    let message = "a casusregisseur is appointed at assessment (or replaced during case direction)";
    Err(Refusal::precondition(covered.scope(), "WRONG_PHASE", message).into())
}

/// AssignCaseDirector.
pub(crate) async fn assign(
    broker: &Broker,
    call: &Call,
    req: pb::AssignCaseDirectorRequest,
) -> Outcome<pb::AssignCaseDirectorResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let user = validate::id("user_id", &req.user_id)?;
    let org = validate::id("organisation_id", &req.organisation_id)?;
    let covered = broker.covered(call, &dossier_id, None).await?;
    check_phase(&covered)?;
    let mut scope = covered.scope();
    (scope.organisation, scope.resource_id) = (org.clone(), user.clone());
    if !is_casusregisseur(broker, &user, &org).await? {
        let message = "no enabled user with the casusregisseur role of that organisation";
        return Err(Refusal::precondition(scope, "NOT_A_CASUSREGISSEUR", message).into());
    }
    let joining = match covered.dossier().in_circle(&org) {
        true => None,
        false => Some(broker.joining(&covered, &org).await?),
    };
    let mut unit = covered.begin(broker).await?;
    if let Some(participant) = &joining {
        store::add_participant(unit.conn(), &dossier_id, participant).await?;
        unit.event(pb::AuditAction::ParticipantAdd, |e| {
            e.organisation_id = org.clone()
        });
    }
    let by = &call.caller.subject;
    store::set_case_director(unit.conn(), &dossier_id, &user, &org, by, call.now).await?;
    unit.event(pb::AuditAction::CaseDirectorAssign, |e| {
        e.organisation_id = org.clone()
    });
    let audit_index = unit.commit(broker, scope).await?;
    let mut loaded = covered.dossier().clone();
    loaded.participants.extend(joining);
    loaded.row.case_director = Some((user, org, call.now, by.clone()));
    let dossier = Some(loaded.to_proto(call.now));
    Ok(pb::AssignCaseDirectorResponse {
        dossier,
        audit_index,
    })
}
