//! UpdateInforming and GetInformingStatus: informing the client system, as
//! the legal-basis service records it, through the circle, the legal basis
//! (informing itself not required: these calls establish it) and the policy
//! on `persons.informing` (contribute / read).

use schakel_kit::validate;
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    content::INFORMING_FIELD,
    pipeline::{Call, Outcome, Refusal},
};

impl Broker {
    /// Forwards informing details given with new persons to legal-basis
    /// (which records them in its own audit entries).
    pub(crate) async fn forward_informing(
        &self,
        call: &Call,
        dossier_id: &str,
        people: Vec<(String, Option<pb::InformingDetails>)>,
    ) -> Outcome<()> {
        let mut forwarded = false;
        for (person_id, details) in people {
            if let Some(details) = details.filter(|d| d.state != 0) {
                self.inner
                    .basis
                    .record_informing(pb::RecordInformingRequest {
                        dossier_id: dossier_id.to_owned(),
                        person_id,
                        details: Some(details),
                        on_behalf_of: Some(call.caller.to_actor()),
                        trace_id: schakel_kit::audit::current_trace_id(),
                    })
                    .await?;
                forwarded = true;
            }
        }
        if forwarded {
            self.refresh_informing_review(dossier_id).await?;
        }
        Ok(())
    }
}

/// UpdateInforming.
pub(crate) async fn update(
    broker: &Broker,
    call: &Call,
    req: pb::UpdateInformingRequest,
) -> Outcome<pb::UpdateInformingResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let person = validate::id("person_id", &req.person_id)?;
    let covered = broker.covered(call, &dossier_id, None).await?;
    covered.permit_contribute(std::iter::once(INFORMING_FIELD))?;
    let Some((_, roles)) = covered.dossier().persons.iter().find(|(p, _)| *p == person) else {
        return Err(validate::Invalid::new("person_id", "not a person of this dossier").into());
    };
    let mut scope = covered.scope();
    scope.person_ids = vec![person.clone()];
    let deferring = req
        .details
        .as_ref()
        .is_some_and(|d| d.state == pb::InformingState::Deferred as i32);
    if deferring && roles.iter().any(|r| r == "slachtoffer") {
        let message = "a slachtoffer is informed, never deferred: only informing a pleger may wait";
        return Err(Refusal::precondition(scope, "VICTIM_NOT_DEFERRABLE", message).into());
    }
    // The decision first (fail closed), then the change at legal-basis,
    // which records it in its own entry.
    let audit_index = broker.record(call, scope).await?;
    let record = broker
        .inner
        .basis
        .record_informing(pb::RecordInformingRequest {
            dossier_id,
            person_id: person,
            details: req.details,
            on_behalf_of: Some(call.caller.to_actor()),
            trace_id: schakel_kit::audit::current_trace_id(),
        })
        .await?;
    broker.refresh_informing_review(&record.dossier_id).await?;
    Ok(pb::UpdateInformingResponse {
        record: Some(record),
        audit_index,
    })
}

/// GetInformingStatus.
pub(crate) async fn status(
    broker: &Broker,
    call: &Call,
    req: pb::GetInformingStatusRequest,
) -> Outcome<pb::GetInformingStatusResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let purpose = validate::code("purpose", &req.purpose)?;
    let covered = broker.covered(call, &dossier_id, Some(&purpose)).await?;
    covered.permit_read(INFORMING_FIELD)?;
    let records = broker
        .inner
        .basis
        .informing_records(dossier_id, req.include_history)
        .await?;
    let mut scope = covered.scope();
    scope.person_ids = covered.dossier().person_ids();
    scope.released = vec![INFORMING_FIELD.to_owned()];
    let audit_index = broker.record(call, scope).await?;
    Ok(pb::GetInformingStatusResponse {
        records,
        policy_version: call.policy.version,
        legal_basis: Some(covered.basis().clone()),
        audit_index,
    })
}
