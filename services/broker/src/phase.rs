//! The phases of a dossier and the only transitions allowed:
//! `registration` → `case_building` → `assessment` → `case_direction` →
//! `follow_up` → `closed`, `assessment` → `not_retained` (advice only), and
//! `follow_up` → `case_direction` when there is new violence.

use schakel_proto::v1::Phase;

/// Whether a dossier may go from `from` to `to`.
pub fn allowed(from: Phase, to: Phase) -> bool {
    matches!(
        (from, to),
        (Phase::Registration, Phase::CaseBuilding)
            | (Phase::CaseBuilding, Phase::Assessment)
            | (Phase::Assessment, Phase::CaseDirection)
            | (Phase::Assessment, Phase::NotRetained)
            | (Phase::CaseDirection, Phase::FollowUp)
            | (Phase::FollowUp, Phase::Closed)
            | (Phase::FollowUp, Phase::CaseDirection)
    )
}

/// The phases a dossier may go to from `from`.
pub fn next(from: Phase) -> Vec<Phase> {
    ALL.into_iter().filter(|to| allowed(from, *to)).collect()
}

/// Whether the dossier is finished (nothing follows).
pub fn is_final(phase: Phase) -> bool {
    next(phase).is_empty()
}

/// The purposes a caller may declare in `phase`, the first being the one
/// under which calls that declare none are checked. A purpose that does not
/// fit the phase is refused: the phase, not the caller, says what the
/// processing is for.
pub fn purposes(phase: Phase) -> &'static [&'static str] {
    match phase {
        Phase::Registration => &["triage"],
        Phase::CaseBuilding => &["case_building"],
        Phase::Assessment => &["triage", "case_building"],
        Phase::CaseDirection => &["case_direction"],
        Phase::FollowUp | Phase::Closed => &["follow_up"],
        Phase::NotRetained => &["triage"],
        Phase::Unspecified => &[],
    }
}

/// Whether content calls in `phase` need the client system informed: from
/// dossier building on (the registrant informs the family at registration).
pub fn informing_required(phase: Phase) -> bool {
    !matches!(phase, Phase::Registration | Phase::Unspecified)
}

const ALL: [Phase; 7] = [
    Phase::Registration,
    Phase::CaseBuilding,
    Phase::Assessment,
    Phase::CaseDirection,
    Phase::FollowUp,
    Phase::Closed,
    Phase::NotRetained,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_has_exactly_its_transitions() {
        let allowed_pairs: Vec<(Phase, Phase)> = ALL
            .into_iter()
            .flat_map(|from| ALL.into_iter().map(move |to| (from, to)))
            .filter(|(from, to)| allowed(*from, *to))
            .collect();
        assert_eq!(
            allowed_pairs,
            vec![
                (Phase::Registration, Phase::CaseBuilding),
                (Phase::CaseBuilding, Phase::Assessment),
                (Phase::Assessment, Phase::CaseDirection),
                (Phase::Assessment, Phase::NotRetained),
                (Phase::CaseDirection, Phase::FollowUp),
                (Phase::FollowUp, Phase::CaseDirection),
                (Phase::FollowUp, Phase::Closed),
            ]
        );
        assert!(is_final(Phase::Closed) && is_final(Phase::NotRetained));
        assert!(!is_final(Phase::FollowUp));
        assert!(!allowed(Phase::Unspecified, Phase::Registration));
        assert!(!allowed(Phase::Closed, Phase::Registration), "no reopening");
        assert!(!allowed(Phase::Registration, Phase::Registration));
    }

    #[test]
    fn every_phase_has_purposes_and_informing_counts_after_registration() {
        for phase in ALL {
            assert!(!purposes(phase).is_empty(), "{phase:?}");
            assert_eq!(informing_required(phase), phase != Phase::Registration);
        }
        assert_eq!(purposes(Phase::CaseDirection), ["case_direction"]);
        assert!(!purposes(Phase::CaseDirection).contains(&"triage"));
    }
}
