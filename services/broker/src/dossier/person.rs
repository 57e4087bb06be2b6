//! AddPerson: a person joins the client system, with their relations, as
//! contributions under the policy and a legal basis (informing by phase).

use std::collections::HashMap;

use schakel_kit::validate::{self, Invalid};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    content::{NewPerson, within_bounds},
    form,
    lookup::LookupKey,
    pipeline::{Call, Covered, Loaded, Outcome, replay::Kept},
};

/// "" names the new person in relations; other values existing persons.
const NEW: &str = "\u{0}new";

/// The new person's form (person and relations) and its client references.
fn person_form(
    loaded: &Loaded,
    person_id: &str,
    req: &pb::AddPersonRequest,
) -> (pb::RegistrationForm, HashMap<String, String>) {
    let mut refs: HashMap<String, String> = loaded
        .persons
        .iter()
        .map(|(p, _)| (p.clone(), p.clone()))
        .collect();
    refs.insert(NEW.into(), person_id.to_owned());
    let mut person = req.person.clone().unwrap_or_default();
    person.client_ref = NEW.into();
    let side = |s: &str| {
        if s.is_empty() {
            NEW.to_owned()
        } else {
            s.to_owned()
        }
    };
    let relations = req
        .relations
        .iter()
        .map(|r| pb::PersonRelation {
            from_person: side(&r.from_person),
            to_person: side(&r.to_person),
            kind: r.kind.clone(),
        })
        .collect();
    (
        pb::RegistrationForm {
            persons: vec![person],
            relations,
            ..Default::default()
        },
        refs,
    )
}

/// The new person's values, checked against the catalogue, the policy and
/// the dossier's bounds.
fn values_of(
    covered: &Covered<'_>,
    person_id: &str,
    req: &pb::AddPersonRequest,
) -> Outcome<Vec<(String, String, pb::FieldValue)>> {
    let (person_form, refs) = person_form(covered.dossier(), person_id, req);
    let fields = &covered.call().policy.fields;
    let values = form::checked_values(
        fields,
        "person",
        form::form_values(&person_form, &refs)?,
        &refs,
    )?;
    covered.permit_contribute(values.iter().map(|(p, ..)| p.as_str()))?;
    let count = covered.contributions().len() + values.len();
    within_bounds(
        || covered.scope(),
        covered.dossier().persons.len() + 1,
        count,
    )?;
    Ok(values)
}

/// AddPerson.
pub(crate) async fn add_person(
    broker: &Broker,
    call: &Call,
    req: pb::AddPersonRequest,
) -> Outcome<pb::AddPersonResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let purpose = validate::code("purpose", &req.purpose)?;
    let input = req
        .person
        .clone()
        .ok_or_else(|| Invalid::new("person", "is required"))?;
    let roles = form::role_codes(&form::person_roles("person.roles".into(), &input.roles)?);
    let covered = broker.covered(call, &dossier_id, Some(&purpose)).await?;
    let person_id = uuid::Uuid::new_v4().to_string();
    let values = values_of(&covered, &person_id, &req)?;
    let mut scope = covered.scope();
    let replay = match covered.kept(broker, &req.idempotency_key, &req).await? {
        Kept::Replayed(reply) => return broker.replayed(call, scope, reply).await,
        Kept::Fresh(replay) => replay,
    };
    let mut unit = covered.begin(broker).await?;
    let lookup = LookupKey::derive(broker.inner.keys.current());
    let person = NewPerson {
        person_id: &person_id,
        roles: &roles,
        input: &input,
    };
    unit.store_person(&lookup, &dossier_id, person, call.now)
        .await?;
    scope.contributed = unit
        .store_values(call, &dossier_id, covered.purpose(), &values)
        .await?;
    scope.person_ids = vec![person_id.clone()];
    let mut loaded = covered.dossier().clone();
    loaded.persons.push((person_id.clone(), roles));
    let mut reply = pb::AddPersonResponse {
        person_id: person_id.clone(),
        dossier: Some(loaded.to_proto(call.now)),
        policy_version: call.policy.version,
        legal_basis: Some(covered.basis().clone()),
        audit_index: 0,
    };
    unit.keep(call, &dossier_id, replay, &reply).await?;
    reply.audit_index = unit.commit(broker, scope).await?;
    let informing = vec![(person_id, input.informing)];
    broker
        .forward_informing(call, &dossier_id, informing)
        .await?;
    Ok(reply)
}
