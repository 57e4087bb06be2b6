//! RequestInformation: ask another circle organisation for need-to-know
//! information, under a legal basis for the declared purpose.

use schakel_kit::{
    time::to_timestamp,
    validate::{self, Invalid},
};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Covered, Outcome, Refusal, Scope, policy, replay::Kept},
    seal, store,
};

/// The request's own fields, checked (not yet its dossier's gates).
fn parse(call: &Call, req: &pb::RequestInformationRequest) -> Outcome<(String, i64)> {
    let justification = validate::text("justification", &req.justification, 2000)?;
    if justification.is_empty() {
        return Err(Invalid::new("justification", "say why the information is needed").into());
    }
    if req.fields.is_empty() {
        return Err(Invalid::new("fields", "at least one field").into());
    }
    policy::requested(call, &req.fields)?;
    let due = validate::timestamp("due_at", req.due_at.as_ref())?;
    if due <= call.now {
        return Err(Invalid::new("due_at", "must lie in the future").into());
    }
    Ok((justification, due))
}

/// The addressee is another organisation of the circle, the persons are the dossier's.
fn addressable(
    covered: &Covered<'_>,
    to: &str,
    req: &pb::RequestInformationRequest,
    scope: &Scope,
) -> Outcome<()> {
    let dossier = covered.dossier();
    if !dossier.in_circle(to) || to == covered.call().caller.organisation_id {
        let message = "the addressee must be another organisation in the dossier's circle";
        return Err(Refusal::precondition(scope.clone(), "NOT_IN_CIRCLE", message).into());
    }
    if req
        .person_ids
        .iter()
        .any(|p| !dossier.persons.iter().any(|(id, _)| id == p))
    {
        return Err(Invalid::new("person_ids", "not a person of this dossier").into());
    }
    Ok(())
}

/// The new request and its row (sealed).
fn new_request(
    covered: &Covered<'_>,
    req: &pb::RequestInformationRequest,
    to: &str,
    justification: String,
    due: i64,
) -> Outcome<(pb::InformationRequest, store::RequestRow)> {
    let call = covered.call();
    let dossier_id = covered.dossier().row.dossier_id.clone();
    let request = pb::InformationRequest {
        information_request_id: uuid::Uuid::new_v4().to_string(),
        dossier_id: dossier_id.clone(),
        from_organisation_id: call.caller.organisation_id.clone(),
        requested_by: call.caller.subject.clone(),
        to_organisation_id: to.to_owned(),
        fields: req.fields.clone(),
        person_ids: req.person_ids.clone(),
        purpose: covered.purpose().to_owned(),
        justification,
        due_at: req.due_at,
        created_at: Some(to_timestamp(call.now)),
        status: pb::InformationRequestStatus::Open as i32,
        ..Default::default()
    };
    let row = store::RequestRow {
        request_id: request.information_request_id.clone(),
        dossier_id,
        from_org: call.caller.organisation_id.clone(),
        to_org: to.to_owned(),
        status: request.status,
        due_at: due,
        created_at: call.now,
        sealed: seal::seal_request(covered.key(), &request)?,
    };
    Ok((request, row))
}

/// RequestInformation.
pub(crate) async fn ask(
    broker: &Broker,
    call: &Call,
    req: pb::RequestInformationRequest,
) -> Outcome<pb::RequestInformationResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let to = validate::id("to_organisation_id", &req.to_organisation_id)?;
    let purpose = validate::code("purpose", &req.purpose)?;
    let (justification, due) = parse(call, &req)?;
    let covered = broker.covered(call, &dossier_id, Some(&purpose)).await?;
    let mut scope = covered.scope();
    (scope.organisation, scope.person_ids) = (to.clone(), req.person_ids.clone());
    addressable(&covered, &to, &req, &scope)?;
    let replay = match covered.kept(broker, &req.idempotency_key, &req).await? {
        Kept::Replayed(reply) => return broker.replayed(call, scope, reply).await,
        Kept::Fresh(replay) => replay,
    };
    let (request, row) = new_request(&covered, &req, &to, justification, due)?;
    scope.resource_id = row.request_id.clone();
    let mut unit = covered.begin(broker).await?;
    store::insert_request(unit.conn(), &row).await?;
    unit.notice(pb::BrokerEventKind::RequestReceived, &to, |n| {
        (n.request_id, n.due_at) = (row.request_id.clone(), Some(due));
    });
    let information_request = Some(request);
    let mut reply = pb::RequestInformationResponse {
        information_request,
        audit_index: 0,
    };
    unit.keep(call, &dossier_id, replay, &reply).await?;
    reply.audit_index = unit.commit(broker, scope).await?;
    Ok(reply)
}
