//! AdvancePhase: the case team moves the dossier along the state machine,
//! under a legal basis; the reason given is kept in the dossier's history.

use schakel_kit::validate::{self, Invalid};
use schakel_proto::v1 as pb;

use crate::{
    Broker, phase,
    pipeline::{Call, Covered, Outcome, Refusal},
    store,
};

/// A reason the case team gives (required, free text, kept sealed).
pub(crate) fn reason(text: &str) -> Outcome<String> {
    let reason = validate::text("reason", text, 2000)?;
    if reason.is_empty() {
        return Err(Invalid::new("reason", "say why").into());
    }
    Ok(reason)
}

/// The track a transition decides: spoor 2 or 3, from assessment to case direction.
fn decided_track(from: pb::Phase, to: pb::Phase, track: i32) -> Outcome<Option<i32>> {
    if (from, to) != (pb::Phase::Assessment, pb::Phase::CaseDirection) {
        return Ok(None);
    }
    match pb::Track::try_from(track) {
        Ok(pb::Track::CaseSupport | pb::Track::ChainApproach) => Ok(Some(track)),
        _ => {
            let message = "the track decided at triage (spoor 2 or 3) is required";
            Err(Invalid::new("track", message).into())
        }
    }
}

/// The phases of the request: expected and target.
fn phases(req: &pb::AdvancePhaseRequest) -> Outcome<(pb::Phase, pb::Phase)> {
    match (
        pb::Phase::try_from(req.expected_phase),
        pb::Phase::try_from(req.target_phase),
    ) {
        (Ok(expected), Ok(target)) => Ok((expected, target)),
        _ => Err(Invalid::new("target_phase", "a known phase is required").into()),
    }
}

/// The dossier is in `expected` and may go to `target`.
fn transition(covered: &Covered<'_>, expected: pb::Phase, target: pb::Phase) -> Outcome<()> {
    if covered.dossier().row.phase != expected as i32 {
        let message = "the dossier is no longer in the expected phase: re-read it";
        return Err(Refusal::precondition(covered.scope(), "PHASE_CHANGED", message).into());
    }
    if !phase::allowed(expected, target) {
        let (from, to) = (expected.as_str_name(), target.as_str_name());
        let message = format!("a dossier does not go from {from} to {to}");
        return Err(Refusal::precondition(covered.scope(), "INVALID_TRANSITION", &message).into());
    }
    Ok(())
}

/// AdvancePhase.
pub(crate) async fn advance(
    broker: &Broker,
    call: &Call,
    req: pb::AdvancePhaseRequest,
) -> Outcome<pb::AdvancePhaseResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let reason = reason(&req.reason)?;
    let (expected, target) = phases(&req)?;
    let covered = broker.covered(call, &dossier_id, None).await?;
    transition(&covered, expected, target)?;
    let track = decided_track(expected, target, req.track)?;
    let mut unit = covered.begin(broker).await?;
    let (from, to) = (expected as i32, target as i32);
    if !store::set_phase(unit.conn(), &dossier_id, from, to, track, call.now).await? {
        let message = "the dossier changed phase meanwhile";
        return Err(Refusal::precondition(covered.scope(), "PHASE_CHANGED", message).into());
    }
    unit.event(pb::AuditAction::PhaseAdvance, |e| {
        (e.from_phase, e.to_phase, e.reason) = (from, to, reason);
    });
    let mut scope = covered.scope();
    scope.phase = to;
    scope
        .attributes
        .push(("from_phase", expected.as_str_name().to_owned()));
    let audit_index = unit.commit(broker, scope).await?;
    let mut loaded = covered.dossier().clone();
    (loaded.row.phase, loaded.row.phase_since) = (to, call.now);
    loaded.row.track = track.unwrap_or(loaded.row.track);
    let dossier = Some(loaded.to_proto());
    Ok(pb::AdvancePhaseResponse {
        dossier,
        audit_index,
    })
}
