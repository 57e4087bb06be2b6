//! RegisterDossier: the aanmelding, under purpose "triage". The one change
//! no dossier gate can cover (the dossier does not exist yet): its own
//! checks are the role class, the catalogue, the policy for contributing in
//! registration, and CheckBasis counting the dossier; a retry passes the
//! circle and basis gates of the dossier it registered.

use std::collections::HashMap;

use schakel_kit::{
    time::to_timestamp,
    validate::{self, Invalid},
};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    content::{MAX_PERSONS, NewPerson, within_bounds},
    form,
    lookup::LookupKey,
    pipeline::{
        Call, Loaded, Outcome, Scope, basis, policy,
        replay::{self, Kept},
        unit::Unit,
    },
    store,
};

/// A registration form, parsed and checked.
struct Registration {
    district: String,
    /// (person id, role codes) per person of the form, in form order.
    people: Vec<(String, Vec<String>)>,
    refs: HashMap<String, String>,
    values: Vec<(String, String, pb::FieldValue)>,
}

/// The persons of a form: client reference -> new person id, and (id, role
/// codes) per person in form order.
type People = (HashMap<String, String>, Vec<(String, Vec<String>)>);

fn people(form: &pb::RegistrationForm) -> Outcome<People> {
    let (mut refs, mut people) = (HashMap::new(), Vec::new());
    for (i, p) in form.persons.iter().enumerate() {
        let roles = form::person_roles(format!("form.persons[{i}].roles"), &p.roles)?;
        if p.client_ref.is_empty() || p.client_ref.len() > 64 || refs.contains_key(&p.client_ref) {
            let message = "a unique reference of 1-64 characters is required";
            return Err(Invalid::at(format!("form.persons[{i}].client_ref"), message).into());
        }
        let id = uuid::Uuid::new_v4().to_string();
        refs.insert(p.client_ref.clone(), id.clone());
        people.push((id, form::role_codes(&roles)));
    }
    Ok((refs, people))
}

fn parse(call: &Call, req: &pb::RegisterDossierRequest) -> Outcome<Registration> {
    let district = validate::region("district", &req.district)?;
    let tracks = [
        pb::Track::Consult,
        pb::Track::CaseSupport,
        pb::Track::ChainApproach,
    ];
    if !pb::Track::try_from(req.requested_track).is_ok_and(|t| tracks.contains(&t)) {
        return Err(Invalid::new("requested_track", "spoor 1, 2 or 3 is required").into());
    }
    if replay::key(&req.idempotency_key)?.is_empty() {
        return Err(Invalid::new("idempotency_key", "1-64 characters are required").into());
    }
    let form = req.form.clone().unwrap_or_default();
    if form.persons.is_empty() || form.persons.len() > MAX_PERSONS {
        let message = format!("1-{MAX_PERSONS} persons, at least one a slachtoffer");
        return Err(Invalid::new("form.persons", message).into());
    }
    let (refs, people) = people(&form)?;
    if !people
        .iter()
        .any(|(_, roles)| roles.iter().any(|r| r == "slachtoffer"))
    {
        return Err(Invalid::new("form.persons", "at least one slachtoffer is required").into());
    }
    for code in form.violence_forms.iter().chain(&form.violence_types) {
        validate::code("form.violence_forms", code)?;
    }
    let values = form::form_values(&form, &refs)?;
    let values = form::checked_values(&call.policy.fields, "form", values, &refs)?;
    if let Some((path, ..)) = values
        .iter()
        .find(|(p, ..)| p == crate::content::INFORMING_FIELD)
    {
        return Err(Invalid::new(
            "form",
            format!("{path} is recorded through UpdateInforming"),
        )
        .into());
    }
    Ok(Registration {
        district,
        people,
        refs,
        values,
    })
}

/// The policy lets the caller contribute every form field in registration,
/// and an agreement covers registering the dossier (counted against its cap).
async fn admitted(
    broker: &Broker,
    call: &Call,
    new: &New<'_>,
    scope: &Scope,
) -> Outcome<pb::LegalBasisRef> {
    let roles = crate::pipeline::circle::roles_for(call, None);
    let paths = new.registration.values.iter().map(|(p, ..)| p.as_str());
    policy::permit_contribute(call, &roles, scope.phase, paths, || scope.clone())?;
    let question = basis::Question {
        organisation_id: &call.caller.organisation_id,
        purpose: "triage",
        dossier: &new.loaded,
        violence_forms: new.form.violence_forms.clone(),
        informing: pb::InformingRequirement::NotRequired,
    };
    let answer = broker.ask_basis(&question, true).await?;
    basis::allowed_basis(answer, scope.clone())
}

/// A dossier being registered.
struct New<'a> {
    registration: Registration,
    form: &'a pb::RegistrationForm,
    loaded: Loaded,
}

/// Stores the dossier, its circle, persons and form values; the paths written.
async fn store_new(
    broker: &Broker,
    unit: &mut Unit<'_>,
    call: &Call,
    new: &New<'_>,
    key: &str,
) -> Outcome<Vec<String>> {
    let id = &new.loaded.row.dossier_id;
    store::insert_dossier(unit.conn(), &new.loaded.row, key).await?;
    store::add_participant(unit.conn(), id, &new.loaded.participants[0]).await?;
    let lookup = LookupKey::derive(broker.inner.keys.current());
    for ((person_id, roles), input) in new.registration.people.iter().zip(&new.form.persons) {
        let person = NewPerson {
            person_id,
            roles,
            input,
        };
        unit.store_person(&lookup, id, person, call.now).await?;
    }
    let values = &new.registration.values;
    within_bounds(
        || call.scope(id),
        new.registration.people.len(),
        values.len(),
    )?;
    unit.store_values(call, id, "triage", values).await
}

/// RegisterDossier.
pub(crate) async fn register(
    broker: &Broker,
    call: &Call,
    req: pb::RegisterDossierRequest,
) -> Outcome<pb::RegisterDossierResponse> {
    let registration = parse(call, &req)?;
    let (pool, org) = (broker.inner.db.pool(), &call.caller.organisation_id);
    if let Some(existing) = store::by_idempotency_key(pool, org, &req.idempotency_key).await? {
        return retry(broker, call, &existing, &req).await;
    }
    let dossier_id = uuid::Uuid::new_v4().to_string();
    let (data_key, wrapped) = broker.inner.keys.new_data_key(&dossier_id)?;
    let form = req.form.clone().unwrap_or_default();
    let loaded = new_dossier(call, &dossier_id, &registration, &req, wrapped);
    let mut new = New {
        registration,
        form: &form,
        loaded,
    };
    let mut scope = call.scope(&dossier_id);
    (scope.purpose, scope.phase) = ("triage".into(), pb::Phase::Registration as i32);
    new.loaded.row.basis = admitted(broker, call, &new, &scope).await?;
    (scope.basis, scope.person_ids) = (Some(new.loaded.row.basis.clone()), new.loaded.person_ids());
    let mut unit = broker.begin(call, &dossier_id, Some(data_key)).await?;
    scope.contributed = store_new(broker, &mut unit, call, &new, &req.idempotency_key).await?;
    let mut reply = reply_of(&new, call);
    let replay = replay::Replay::of(&req.idempotency_key, &req);
    unit.keep(call, &dossier_id, replay, &reply).await?;
    reply.audit_index = unit.commit(broker, scope).await?;
    tracing::info!(dossier = %dossier_id, "dossier registered");
    let people = new.registration.people.iter().zip(&form.persons);
    let informing = people
        .map(|((id, _), p)| (id.clone(), p.informing.clone()))
        .collect();
    broker
        .forward_informing(call, &dossier_id, informing)
        .await?;
    Ok(reply)
}

/// A retry: the kept reply, after the circle and basis gates of the dossier.
async fn retry(
    broker: &Broker,
    call: &Call,
    dossier_id: &str,
    req: &pb::RegisterDossierRequest,
) -> Outcome<pb::RegisterDossierResponse> {
    let covered = broker.covered(call, dossier_id, None).await?;
    let mut scope = covered.scope();
    scope.person_ids = covered.dossier().person_ids();
    let kept = covered.kept::<pb::RegisterDossierResponse>(broker, &req.idempotency_key, req);
    let reply = match kept.await? {
        // The persons as registered; the dossier as it stands now.
        Kept::Replayed(reply) => reply,
        // Registered before replies were kept (an older data directory):
        // the persons without their client references, as the broker then said.
        Kept::Fresh(_) => pb::RegisterDossierResponse {
            persons: (covered.dossier().person_ids().into_iter())
                .map(|person_id| pb::RegisteredPerson {
                    client_ref: String::new(),
                    person_id,
                })
                .collect(),
            legal_basis: Some(covered.dossier().row.basis.clone()),
            policy_version: call.policy.version,
            ..Default::default()
        },
    };
    let dossier = Some(covered.dossier().to_proto(call.now));
    broker
        .replayed(
            call,
            scope,
            pb::RegisterDossierResponse { dossier, ..reply },
        )
        .await
}

fn new_dossier(
    call: &Call,
    id: &str,
    r: &Registration,
    req: &pb::RegisterDossierRequest,
    key: crate::keys::WrappedKey,
) -> Loaded {
    let now = call.now;
    let row = store::DossierRow {
        dossier_id: id.to_owned(),
        district: r.district.clone(),
        requested_track: req.requested_track,
        track: 0,
        phase: pb::Phase::Registration as i32,
        phase_since: now,
        registered_at: now,
        registering_org: call.caller.organisation_id.clone(),
        basis: pb::LegalBasisRef::default(),
        case_director: None,
        updated_at: now,
        revision: 1,
        key: Some(key),
        ..Default::default()
    };
    let participant = pb::DossierParticipant {
        organisation_id: call.caller.organisation_id.clone(),
        partner_type: call.caller.partner_type.clone(),
        registrant: true,
        added_by: call.caller.subject.clone(),
        added_at: Some(to_timestamp(now)),
    };
    Loaded {
        row,
        participants: vec![participant],
        persons: r.people.clone(),
    }
}

fn reply_of(new: &New<'_>, call: &Call) -> pb::RegisterDossierResponse {
    let refs = &new.registration.refs;
    let persons = new.form.persons.iter();
    let persons = persons.map(|p| pb::RegisteredPerson {
        client_ref: p.client_ref.clone(),
        person_id: refs[&p.client_ref].clone(),
    });
    pb::RegisterDossierResponse {
        dossier: Some(new.loaded.to_proto(call.now)),
        persons: persons.collect(),
        legal_basis: Some(new.loaded.row.basis.clone()),
        policy_version: call.policy.version,
        audit_index: 0,
    }
}
