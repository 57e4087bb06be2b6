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

/// The reason code `expected` -> `target` needs (seed 003, step 6): new
/// violence takes a dossier back from follow-up; closing before the check
/// date needs an early-close code; closing from it on records no new violence.
fn reason_code(
    covered: &Covered<'_>,
    (expected, target): (pb::Phase, pb::Phase),
    code: i32,
    now: i64,
) -> Outcome<pb::PhaseReason> {
    use pb::{Phase as P, PhaseReason as R};
    let code = R::try_from(code).map_err(|_| Invalid::new("reason_code", "unknown reason code"))?;
    let early = [
        R::FamilyMoved,
        R::FamilyWithdrew,
        R::Transferred,
        R::GoalsConfirmed,
    ];
    let required = |codes: &str| -> Outcome<pb::PhaseReason> {
        let message = format!("this change of phase needs reason_code {codes}");
        Err(Refusal::precondition(covered.scope(), "REASON_CODE_REQUIRED", &message).into())
    };
    match (expected, target) {
        (P::FollowUp, P::CaseDirection) if code == R::NewViolence => Ok(code),
        (P::FollowUp, P::CaseDirection) => required("NEW_VIOLENCE"),
        (P::FollowUp, P::Closed) => {
            let check = covered.dossier().row.follow_up_check_at;
            if check.is_some_and(|at| now < at) {
                return match early.contains(&code) {
                    true => Ok(code),
                    false => required(
                        "FAMILY_MOVED, FAMILY_WITHDREW, TRANSFERRED or GOALS_CONFIRMED \
                         (the follow-up check date has not come)",
                    ),
                };
            }
            match code {
                R::Unspecified | R::NoNewViolence => Ok(R::NoNewViolence),
                R::NewViolence => Err(Invalid::new(
                    "reason_code",
                    "new violence takes the dossier back to case_direction",
                )
                .into()),
                other => Ok(other),
            }
        }
        _ if code == R::Unspecified => Ok(code),
        _ => Err(Invalid::new("reason_code", "this change of phase takes no reason code").into()),
    }
}

/// The dossier's row after moving to `target` at `now`: the track decided
/// starts its review period; follow-up sets the check date; going back to
/// case direction starts a new review period; the final phases close.
fn moved(
    broker: &Broker,
    covered: &Covered<'_>,
    target: pb::Phase,
    track: Option<i32>,
    now: i64,
) -> store::DossierRow {
    let process = &broker.inner.process;
    let mut row = covered.dossier().row.clone();
    (row.phase, row.phase_since) = (target as i32, now);
    if let Some(track) = track {
        (row.track, row.track_since) = (track, Some(now));
    }
    match target {
        pb::Phase::CaseDirection => {
            row.review_due_at = process.review_period(row.track).map(|p| now + p);
            row.follow_up_check_at = None;
        }
        pb::Phase::FollowUp => {
            row.follow_up_check_at = Some(now + process.follow_up_seconds());
        }
        _ if phase::is_final(target) => row.closed_at = Some(now),
        _ => {}
    }
    row
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
    let code = reason_code(&covered, (expected, target), req.reason_code, call.now)?;
    let row = moved(broker, &covered, target, track, call.now);
    let mut unit = covered.begin(broker).await?;
    let (from, to) = (expected as i32, target as i32);
    if !store::set_phase(unit.conn(), from, &row).await? {
        let message = "the dossier changed phase meanwhile";
        return Err(Refusal::precondition(covered.scope(), "PHASE_CHANGED", message).into());
    }
    unit.event(pb::AuditAction::PhaseAdvance, |e| {
        (e.from_phase, e.to_phase, e.reason) = (from, to, reason);
        e.reason_code = code as i32;
    });
    unit.notice(pb::BrokerEventKind::PhaseChanged, "", |n| n.phase = to);
    let mut scope = covered.scope();
    scope.phase = to;
    scope
        .attributes
        .push(("from_phase", expected.as_str_name().to_owned()));
    if code != pb::PhaseReason::Unspecified {
        scope
            .attributes
            .push(("reason_code", code.as_str_name().to_owned()));
    }
    let audit_index = unit.commit(broker, scope).await?;
    let mut loaded = covered.dossier().clone();
    loaded.row = row;
    let dossier = Some(loaded.to_proto(call.now));
    Ok(pb::AdvancePhaseResponse {
        dossier,
        audit_index,
    })
}
