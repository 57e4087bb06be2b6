//! GetDossier: circle, purpose and basis (informing by phase), policy per
//! field, decrypt what is released, audit, reply; and the history of phase
//! and circle changes for the case team.

use std::collections::HashMap;

use schakel_kit::validate;
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Covered, Outcome, policy},
    seal, store,
};

/// GetDossier.
pub(crate) async fn read(
    broker: &Broker,
    call: &Call,
    req: pb::GetDossierRequest,
) -> Outcome<pb::GetDossierResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let purpose = validate::code("purpose", &req.purpose)?;
    let asked = policy::requested(call, &req.fields)?;
    for p in &req.person_ids {
        validate::id("person_ids", p)?;
    }
    let covered = broker.covered(call, &dossier_id, Some(&purpose)).await?;
    let decided = covered.decide_read(&asked);
    let (released, persons_in_scope) = open_released(&covered, &decided.released, &req)?;
    let mut scope = covered.scope();
    scope.person_ids = if decided.released.iter().any(|p| p.starts_with("persons.")) {
        let all = covered.dossier().person_ids().into_iter();
        all.filter(|p| req.person_ids.is_empty() || req.person_ids.contains(p))
            .collect()
    } else {
        persons_in_scope
    };
    let decision = decided.decision();
    scope.released = decided.released;
    scope.withheld = decided.withheld.clone();
    let history = history(broker, &covered).await?;
    let index = broker
        .append(call, scope, (decision, denial_of(decision)))
        .await?;
    Ok(pb::GetDossierResponse {
        dossier: Some(covered.dossier().to_proto(call.now)),
        released,
        withheld: decided.withheld,
        decision: decision as i32,
        policy_version: call.policy.version,
        legal_basis: Some(covered.basis().clone()),
        audit_index: index,
        history,
    })
}

fn denial_of(decision: pb::Decision) -> pb::AccessDenialReason {
    if decision == pb::Decision::Denied {
        pb::AccessDenialReason::PolicyDenied
    } else {
        pb::AccessDenialReason::Unspecified
    }
}

/// The released fields with their (decrypted) contributions, and the
/// persons whose person-level values were shown.
fn open_released(
    covered: &Covered<'_>,
    released: &[String],
    req: &pb::GetDossierRequest,
) -> Outcome<(Vec<pb::ReleasedField>, Vec<String>)> {
    let id = &covered.dossier().row.dossier_id;
    let mut by_path: HashMap<&str, Vec<pb::Contribution>> = HashMap::new();
    let mut persons: Vec<String> = Vec::new();
    for c in covered.contributions() {
        let Some(path) = released.iter().find(|p| **p == c.meta.path) else {
            continue;
        };
        let person = &c.meta.person_id;
        if !person.is_empty() && !req.person_ids.is_empty() && !req.person_ids.contains(person) {
            continue;
        }
        if !req.include_history && !c.meta.superseded_by_contribution_id.is_empty() {
            continue;
        }
        let mut shown = c.meta.clone();
        shown.value = seal::open_value(covered.key(), id, c)?;
        if !person.is_empty() && !persons.contains(person) {
            persons.push(person.clone());
        }
        by_path.entry(path.as_str()).or_default().push(shown);
    }
    let fields = released
        .iter()
        .map(|p| pb::ReleasedField {
            path: p.clone(),
            contributions: by_path.remove(p.as_str()).unwrap_or_default(),
        })
        .collect();
    Ok((fields, persons))
}

/// The dossier's history, for the case team only (they give its reasons).
async fn history(broker: &Broker, covered: &Covered<'_>) -> Outcome<Vec<pb::DossierEvent>> {
    if !covered.member().on_team() {
        return Ok(Vec::new());
    }
    let (id, revision) = (
        &covered.dossier().row.dossier_id,
        covered.dossier().row.revision,
    );
    let sealed = match broker.inner.cache.part(id, revision, |c| c.events.clone()) {
        Some(events) => events,
        None => {
            let mut conn = broker.inner.db.pool().acquire().await?;
            let events = std::sync::Arc::new(store::events(&mut conn, id).await?);
            broker
                .inner
                .cache
                .remember(id, revision, |c| c.events = Some(events.clone()));
            events
        }
    };
    let open = |(event_id, bytes, index): &store::StoredEvent| {
        let mut event = seal::open_event(covered.key(), id, event_id, bytes)?;
        // Events sealed before the outbox carry their index inside.
        if let Some(index) = index {
            event.audit_index = *index;
        }
        Ok(event)
    };
    Ok(sealed.iter().map(open).collect::<anyhow::Result<_>>()?)
}
