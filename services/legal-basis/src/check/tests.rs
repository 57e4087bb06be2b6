//! Every denial reason, the boundaries, and the precedence among candidates.

use super::*;

const NOW: Time = 1_800_000_000;
const DAY: Time = 86_400;

fn leuven() -> AgreementVersion {
    AgreementVersion {
        agreement_id: "agr-leuven".into(),
        version: 1,
        parties: vec!["org-politie".into(), "org-caw".into()],
        districts: vec!["leuven".into()],
        purposes: vec!["triage".into(), "case_building".into()],
        valid_from: NOW - 10 * DAY,
        valid_until: NOW + 355 * DAY,
        revoked_at: None,
        scope: Scope::default(),
        dossiers_counted: 0,
    }
}

fn dossier() -> Dossier {
    Dossier {
        district: "leuven".into(),
        track: Some(Track::ChainApproach),
        violence_forms: vec!["partnergeweld".into()],
        victims: vec!["p-victim".into()],
        perpetrators: vec!["p-perp".into()],
        informing: HashMap::from([
            ("p-victim".to_owned(), Informing::Informed),
            ("p-perp".to_owned(), Informing::Deferred),
        ]),
        already_counted: false,
    }
}

fn ask(
    versions: &[AgreementVersion],
    org: &str,
    purpose: &str,
    dossier: &Dossier,
    at: Time,
) -> Answer {
    check(
        versions,
        &Question {
            organisation_id: org,
            purpose,
            dossier,
            at,
            new_dossier: false,
            informing_required: purpose != TRIAGE,
        },
    )
}

fn reason(answer: &Answer) -> Option<Denial> {
    match answer {
        Answer::Allowed { .. } => None,
        Answer::Denied { reason, .. } => Some(*reason),
    }
}

#[test]
fn a_party_with_a_listed_purpose_in_force_is_allowed() {
    let answer = ask(&[leuven()], "org-caw", "case_building", &dossier(), NOW);
    assert_eq!(
        answer,
        Answer::Allowed {
            agreement_id: "agr-leuven".into(),
            version: 1,
            valid_until: NOW + 355 * DAY
        }
    );
}

#[test]
fn each_denial_reason() {
    let d = dossier();
    assert_eq!(
        reason(&ask(&[], "org-caw", "triage", &d, NOW)),
        Some(Denial::NoAgreement)
    );
    assert_eq!(
        reason(&ask(&[leuven()], "org-ggz", "triage", &d, NOW)),
        Some(Denial::NotAParty)
    );
    assert_eq!(
        reason(&ask(&[leuven()], "org-caw", "follow_up", &d, NOW)),
        Some(Denial::PurposeNotCovered)
    );
    let gent = Dossier {
        district: "gent".into(),
        ..dossier()
    };
    assert_eq!(
        reason(&ask(&[leuven()], "org-caw", "triage", &gent, NOW)),
        Some(Denial::DistrictNotCovered)
    );
    let revoked = AgreementVersion {
        revoked_at: Some(NOW - DAY),
        ..leuven()
    };
    assert_eq!(
        reason(&ask(&[revoked], "org-caw", "triage", &d, NOW)),
        Some(Denial::Revoked)
    );
    let future = AgreementVersion {
        valid_from: NOW + DAY,
        ..leuven()
    };
    assert_eq!(
        reason(&ask(&[future], "org-caw", "triage", &d, NOW)),
        Some(Denial::NotYetValid)
    );
    let past = AgreementVersion {
        valid_until: NOW - DAY,
        ..leuven()
    };
    assert_eq!(
        reason(&ask(&[past], "org-caw", "triage", &d, NOW)),
        Some(Denial::Expired)
    );
    let partner_violence_only = AgreementVersion {
        scope: Scope {
            violence_forms: vec!["partnergeweld".into()],
            ..Scope::default()
        },
        ..leuven()
    };
    let child_abuse = Dossier {
        violence_forms: vec!["kindermishandeling".into()],
        ..dossier()
    };
    assert_eq!(
        reason(&ask(
            &[partner_violence_only],
            "org-caw",
            "triage",
            &child_abuse,
            NOW
        )),
        Some(Denial::ScopeNotCovered)
    );
    let capped = AgreementVersion {
        scope: Scope {
            max_dossiers: 20,
            ..Scope::default()
        },
        dossiers_counted: 20,
        ..leuven()
    };
    let question = Question {
        organisation_id: "org-caw",
        purpose: "triage",
        dossier: &d,
        at: NOW,
        new_dossier: true,
        informing_required: false,
    };
    assert_eq!(
        reason(&check(&[capped], &question)),
        Some(Denial::DossierCapReached)
    );
    let not_informed = Dossier {
        informing: HashMap::new(),
        ..dossier()
    };
    let answer = ask(&[leuven()], "org-caw", "case_building", &not_informed, NOW);
    assert_eq!(
        answer,
        Answer::Denied {
            reason: Denial::ClientNotInformed,
            agreement: Some(("agr-leuven".into(), 1)),
            uninformed: vec!["p-perp".into(), "p-victim".into()],
        }
    );
}

#[test]
fn validity_boundaries_are_exact() {
    let d = dossier();
    let v = leuven();
    assert!(
        reason(&ask(
            std::slice::from_ref(&v),
            "org-caw",
            "triage",
            &d,
            v.valid_from
        ))
        .is_none(),
        "from is inclusive"
    );
    assert_eq!(
        reason(&ask(
            std::slice::from_ref(&v),
            "org-caw",
            "triage",
            &d,
            v.valid_from - 1
        )),
        Some(Denial::NotYetValid)
    );
    assert!(
        reason(&ask(
            std::slice::from_ref(&v),
            "org-caw",
            "triage",
            &d,
            v.valid_until - 1
        ))
        .is_none()
    );
    assert_eq!(
        reason(&ask(
            std::slice::from_ref(&v),
            "org-caw",
            "triage",
            &d,
            v.valid_until
        )),
        Some(Denial::Expired),
        "until is exclusive"
    );
    let revoked = AgreementVersion {
        revoked_at: Some(NOW),
        ..v
    };
    assert!(
        reason(&ask(
            std::slice::from_ref(&revoked),
            "org-caw",
            "triage",
            &d,
            NOW - 1
        ))
        .is_none(),
        "before revocation it covered"
    );
    assert_eq!(
        reason(&ask(&[revoked], "org-caw", "triage", &d, NOW)),
        Some(Denial::Revoked)
    );
}

#[test]
fn informing_rules() {
    let v = [leuven()];
    // Triage needs no informing.
    let nobody = Dossier {
        informing: HashMap::new(),
        ..dossier()
    };
    assert!(reason(&ask(&v, "org-caw", "triage", &nobody, NOW)).is_none());
    // A perpetrator may be deferred; a victim may not.
    let victim_deferred = Dossier {
        informing: HashMap::from([
            ("p-victim".to_owned(), Informing::Deferred),
            ("p-perp".to_owned(), Informing::Informed),
        ]),
        ..dossier()
    };
    let answer = ask(&v, "org-caw", "case_building", &victim_deferred, NOW);
    assert!(
        matches!(answer, Answer::Denied { reason: Denial::ClientNotInformed, ref uninformed, .. } if uninformed == &vec!["p-victim".to_owned()])
    );
    assert!(reason(&ask(&v, "org-caw", "case_building", &dossier(), NOW)).is_none());
}

#[test]
fn the_cap_counts_new_dossiers_only() {
    let capped = AgreementVersion {
        scope: Scope {
            max_dossiers: 2,
            ..Scope::default()
        },
        dossiers_counted: 2,
        ..leuven()
    };
    let d = dossier();
    // Existing dossiers keep their basis when the cap is full.
    assert!(
        reason(&ask(
            std::slice::from_ref(&capped),
            "org-caw",
            "triage",
            &d,
            NOW
        ))
        .is_none()
    );
    let counted = Dossier {
        already_counted: true,
        ..dossier()
    };
    let question = Question {
        organisation_id: "org-caw",
        purpose: "triage",
        dossier: &counted,
        at: NOW,
        new_dossier: true,
        informing_required: false,
    };
    assert!(
        reason(&check(std::slice::from_ref(&capped), &question)).is_none(),
        "re-checking a counted dossier"
    );
    let room = AgreementVersion {
        dossiers_counted: 1,
        ..capped
    };
    let question = Question {
        organisation_id: "org-caw",
        purpose: "triage",
        dossier: &d,
        at: NOW,
        new_dossier: true,
        informing_required: false,
    };
    assert!(reason(&check(&[room], &question)).is_none());
}

#[test]
fn tracks_and_forms_scope() {
    let spoor3 = AgreementVersion {
        scope: Scope {
            tracks: vec![Track::ChainApproach],
            ..Scope::default()
        },
        ..leuven()
    };
    let spoor2 = Dossier {
        track: Some(Track::CaseSupport),
        ..dossier()
    };
    assert_eq!(
        reason(&ask(
            std::slice::from_ref(&spoor3),
            "org-caw",
            "triage",
            &spoor2,
            NOW
        )),
        Some(Denial::ScopeNotCovered)
    );
    let unknown_track = Dossier {
        track: None,
        ..dossier()
    };
    assert_eq!(
        reason(&ask(
            std::slice::from_ref(&spoor3),
            "org-caw",
            "triage",
            &unknown_track,
            NOW
        )),
        Some(Denial::ScopeNotCovered)
    );
    assert!(reason(&ask(&[spoor3], "org-caw", "triage", &dossier(), NOW)).is_none());
    let forms = AgreementVersion {
        scope: Scope {
            violence_forms: vec!["partnergeweld".into(), "post_partnergeweld".into()],
            ..Scope::default()
        },
        ..leuven()
    };
    let mixed = Dossier {
        violence_forms: vec!["kinderen getuige".into(), "post_partnergeweld".into()],
        ..dossier()
    };
    assert!(
        reason(&ask(&[forms], "org-caw", "triage", &mixed, NOW)).is_none(),
        "one listed form suffices"
    );
}

#[test]
fn the_candidate_that_got_furthest_names_the_reason() {
    let d = dossier();
    // One agreement does not include the organisation, another has expired.
    let other_party = AgreementVersion {
        agreement_id: "agr-a".into(),
        parties: vec!["org-x".into()],
        ..leuven()
    };
    let expired = AgreementVersion {
        agreement_id: "agr-b".into(),
        valid_until: NOW - DAY,
        ..leuven()
    };
    let answer = ask(
        &[other_party.clone(), expired],
        "org-caw",
        "triage",
        &d,
        NOW,
    );
    assert!(
        matches!(answer, Answer::Denied { reason: Denial::Expired, agreement: Some((ref id, 1)), .. } if id == "agr-b")
    );
    // When any candidate covers the question, it is allowed.
    let answer = ask(&[other_party, leuven()], "org-caw", "triage", &d, NOW);
    assert!(
        matches!(answer, Answer::Allowed { ref agreement_id, .. } if agreement_id == "agr-leuven")
    );
    // Not a party anywhere: no agreement is named.
    let answer = ask(&[leuven()], "org-ocj", "triage", &d, NOW);
    assert_eq!(
        answer,
        Answer::Denied {
            reason: Denial::NotAParty,
            agreement: None,
            uninformed: vec![]
        }
    );
}

#[test]
fn an_amendment_is_a_separate_version_and_the_covering_one_is_named() {
    let d = dossier();
    let v1 = AgreementVersion {
        valid_until: NOW + DAY,
        ..leuven()
    };
    let v2 = AgreementVersion {
        version: 2,
        purposes: vec!["triage".into(), "case_building".into(), "follow_up".into()],
        valid_until: NOW + 100 * DAY,
        ..leuven()
    };
    // follow_up is only in version 2.
    let answer = ask(&[v1.clone(), v2.clone()], "org-caw", "follow_up", &d, NOW);
    assert!(matches!(answer, Answer::Allowed { version: 2, .. }));
    // A past decision under version 1 stays explainable: version 1 alone answers as then.
    let answer = ask(&[v1], "org-caw", "case_building", &d, NOW);
    assert!(matches!(answer, Answer::Allowed { version: 1, .. }));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// An answer never names an agreement that was not asked about, and an
        /// allowed answer is always a version that covers the question.
        #[test]
        fn answers_are_grounded(at in (NOW - 40 * DAY)..(NOW + 400 * DAY), party in 0usize..3, purpose in 0usize..3, revoked in proptest::option::of((NOW - 20 * DAY)..(NOW + 20 * DAY))) {
            let orgs = ["org-caw", "org-politie", "org-ggz"];
            let purposes = ["triage", "case_building", "follow_up"];
            let v = AgreementVersion { revoked_at: revoked, ..leuven() };
            let d = dossier();
            let answer = ask(std::slice::from_ref(&v), orgs[party], purposes[purpose], &d, at);
            match answer {
                Answer::Allowed { ref agreement_id, version, .. } => {
                    prop_assert_eq!(agreement_id.as_str(), "agr-leuven");
                    prop_assert_eq!(version, 1);
                    prop_assert!(v.parties.iter().any(|p| p == orgs[party]));
                    prop_assert!(at >= v.valid_from && at < v.valid_until);
                    prop_assert!(revoked.is_none_or(|r| at < r));
                }
                Answer::Denied { reason, .. } => prop_assert!(reason != Denial::NoAgreement),
            }
        }
    }
}
