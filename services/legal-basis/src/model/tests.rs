//! The lifecycle computed from the clock.

use schakel_kit::time::to_timestamp;
use schakel_proto::v1 as pb;

use super::*;

fn version(number: u32, approved_at: Option<Time>, from: Time, until: Time) -> Version {
    Version {
        version: number,
        terms: pb::AgreementTerms {
            valid_from: Some(to_timestamp(from)),
            valid_until: Some(to_timestamp(until)),
            ..Default::default()
        },
        approval: None,
        approved_at,
        change_summary: String::new(),
        created_by: "c".into(),
        edited_by: "c".into(),
        created_at: 0,
        updated_at: 0,
    }
}

fn agreement(versions: Vec<Version>) -> Agreement {
    Agreement {
        agreement_id: "a".into(),
        created_at: 0,
        dossier_count: 0,
        revocation: None,
        versions,
    }
}

use pb::AgreementStatus as S;

#[test]
fn a_version_is_draft_then_approved_then_expired() {
    let a = agreement(vec![version(1, Some(10), 0, 100)]);
    assert_eq!(a.status(1, 9), S::Draft);
    assert_eq!(a.status(1, 10), S::Approved);
    assert!(a.in_force(1, 10));
    assert_eq!(a.status(1, 99), S::Approved);
    assert_eq!(a.status(1, 100), S::Expired);
    assert!(!a.in_force(1, 100));
    assert_eq!(a.status(2, 50), S::Unspecified);
}

#[test]
fn an_approved_version_not_yet_valid_is_approved_but_not_in_force() {
    let a = agreement(vec![version(1, Some(0), 50, 100)]);
    assert_eq!(a.status(1, 10), S::Approved);
    assert!(!a.in_force(1, 10));
    assert_eq!(a.effective(10).map(|v| v.version), Some(1));
    assert!(a.in_force(1, 50));
}

#[test]
fn an_amendment_takes_over_when_approved_and_valid() {
    let a = agreement(vec![
        version(1, Some(0), 0, 1000),
        version(2, Some(20), 50, 2000),
        version(3, None, 60, 3000),
    ]);
    // Before v2's approval: v1 only.
    assert_eq!(a.effective(19).map(|v| v.version), Some(1));
    assert_eq!(a.status(2, 19), S::Draft);
    // Approved, not yet valid: v1 stays in force.
    assert_eq!(a.effective(30).map(|v| v.version), Some(1));
    assert_eq!(
        (a.status(1, 30), a.status(2, 30)),
        (S::Approved, S::Approved)
    );
    assert!(a.in_force(1, 30) && !a.in_force(2, 30));
    // From v2's start, v1 is superseded; v3 is a draft.
    assert_eq!(a.effective(50).map(|v| v.version), Some(2));
    assert_eq!(a.status(1, 50), S::Superseded);
    assert!(a.in_force(2, 50));
    assert_eq!(a.status(3, 50), S::Draft);
    // v2 outlives v1's end.
    assert_eq!(a.status(2, 1500), S::Approved);
    assert_eq!(a.status(2, 2000), S::Expired);
}

#[test]
fn revocation_covers_every_version_from_its_moment() {
    let mut a = agreement(vec![
        version(1, Some(0), 0, 1000),
        version(2, None, 0, 1000),
    ]);
    a.revocation = Some((500, pb::AgreementRevocation::default()));
    assert_eq!(a.status(1, 499), S::Approved);
    assert_eq!(
        (a.status(1, 500), a.status(2, 500)),
        (S::Revoked, S::Revoked)
    );
    assert!(!a.in_force(1, 500));
    assert_eq!(a.candidate(500).and_then(|c| c.revoked_at), Some(500));
}

#[test]
fn nothing_approved_is_no_candidate() {
    let a = agreement(vec![version(1, None, 0, 1000)]);
    assert!(a.candidate(10).is_none());
    assert!(a.effective(10).is_none());
}
