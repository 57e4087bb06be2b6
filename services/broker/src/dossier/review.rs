//! RecordReview: the case team reviewed the track (spoor 2 or 3) as planned;
//! the next review falls one review period on. The conclusion is kept,
//! sealed, in the dossier's history.

use schakel_kit::validate;
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Outcome, Refusal},
    store,
};

/// RecordReview.
pub(crate) async fn review(
    broker: &Broker,
    call: &Call,
    req: pb::RecordReviewRequest,
) -> Outcome<pb::RecordReviewResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let reason = super::advance::reason(&req.reason)?;
    let covered = broker.covered(call, &dossier_id, None).await?;
    let row = &covered.dossier().row;
    let period = (row.phase == pb::Phase::CaseDirection as i32)
        .then(|| broker.inner.process.review_period(row.track))
        .flatten();
    let Some(period) = period else {
        let message = "track reviews are planned in case_direction, for spoor 2 and 3";
        return Err(Refusal::precondition(covered.scope(), "NO_REVIEW_PLANNED", message).into());
    };
    let due = call.now.saturating_add(period);
    let mut unit = covered.begin(broker).await?;
    store::set_review_due(unit.conn(), &dossier_id, due).await?;
    unit.event(pb::AuditAction::TrackReview, |e| e.reason = reason);
    let audit_index = unit.commit(broker, covered.scope()).await?;
    let mut loaded = covered.dossier().clone();
    loaded.row.review_due_at = Some(due);
    Ok(pb::RecordReviewResponse {
        dossier: Some(loaded.to_proto(call.now)),
        audit_index,
    })
}
