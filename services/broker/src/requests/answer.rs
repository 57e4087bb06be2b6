//! AnswerInformationRequest: the addressee answers with contributions to
//! the asked fields (and declines some), all or nothing, under the policy
//! and a legal basis; the request closes in the same unit of work.

use schakel_kit::{
    time::to_timestamp,
    validate::{self, Invalid},
};
use schakel_proto::v1 as pb;

use super::{Opened, close::closable};
use crate::{
    Broker, contribute,
    pipeline::{Call, Outcome, Refusal, policy, replay::Kept},
    seal, store,
};

/// Every answered or declined field was asked; each decline has a reason.
fn check_answer(
    call: &Call,
    opened: &Opened<'_>,
    req: &pb::AnswerInformationRequestRequest,
) -> Outcome<()> {
    let asked = policy::requested(call, &opened.request.fields)?;
    let was_asked = |path: &str| {
        call.policy
            .table
            .field(path)
            .is_some_and(|i| asked.contains(&i))
    };
    if let Some(c) = req.contributions.iter().find(|c| !was_asked(&c.path)) {
        return Err(Invalid::new("contributions", format!("{} was not asked", c.path)).into());
    }
    let known = |r: i32| {
        pb::InformationRequestDeclineReason::try_from(r)
            .is_ok_and(|r| r != pb::InformationRequestDeclineReason::Unspecified)
    };
    if let Some(f) = req
        .declined_fields
        .iter()
        .find(|f| !was_asked(&f.path) || !known(f.reason))
    {
        return Err(Invalid::new(
            "declined_fields",
            format!("{}: an asked field and a reason", f.path),
        )
        .into());
    }
    Ok(())
}

/// The request as answered by `saved` (and the declines of `req`).
fn answered(
    opened: &Opened<'_>,
    req: &pb::AnswerInformationRequestRequest,
    note: String,
    saved: &[pb::Contribution],
) -> pb::InformationRequest {
    let call = opened.covered.call();
    let mut request = opened.request.clone();
    request.declined_fields = req.declined_fields.clone();
    request.answer_note = note;
    request.status = if req.declined_fields.is_empty() {
        pb::InformationRequestStatus::Answered
    } else {
        pb::InformationRequestStatus::PartiallyAnswered
    } as i32;
    request.answer_contribution_ids = saved.iter().map(|c| c.contribution_id.clone()).collect();
    request.closed_at = Some(to_timestamp(call.now));
    request.closed_by = call.caller.subject.clone();
    request.overdue = false;
    request
}

/// AnswerInformationRequest.
pub(crate) async fn answer(
    broker: &Broker,
    call: &Call,
    req: pb::AnswerInformationRequestRequest,
) -> Outcome<pb::AnswerInformationRequestResponse> {
    let note = validate::text("note", &req.note, 2000)?;
    let opened = broker.opened(call, &req.information_request_id).await?;
    let (covered, mut scope) = (&opened.covered, opened.scope());
    let replay = match covered.kept(broker, &req.idempotency_key, &req).await? {
        Kept::Replayed(reply) => return broker.replayed(call, scope, reply).await,
        Kept::Fresh(replay) => replay,
    };
    closable(&opened, true, "NOT_ADDRESSEE")?;
    contribute::check_inputs(call, &req.contributions, !req.declined_fields.is_empty())?;
    check_answer(call, &opened, &req)?;
    contribute::permit(covered, &req.contributions)?;
    let mut unit = covered.begin(broker).await?;
    let saved = contribute::write(
        &mut unit,
        covered,
        &req.contributions,
        &opened.row.request_id,
    )
    .await?;
    let request = answered(&opened, &req, note, &saved);
    let sealed = seal::seal_request(covered.key(), &request)?;
    let (id, open) = (
        &opened.row.request_id,
        pb::InformationRequestStatus::Open as i32,
    );
    if !store::update_request(unit.conn(), id, open, request.status, &sealed).await? {
        return Err(
            Refusal::precondition(scope, "NOT_OPEN", "the request is no longer open").into(),
        );
    }
    unit.notice(
        pb::BrokerEventKind::RequestAnswered,
        &opened.row.from_org,
        |n| {
            (n.request_id, n.due_at) = (id.clone(), Some(opened.row.due_at));
        },
    );
    contribute::concerned(&mut scope, &saved);
    (scope.resource_id, scope.organisation) = (id.clone(), opened.row.from_org.clone());
    let mut reply = pb::AnswerInformationRequestResponse {
        information_request: Some(request),
        contributions: saved,
        policy_version: call.policy.version,
        legal_basis: Some(covered.basis().clone()),
        audit_index: 0,
    };
    unit.keep(call, &opened.row.dossier_id, replay, &reply)
        .await?;
    reply.audit_index = unit.commit(broker, scope).await?;
    Ok(reply)
}
