//! Contribute (and the contributions of an answer): values for catalogue
//! fields, all or nothing, each allowed by the policy in the current phase,
//! under a legal basis with the client system informed as the phase needs.

use schakel_kit::validate::{self, Invalid};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    content::{INFORMING_FIELD, contribution_by, within_bounds},
    pipeline::{Call, Covered, Outcome, Refusal, replay::Kept, unit::Unit},
    store, values,
};

/// Checks contributions against the catalogue (1-100; none when answering
/// only declines).
pub(crate) fn check_inputs(
    call: &Call,
    inputs: &[pb::ContributionInput],
    may_be_empty: bool,
) -> Outcome<()> {
    if (inputs.is_empty() && !may_be_empty) || inputs.len() > 100 {
        return Err(Invalid::new("contributions", "1-100 contributions").into());
    }
    for (i, c) in inputs.iter().enumerate() {
        let place = |what: &str| format!("contributions[{i}].{what}");
        let field = call.policy.fields.iter().find(|f| f.path == c.path);
        let Some(field) = field.filter(|f| f.path != INFORMING_FIELD) else {
            let message = format!("{} is not a field to contribute to", c.path);
            return Err(Invalid::at(place("path"), message).into());
        };
        if field.per_person == c.person_id.is_empty() {
            let message = if field.per_person {
                "this field is about one person: name the person"
            } else {
                "this field is about the dossier: no person"
            };
            return Err(Invalid::at(place("person_id"), message).into());
        }
        match &c.value {
            Some(v) => values::check(place("value"), v, field)?,
            None if !c.supersedes_contribution_id.is_empty() => {}
            None => {
                return Err(Invalid::at(
                    place("value"),
                    "a value is required (or supersedes, to retract)",
                )
                .into());
            }
        }
        if !c.supersedes_contribution_id.is_empty() {
            validate::id(
                "contributions.supersedes_contribution_id",
                &c.supersedes_contribution_id,
            )?;
        }
    }
    Ok(())
}

/// The gates of contributions on a covered dossier: persons of the dossier,
/// the policy, the dossier's bounds.
pub(crate) fn permit(covered: &Covered<'_>, inputs: &[pb::ContributionInput]) -> Outcome<()> {
    let dossier = covered.dossier();
    if let Some(c) = inputs.iter().find(|c| {
        !c.person_id.is_empty() && !dossier.persons.iter().any(|(p, _)| *p == c.person_id)
    }) {
        return Err(Invalid::new(
            "contributions.person_id",
            format!("{} is not a person of this dossier", c.person_id),
        )
        .into());
    }
    covered.permit_contribute(inputs.iter().map(|c| c.path.as_str()))?;
    let count = covered.contributions().len() + inputs.len();
    within_bounds(|| covered.scope(), dossier.persons.len(), count)
}

/// Stores contributions in `unit`; `request_id` names the request they answer.
pub(crate) async fn write(
    unit: &mut Unit<'_>,
    covered: &Covered<'_>,
    inputs: &[pb::ContributionInput],
    request_id: &str,
) -> Outcome<Vec<pb::Contribution>> {
    let (call, id) = (covered.call(), &covered.dossier().row.dossier_id);
    let mut saved = Vec::with_capacity(inputs.len());
    for c in inputs {
        let meta = pb::Contribution {
            supersedes_contribution_id: c.supersedes_contribution_id.clone(),
            information_request_id: request_id.to_owned(),
            ..contribution_by(call, &c.path, &c.person_id, covered.purpose())
        };
        unit.store_contribution(id, &meta, c.value.as_ref()).await?;
        if !c.supersedes_contribution_id.is_empty()
            && !store::supersede(unit.conn(), id, &c.supersedes_contribution_id, &meta).await?
        {
            let message = "only a current contribution of your own organisation to the same field and person can be corrected";
            return Err(Refusal::precondition(covered.scope(), "NOT_SUPERSEDABLE", message).into());
        }
        saved.push(pb::Contribution {
            value: c.value.clone(),
            ..meta
        });
    }
    Ok(saved)
}

/// What contributions concern, for their audit entry.
pub(crate) fn concerned(scope: &mut crate::pipeline::Scope, saved: &[pb::Contribution]) {
    scope.contributed = saved.iter().map(|c| c.path.clone()).collect();
    scope.person_ids = saved
        .iter()
        .filter(|c| !c.person_id.is_empty())
        .map(|c| c.person_id.clone())
        .collect();
}

/// Contribute.
pub(crate) async fn contribute(
    broker: &Broker,
    call: &Call,
    req: pb::ContributeRequest,
) -> Outcome<pb::ContributeResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let purpose = validate::code("purpose", &req.purpose)?;
    check_inputs(call, &req.contributions, false)?;
    let covered = broker.covered(call, &dossier_id, Some(&purpose)).await?;
    permit(&covered, &req.contributions)?;
    let mut scope = covered.scope();
    let replay = match covered.kept(broker, &req.idempotency_key, &req).await? {
        Kept::Replayed(reply) => return broker.replayed(call, scope, reply).await,
        Kept::Fresh(replay) => replay,
    };
    let mut unit = covered.begin(broker).await?;
    let saved = write(&mut unit, &covered, &req.contributions, "").await?;
    concerned(&mut scope, &saved);
    let mut reply = pb::ContributeResponse {
        contributions: saved,
        policy_version: call.policy.version,
        legal_basis: Some(covered.basis().clone()),
        audit_index: 0,
    };
    unit.keep(call, &dossier_id, replay, &reply).await?;
    reply.audit_index = unit.commit(broker, scope).await?;
    Ok(reply)
}
