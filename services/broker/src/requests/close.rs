//! DeclineInformationRequest (the addressee) and CancelInformationRequest
//! (the sender) of an open request.

use schakel_kit::{
    time::to_timestamp,
    validate::{self, Invalid},
};
use schakel_proto::v1 as pb;

use super::Opened;
use crate::{
    Broker,
    pipeline::{Call, Outcome, Refusal},
    seal, store,
};

/// Who closes, how.
struct Closing {
    status: pb::InformationRequestStatus,
    decline_reason: Option<i32>,
    explanation: String,
}

/// DeclineInformationRequest.
pub(crate) async fn decline(
    broker: &Broker,
    call: &Call,
    req: pb::DeclineInformationRequestRequest,
) -> Outcome<pb::DeclineInformationRequestResponse> {
    let reason = match pb::InformationRequestDeclineReason::try_from(req.reason) {
        Ok(r) if r != pb::InformationRequestDeclineReason::Unspecified => r as i32,
        _ => return Err(Invalid::new("reason", "is required").into()),
    };
    let explanation = validate::text("explanation", &req.explanation, 2000)?;
    let closing = Closing {
        status: pb::InformationRequestStatus::Declined,
        decline_reason: Some(reason),
        explanation,
    };
    let (request, audit_index) = close(broker, call, &req.information_request_id, closing).await?;
    Ok(pb::DeclineInformationRequestResponse {
        information_request: Some(request),
        audit_index,
    })
}

/// CancelInformationRequest.
pub(crate) async fn cancel(
    broker: &Broker,
    call: &Call,
    req: pb::CancelInformationRequestRequest,
) -> Outcome<pb::CancelInformationRequestResponse> {
    let explanation = validate::text("explanation", &req.explanation, 2000)?;
    let closing = Closing {
        status: pb::InformationRequestStatus::Cancelled,
        decline_reason: None,
        explanation,
    };
    let (request, audit_index) = close(broker, call, &req.information_request_id, closing).await?;
    Ok(pb::CancelInformationRequestResponse {
        information_request: Some(request),
        audit_index,
    })
}

/// The request may be closed by the caller: open, and theirs to close.
pub(crate) fn closable(
    opened: &Opened<'_>,
    by_addressee: bool,
    reason: &'static str,
) -> Outcome<()> {
    let org = &opened.covered.call().caller.organisation_id;
    let owner = if by_addressee {
        &opened.row.to_org
    } else {
        &opened.row.from_org
    };
    let message = "the addressee answers or declines; the sender cancels";
    if owner != org {
        return Err(Refusal::not_party(opened.scope(), reason, message).into());
    }
    if opened.row.status != pb::InformationRequestStatus::Open as i32 {
        return Err(Refusal::precondition(
            opened.scope(),
            "NOT_OPEN",
            "the request is no longer open",
        )
        .into());
    }
    Ok(())
}

/// The request as `closing` leaves it.
fn closed(opened: &Opened<'_>, closing: Closing) -> pb::InformationRequest {
    let call = opened.covered.call();
    let mut request = opened.request.clone();
    request.status = closing.status as i32;
    request.closed_at = Some(to_timestamp(call.now));
    request.closed_by = call.caller.subject.clone();
    request.explanation = closing.explanation;
    request.overdue = false;
    if let Some(reason) = closing.decline_reason {
        request.decline_reason = reason;
        let declined = request.fields.iter().map(|f| pb::DeclinedField {
            path: f.clone(),
            reason,
        });
        request.declined_fields = declined.collect();
    }
    request
}

async fn close(
    broker: &Broker,
    call: &Call,
    id: &str,
    closing: Closing,
) -> Outcome<(pb::InformationRequest, u64)> {
    let opened = broker.opened(call, id).await?;
    let declining = closing.decline_reason.is_some();
    closable(&opened, declining, "NOT_YOURS")?;
    let request = closed(&opened, closing);
    let sealed = seal::seal_request(opened.covered.key(), &request)?;
    let mut scope = opened.scope();
    let row = &opened.row;
    scope.organisation = if declining {
        row.from_org.clone()
    } else {
        row.to_org.clone()
    };
    let mut unit = opened.covered.begin(broker).await?;
    let open = pb::InformationRequestStatus::Open as i32;
    if !store::update_request(unit.conn(), &row.request_id, open, request.status, &sealed).await? {
        return Err(
            Refusal::precondition(scope, "NOT_OPEN", "the request changed meanwhile").into(),
        );
    }
    let kind = if declining {
        pb::BrokerEventKind::RequestDeclined
    } else {
        pb::BrokerEventKind::RequestCancelled
    };
    unit.notice(kind, &scope.organisation, |n| {
        (n.request_id, n.due_at) = (row.request_id.clone(), Some(row.due_at));
    });
    let audit_index = unit.commit(broker, scope).await?;
    Ok((request, audit_index))
}
