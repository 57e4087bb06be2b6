//! AdvancePhase: the case team moves the dossier along the state machine,
//! under a legal basis; the reason given is kept in the dossier's history.

use schakel_kit::validate::{self, Invalid};
use schakel_proto::v1 as pb;

use crate::{
    Broker, phase,
    pipeline::{Call, Outcome, Refusal},
    store,
};

/// The track a transition decides: spoor 2 or 3, from assessment to case direction.
fn decided_track(from: pb::Phase, to: pb::Phase, track: i32) -> Outcome<Option<i32>> {
    if (from, to) != (pb::Phase::Assessment, pb::Phase::CaseDirection) {
        return Ok(None);
    }
    match pb::Track::try_from(track) {
        Ok(pb::Track::CaseSupport | pb::Track::ChainApproach) => Ok(Some(track)),
        _ => Err(Invalid::new(
            "track",
            "the track decided at triage (spoor 2 or 3) is required",
        )
        .into()),
    }
}

/// AdvancePhase.
pub(crate) async fn advance(
    broker: &Broker,
    call: &Call,
    req: pb::AdvancePhaseRequest,
) -> Outcome<pb::AdvancePhaseResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let reason = validate::text("reason", &req.reason, 2000)?;
    if reason.is_empty() {
        return Err(Invalid::new("reason", "say why").into());
    }
    let (Ok(expected), Ok(target)) = (
        pb::Phase::try_from(req.expected_phase),
        pb::Phase::try_from(req.target_phase),
    ) else {
        return Err(Invalid::new("target_phase", "a known phase is required").into());
    };
    let covered = broker
        .member(call, &dossier_id)
        .await?
        .covered(broker, None)
        .await?;
    let scope = covered.scope();
    if covered.dossier().row.phase != expected as i32 {
        let message = "the dossier is no longer in the expected phase: re-read it";
        return Err(Refusal::precondition(scope, "PHASE_CHANGED", message).into());
    }
    if !phase::allowed(expected, target) {
        let message = format!(
            "a dossier does not go from {} to {}",
            expected.as_str_name(),
            target.as_str_name()
        );
        return Err(Refusal::precondition(scope, "INVALID_TRANSITION", &message).into());
    }
    let track = decided_track(expected, target, req.track)?;
    let mut unit = covered.begin(broker).await?;
    if !store::set_phase(
        unit.conn(),
        &dossier_id,
        expected as i32,
        target as i32,
        track,
        call.now,
    )
    .await?
    {
        return Err(Refusal::precondition(
            scope,
            "PHASE_CHANGED",
            "the dossier changed phase meanwhile",
        )
        .into());
    }
    unit.event(pb::AuditAction::PhaseAdvance, |e| {
        e.from_phase = expected as i32;
        e.to_phase = target as i32;
        e.reason = reason;
    });
    let mut entry = scope;
    entry.phase = target as i32;
    entry
        .attributes
        .push(("from_phase", expected.as_str_name().to_owned()));
    let audit_index = unit.commit(broker, entry).await?;
    let mut loaded = covered.dossier().clone();
    loaded.row.phase = target as i32;
    loaded.row.phase_since = call.now;
    if let Some(t) = track {
        loaded.row.track = t;
    }
    Ok(pb::AdvancePhaseResponse {
        dossier: Some(loaded.to_proto()),
        audit_index,
    })
}
