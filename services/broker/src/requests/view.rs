//! GetInformationRequest and ListInformationRequests: requests of the
//! caller's organisation, of dossiers whose circle it is in and for which it
//! has a legal basis now; each request shown is named in an audit entry.

use std::collections::HashMap;

use schakel_kit::validate::{self, Invalid};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Covered, Outcome, Scope},
    seal,
    store::{self, Cursor, Pager, RequestFilter},
};

/// GetInformationRequest.
pub(crate) async fn get(
    broker: &Broker,
    call: &Call,
    req: pb::GetInformationRequestRequest,
) -> Outcome<pb::GetInformationRequestResponse> {
    let opened = broker.opened(call, &req.information_request_id).await?;
    let audit_index = broker.record(call, opened.scope()).await?;
    Ok(pb::GetInformationRequestResponse {
        information_request: Some(opened.request),
        audit_index,
    })
}

fn filter(call: &Call, req: &pb::ListInformationRequestsRequest) -> Outcome<RequestFilter> {
    let (inbox, outbox) = match pb::InformationRequestBox::try_from(req.r#box) {
        Ok(pb::InformationRequestBox::Inbox) => (true, false),
        Ok(pb::InformationRequestBox::Outbox) => (false, true),
        _ => (true, true),
    };
    if req
        .statuses
        .iter()
        .any(|s| pb::InformationRequestStatus::try_from(*s).is_err())
    {
        return Err(Invalid::new("statuses", "unknown status").into());
    }
    let dossier_id = match req.dossier_id.as_str() {
        "" => String::new(),
        id => validate::id("dossier_id", id)?,
    };
    Ok(RequestFilter {
        organisation_id: call.caller.organisation_id.clone(),
        inbox,
        outbox,
        dossier_id,
        statuses: req.statuses.clone(),
        overdue_at: req.overdue_only.then_some(call.now),
    })
}

/// A request opened under its dossier's gates (passed once per dossier),
/// with the scope of its entry; `None` when the caller may not see it now.
async fn opened_row<'c>(
    broker: &Broker,
    call: &'c Call,
    gates: &mut HashMap<String, Option<Covered<'c>>>,
    row: store::RequestRow,
) -> Outcome<Option<(pb::InformationRequest, Scope)>> {
    if !gates.contains_key(&row.dossier_id) {
        let covered = broker.covered_or_none(call, &row.dossier_id).await?;
        gates.insert(row.dossier_id.clone(), covered);
    }
    let Some(Some(covered)) = gates.get(&row.dossier_id) else {
        return Ok(None);
    };
    let request = seal::open_request(covered.key(), &row, call.now)?;
    let mut scope = covered.scope();
    scope.resource_id = row.request_id.clone();
    scope.person_ids = request.person_ids.clone();
    Ok(Some((request, scope)))
}

/// ListInformationRequests.
pub(crate) async fn list(
    broker: &Broker,
    call: &Call,
    req: pb::ListInformationRequestsRequest,
) -> Outcome<pb::ListInformationRequestsResponse> {
    let (limit, cursor) = Cursor::page(req.page.as_ref())?;
    let filter = filter(call, &req)?;
    let pool = broker.inner.db.pool();
    let mut gates: HashMap<String, Option<Covered<'_>>> = HashMap::new();
    let (mut pager, mut shown) = (Pager::new(limit, cursor), Vec::new());
    while let Some(at) = pager.next() {
        for row in pager.batch(store::request_page(pool, &filter, &at, limit + 1).await?) {
            let position = Cursor {
                at: row.created_at,
                id: row.request_id.clone(),
            };
            if !pager.fits(shown.len(), position) {
                break;
            }
            shown.extend(opened_row(broker, call, &mut gates, row).await?);
        }
    }
    let more = pager.more();
    let (information_requests, scopes): (Vec<_>, Vec<_>) = shown.into_iter().unzip();
    let next_page_token = match (more, information_requests.last()) {
        (true, Some(last)) => Cursor::token(
            last.created_at.map_or(0, |t| t.seconds),
            &last.information_request_id,
        ),
        _ => String::new(),
    };
    let audit_index = broker
        .record_each(call, scopes, call.scope(&filter.dossier_id))
        .await?;
    Ok(pb::ListInformationRequestsResponse {
        information_requests,
        next_page_token,
        audit_index,
    })
}
