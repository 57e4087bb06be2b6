//! What privacy officers can ask: Query, SubjectReport with art. 23
//! restrictions, both logged; others are refused. Retention keeps proofs.

use crate::common::*;
use schakel_kit::{testing::databases, time::Clock};
use schakel_proto::v1 as pb;
use tonic::Code;

/// A small log: reads by CAW, GGZ, police about persons p-victim / p-perp.
pub(crate) async fn seeded(db_url: &str) -> TestAudit {
    let app = spawn(db_url).await;
    let mut internal = app.internal();
    append(
        &mut internal,
        read_entry(
            CAW,
            "caw",
            "dossier-1",
            &["p-victim"],
            &["registration.summary", "persons.address"],
        ),
    )
    .await;
    append(
        &mut internal,
        read_entry(
            "org-ggz",
            "ggz",
            "dossier-1",
            &["p-victim"],
            &["ggz.clinical_notes"],
        ),
    )
    .await;
    append(
        &mut internal,
        read_entry(
            "org-politie",
            "politie",
            "dossier-1",
            &["p-perp"],
            &["police.interventions"],
        ),
    )
    .await;
    let mut contribution = read_entry(CAW, "caw", "dossier-1", &["p-victim"], &[]);
    contribution.action = pb::AuditAction::Contribute as i32;
    contribution.decision = pb::Decision::Granted as i32;
    contribution.fields_withheld.clear();
    contribution.fields_contributed = vec!["caw.support_plan".into()];
    append(&mut internal, contribution).await;
    let mut denied = read_entry("org-ocj", "ocj", "dossier-2", &["p-other"], &[]);
    denied.decision = pb::Decision::Denied as i32;
    denied.denial_reason = pb::AccessDenialReason::NotInCircle as i32;
    append(&mut internal, denied).await;
    app
}

#[tokio::test]
async fn privacy_officers_query_newest_first_and_every_query_is_logged() {
    for db in databases().await {
        let app = seeded(db.url()).await;
        let mut dpo = app.dpo_veilig_huis();
        let all = dpo
            .query(pb::QueryRequest::default())
            .await
            .unwrap()
            .into_inner();
        let indices: Vec<u64> = all.entries.iter().map(|e| e.index).collect();
        assert_eq!(indices, vec![4, 3, 2, 1, 0], "newest first");
        assert_eq!(all.audit_index, 5, "the query itself is entry 5");

        let by_dossier = dpo
            .query(pb::QueryRequest {
                dossier_id: "dossier-1".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(by_dossier.entries.len(), 4);
        let by_person = dpo
            .query(pb::QueryRequest {
                person_id: "p-perp".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            by_person
                .entries
                .iter()
                .map(|e| e.index)
                .collect::<Vec<_>>(),
            vec![2]
        );
        let denied = dpo
            .query(pb::QueryRequest {
                decisions: vec![pb::Decision::Denied as i32],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(denied.entries.len(), 1);
        let contributions = dpo
            .query(pb::QueryRequest {
                actions: vec![pb::AuditAction::Contribute as i32],
                organisation_id: CAW.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(contributions.entries.len(), 1);

        // Pages of two, newest first, no overlap. (The queries are logged as they
        // go, targeting the dossier too, so the filter names the actions.)
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = dpo
                .query(pb::QueryRequest {
                    dossier_id: "dossier-1".into(),
                    actions: vec![
                        pb::AuditAction::DossierRead as i32,
                        pb::AuditAction::Contribute as i32,
                    ],
                    page: Some(pb::PageRequest {
                        page_size: 2,
                        page_token: token,
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            seen.extend(page.entries.iter().map(|e| e.index));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen, vec![3, 2, 1, 0]);

        // The query entries are there, with the officer as actor.
        let queries = dpo
            .query(pb::QueryRequest {
                actions: vec![pb::AuditAction::AuditQuery as i32],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(queries.entries.len() >= 6);
        assert!(
            queries
                .entries
                .iter()
                .all(|e| e.actor.as_ref().unwrap().subject == "dpo-vh"),
            "{}",
            db.label()
        );
    }
}

#[tokio::test]
async fn a_partner_privacy_officer_sees_only_their_organisation() {
    for db in databases().await {
        let app = seeded(db.url()).await;
        let seen = app
            .dpo_caw()
            .query(pb::QueryRequest::default())
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert!(!seen.is_empty());
        assert!(
            seen.iter()
                .all(|e| e.actor.as_ref().unwrap().organisation_id == CAW),
            "{}",
            db.label()
        );
        // Asking for another organisation's entries gives nothing, not an error.
        let other = app
            .dpo_caw()
            .query(pb::QueryRequest {
                organisation_id: "org-ggz".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(other.entries.is_empty());
    }
}

#[tokio::test]
async fn nobody_else_queries_or_reports() {
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = seeded(db.url()).await;
    for (who, mut client) in [
        ("team member", app.team_member()),
        ("coordinator", app.coordinator()),
        ("service", app.internal()),
    ] {
        assert_eq!(
            client
                .query(pb::QueryRequest::default())
                .await
                .unwrap_err()
                .code(),
            Code::PermissionDenied,
            "{who}"
        );
        let report = pb::SubjectReportRequest {
            person_ids: vec!["p-victim".into()],
            ..Default::default()
        };
        assert_eq!(
            client.subject_report(report).await.unwrap_err().code(),
            Code::PermissionDenied,
            "{who}"
        );
    }
    let status = app
        .dpo_veilig_huis()
        .query(pb::QueryRequest {
            dossier_id: "Jan Peeters".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn subject_reports_apply_restrictions_and_are_logged_without_justifications() {
    for db in databases().await {
        let app = seeded(db.url()).await;
        let mut dpo = app.dpo_veilig_huis();
        let full = dpo
            .subject_report(pb::SubjectReportRequest {
                person_ids: vec!["p-victim".into()],
                request_reference: "AVG-2026-17".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let lines: Vec<(String, i32)> = full
            .disclosures
            .iter()
            .map(|d| (d.organisation_id.clone(), d.kind))
            .collect();
        assert_eq!(
            lines,
            vec![
                (CAW.to_owned(), pb::DisclosureKind::Received as i32),
                ("org-ggz".to_owned(), pb::DisclosureKind::Received as i32),
                (CAW.to_owned(), pb::DisclosureKind::Supplied as i32),
            ]
        );
        assert_eq!(
            full.disclosures[0].field_categories,
            vec!["persons", "registration"]
        );
        assert_eq!(full.disclosures[1].field_paths, vec!["ggz.clinical_notes"]);

        // The perpetrator asks what the victim's helpers know: restrict the CAW's part.
        let justification =
            "Disclosure would tell the pleger which services support the victim (file 17).";
        let restricted = dpo
            .subject_report(pb::SubjectReportRequest {
                person_ids: vec!["p-victim".into()],
                request_reference: "AVG-2026-18".into(),
                restrictions: vec![pb::ReportRestriction {
                    partner_types: vec!["caw".into()],
                    ground: pb::RestrictionGround::ProtectionOfOthers as i32,
                    justification: justification.into(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(restricted.disclosures.len(), 1);
        assert_eq!(restricted.disclosures[0].partner_type, "ggz");
        assert_eq!(restricted.restrictions[0].disclosures_removed, 2);

        // Both reports are in the log; the restriction by ground and hash only.
        let logged = dpo
            .query(pb::QueryRequest {
                actions: vec![pb::AuditAction::SubjectReport as i32],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert_eq!(logged.len(), 2);
        let entry = &logged[0];
        assert_eq!(entry.index, restricted.audit_index);
        let attribute = |key: &str| {
            entry
                .attributes
                .iter()
                .find(|a| a.key == key)
                .map(|a| a.value.clone())
        };
        assert_eq!(
            attribute("restriction.0.ground").as_deref(),
            Some("RESTRICTION_GROUND_PROTECTION_OF_OTHERS")
        );
        assert_eq!(
            attribute("restriction.0.justification_sha256")
                .unwrap()
                .len(),
            64
        );
        let encoded = format!("{entry:?}");
        assert!(
            !encoded.contains("pleger"),
            "the justification text is not logged"
        );

        // A restriction needs a ground and a reason.
        let status = dpo
            .subject_report(pb::SubjectReportRequest {
                person_ids: vec!["p-victim".into()],
                restrictions: vec![pb::ReportRestriction {
                    partner_types: vec!["caw".into()],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let status = dpo
            .subject_report(pb::SubjectReportRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{}", db.label());
    }
}

#[tokio::test]
async fn retention_drops_bodies_but_proofs_and_verification_still_work() {
    for db in databases().await {
        let start = Clock::System.now();
        let clock = Clock::manual(start);
        let app = spawn_with(db.url(), clock.clone()).await;
        let mut internal = app.internal();
        // Nine old entries and four new ones: with the harness's query
        // segments of 4, segments 0 and 1 hold only old entries, segment 2
        // (sealed before the last append commits) old and new ones.
        const OLD: u64 = 9;
        const NEW: u64 = 4;
        for i in 0..OLD {
            append(
                &mut internal,
                read_entry(
                    CAW,
                    "caw",
                    &format!("old{i}"),
                    &["p1"],
                    &["registration.summary"],
                ),
            )
            .await;
        }
        clock.advance(11 * 365 * 24 * 3600);
        for i in 0..NEW {
            append(
                &mut internal,
                read_entry(
                    CAW,
                    "caw",
                    &format!("new{i}"),
                    &["p1"],
                    &["registration.summary"],
                ),
            )
            .await;
        }
        assert_eq!(app.audit.apply_retention().await.unwrap(), OLD);
        // The frontier was recorded in the log before the bodies went.
        let size = OLD + NEW + 1;
        assert_eq!(app.checkpoint().await.tree_size, size);

        let leaves = app
            .dpo_veilig_huis()
            .get_entries(pb::GetEntriesRequest {
                start: 0,
                end: size,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .leaves;
        assert!(
            leaves[..OLD as usize]
                .iter()
                .all(|l| l.body_dropped && l.entry_bytes.is_empty() && l.leaf_hash.len() == 32)
        );
        assert!(leaves[OLD as usize..].iter().all(|l| !l.body_dropped));
        let record =
            schakel_audit::entry::decode(&leaves[(size - 1) as usize].entry_bytes).unwrap();
        assert_eq!(record.action, pb::AuditAction::RetentionApply as i32);
        assert_eq!(schakel_audit::entry::retention_frontier(&record), Some(OLD));
        let info = app
            .dpo_caw()
            .get_log_info(pb::GetLogInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.first_entry_with_body, OLD);
        assert_eq!(info.retention_frontier, OLD);
        internal
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                index: 1,
                tree_size: size,
            })
            .await
            .unwrap();
        let verified = app.verify(None).await.unwrap();
        assert_eq!(
            (
                verified.tree_size,
                verified.bodies_checked,
                verified.bodies_dropped,
                verified.retention_frontier
            ),
            // The GetEntries above is in the log too.
            (size + 1, NEW + 2, OLD, OLD),
            "{}",
            db.label()
        );
        // A partner's privacy officer sees the retention record too, and so
        // verifies the frontier for the dropped bodies outside their scope.
        let scoped = app.verify_as(app.dpo_caw(), None).await.unwrap();
        assert_eq!(scoped.retention_frontier, OLD, "{}", db.label());
        let found = app
            .dpo_veilig_huis()
            .query(pb::QueryRequest {
                actions: vec![pb::AuditAction::DossierRead as i32],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert_eq!(found.len() as u64, NEW);
        // The query index follows: the posting lists of the two segments
        // with no entry left are gone, and a query through the lists of the
        // partly dropped segment 2 finds just the kept entries.
        let stale: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM postings WHERE segment < 2")
            .fetch_one(app.audit.log().database().pool())
            .await
            .unwrap();
        assert_eq!(stale, 0, "{}", db.label());
        let by_person = app
            .dpo_veilig_huis()
            .query(pb::QueryRequest {
                person_id: "p1".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        let indices: Vec<u64> = by_person.iter().map(|e| e.index).collect();
        let kept: Vec<u64> = (OLD..OLD + NEW).rev().collect();
        assert_eq!(indices, kept, "{}", db.label());
    }
}

#[tokio::test]
async fn enum_filters_take_known_values_however_often_repeated() {
    for db in databases().await {
        let app = seeded(db.url()).await;
        let mut dpo = app.dpo_veilig_huis();
        // 100,000 repetitions used to fail INTERNAL (a bind variable each).
        let repeated = dpo
            .query(pb::QueryRequest {
                actions: vec![pb::AuditAction::Contribute as i32; 100_000],
                decisions: vec![pb::Decision::Granted as i32; 100_000],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(repeated.entries.len(), 1, "{}", db.label());
        for (actions, decisions, field) in [
            (vec![9_999], vec![], "actions"),
            (vec![0], vec![], "actions"),
            (vec![], vec![77], "decisions"),
        ] {
            let status = dpo
                .query(pb::QueryRequest {
                    actions,
                    decisions,
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert_eq!(schakel_kit::testing::bad_field(&status), field);
        }
    }
}
