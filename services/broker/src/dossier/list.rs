//! ListDossiers: the dossiers whose circle holds the caller's organisation
//! and for which it has a legal basis now, every filter applied before the
//! page is cut; each listed dossier is named in its own audit entry.

use schakel_kit::validate::{self, Invalid};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Outcome, Scope},
    store::{self, Cursor, DossierFilter, Pager},
};

fn filter(call: &Call, req: &pb::ListDossiersRequest) -> Outcome<DossierFilter> {
    let known =
        |values: &[i32], ok: &dyn Fn(i32) -> bool, field: &'static str| -> Outcome<Vec<i32>> {
            match values.iter().find(|v| !ok(**v)) {
                Some(_) => Err(Invalid::new(field, "unknown value").into()),
                None => Ok(values.to_vec()),
            }
        };
    let phases = known(
        &req.phases,
        &|v| pb::Phase::try_from(v).is_ok_and(|p| p != pb::Phase::Unspecified),
        "phases",
    )?;
    let tracks = known(&req.tracks, &|v| pb::Track::try_from(v).is_ok(), "tracks")?;
    let district = match req.district.as_str() {
        "" => String::new(),
        d => validate::region("district", d)?,
    };
    let range = req.registered.as_ref();
    let from = range
        .and_then(|r| r.from.as_ref())
        .map(|t| validate::timestamp("registered.from", Some(t)))
        .transpose()?;
    let until = range
        .and_then(|r| r.until.as_ref())
        .map(|t| validate::timestamp("registered.until", Some(t)))
        .transpose()?;
    Ok(DossierFilter {
        organisation_id: call.caller.organisation_id.clone(),
        phases,
        tracks,
        district,
        case_director: if req.case_director_is_me {
            call.caller.subject.clone()
        } else {
            String::new()
        },
        registered_from: from.unwrap_or(i64::MIN),
        registered_until: until.unwrap_or(i64::MAX),
        review_overdue_at: req.review_overdue.then_some(call.now),
        informing_overdue_at: req.informing_review_overdue.then_some(call.now),
    })
}

/// ListDossiers.
pub(crate) async fn list(
    broker: &Broker,
    call: &Call,
    req: pb::ListDossiersRequest,
) -> Outcome<pb::ListDossiersResponse> {
    let (limit, cursor) = Cursor::page(req.page.as_ref())?;
    let filter = filter(call, &req)?;
    let pool = broker.inner.db.pool();
    let (mut pager, mut listed) = (Pager::new(limit, cursor), Vec::new());
    while let Some(at) = pager.next() {
        for row in pager.batch(store::dossier_page(pool, &filter, &at, limit + 1).await?) {
            let position = Cursor {
                at: row.registered_at,
                id: row.dossier_id.clone(),
            };
            if !pager.fits(listed.len(), position) {
                break;
            }
            listed.extend(listable(broker, call, &row.dossier_id).await?);
        }
    }
    let more = pager.more();
    // One entry per listed dossier.
    let (dossiers, scopes): (Vec<pb::Dossier>, Vec<_>) = listed.into_iter().unzip();
    let audit_index = broker.record_each(call, scopes, call.scope("")).await?;
    let next_page_token = match (more, dossiers.last()) {
        (true, Some(last)) => Cursor::token(
            last.registered_at.map_or(0, |t| t.seconds),
            &last.dossier_id,
        ),
        _ => String::new(),
    };
    Ok(pb::ListDossiersResponse {
        dossiers,
        next_page_token,
        audit_index,
    })
}

/// The dossier's metadata and the scope of its entry, when the caller passes
/// the circle and basis gates for it; `None` (left out) otherwise.
async fn listable(broker: &Broker, call: &Call, id: &str) -> Outcome<Option<(pb::Dossier, Scope)>> {
    let covered = broker.covered_or_none(call, id).await?;
    Ok(covered.map(|c| (c.dossier().to_proto(call.now), c.scope())))
}
