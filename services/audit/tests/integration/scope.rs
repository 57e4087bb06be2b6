//! Verifying the tree is separate from reading entries: tiles for everyone,
//! bodies only within a privacy officer's scope, and every read of bodies is
//! itself in the log with its scope. Subject reports name each recipient.

use crate::{common::*, privacy::seeded};
use schakel_kit::testing::databases;
use schakel_proto::v1 as pb;
use schakel_tlog::leaf_hash;
use tonic::Code;

fn attribute<'a>(entry: &'a pb::AuditEntry, key: &str) -> &'a str {
    entry
        .attributes
        .iter()
        .find(|a| a.key == key)
        .map_or("", |a| a.value.as_str())
}

async fn newest(app: &TestAudit) -> pb::AuditEntry {
    app.audit.log().entries().await.unwrap().pop().unwrap()
}

#[tokio::test]
async fn a_partner_privacy_officer_reads_only_the_bodies_of_their_organisation() {
    for db in databases().await {
        let app = seeded(db.url()).await;
        let size = app.checkpoint().await.tree_size;
        let response = app
            .dpo_caw()
            .get_entries(pb::GetEntriesRequest {
                start: 0,
                end: size,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut shown = Vec::new();
        for leaf in &response.leaves {
            assert_eq!(leaf.leaf_hash.len(), 32, "every leaf hash is given");
            assert!(leaf.index_row.is_none());
            if leaf.body_withheld {
                assert!(leaf.entry_bytes.is_empty());
            } else {
                assert_eq!(leaf_hash(&leaf.entry_bytes).to_vec(), leaf.leaf_hash);
                let e = schakel_audit::entry::decode(&leaf.entry_bytes).unwrap();
                assert_eq!(e.actor.unwrap().organisation_id, CAW);
                shown.push(leaf.index);
            }
        }
        // The CAW's read (0) and contribution (3); not GGZ's, the police's or OCJ's.
        assert_eq!(shown, vec![0, 3], "{}", db.label());

        // The read itself is in the log, with its scope and counts.
        let record = newest(&app).await;
        assert_eq!(record.index, response.audit_index);
        assert_eq!(record.action, pb::AuditAction::EntriesRead as i32);
        assert_eq!(record.actor.as_ref().unwrap().subject, "dpo-caw");
        assert_eq!(attribute(&record, "scope"), "organisation");
        assert_eq!(attribute(&record, "bodies"), "2");
        assert_eq!(attribute(&record, "withheld"), "3");
        assert_eq!(record.target.unwrap().organisation_id, CAW);

        // The Veilig Huis's officer reads every body, and the stored index.
        let all = app
            .dpo_veilig_huis()
            .get_entries(pb::GetEntriesRequest {
                start: 0,
                end: size,
                with_index: true,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            all.leaves
                .iter()
                .all(|l| !l.body_withheld && l.index_row.is_some())
        );
        assert_eq!(attribute(&newest(&app).await, "scope"), "all");

        // The index is for the all-seeing only.
        for status in [
            app.dpo_caw()
                .get_entries(pb::GetEntriesRequest {
                    start: 0,
                    end: 1,
                    with_index: true,
                })
                .await
                .unwrap_err(),
            app.dpo_caw()
                .get_postings(pb::GetPostingsRequest::default())
                .await
                .unwrap_err(),
            app.team_member()
                .get_postings(pb::GetPostingsRequest::default())
                .await
                .unwrap_err(),
        ] {
            assert_eq!(status.code(), Code::PermissionDenied, "{}", db.label());
        }
        let status = app
            .dpo_veilig_huis()
            .get_postings(pb::GetPostingsRequest {
                segment: 0,
                page_token: "' OR 1=1 --".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().starts_with("page_token"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn anyone_verifies_the_tree_and_officers_verify_their_bodies() {
    for db in databases().await {
        let app = seeded(db.url()).await;
        let size = app.checkpoint().await.tree_size;
        // A partner system's professional: the tree only, from tiles.
        let tree = app.verify_as(app.team_member(), None).await.unwrap();
        assert_eq!(tree.scope, pb::BodyScope::None);
        assert_eq!((tree.tree_size, tree.bodies_checked), (size, 0));
        // The CAW's officer: the tree and their own bodies.
        let caw = app.verify_as(app.dpo_caw(), None).await.unwrap();
        assert_eq!(caw.scope, pb::BodyScope::Organisation);
        assert_eq!(caw.tree_size, size, "{}", db.label());
        assert_eq!((caw.bodies_checked, caw.bodies_withheld), (2, 3));
        assert!(!caw.index_checked);
        // The all-seeing auditor: everything, and the query index.
        let all = app.verify(None).await.unwrap();
        assert_eq!(all.scope, pb::BodyScope::All);
        assert!(all.index_checked);
        assert!(all.bodies_checked >= size, "{}", db.label());

        // Tiles: within the signed tree only, the right width.
        let mut anyone = app.team_member();
        let tile = anyone
            .get_tile(pb::GetTileRequest {
                level: 0,
                index: 0,
                width: 3,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(tile.hashes.len(), 3 * 32);
        let beyond = app.checkpoint().await.tree_size + 1;
        for (level, index, width, code) in [
            (0, 0, beyond as u32, Code::OutOfRange),
            (0, 0, 257, Code::InvalidArgument),
            (1, 0, 1, Code::OutOfRange),
            (9, u64::MAX, 256, Code::OutOfRange),
        ] {
            let status = anyone
                .get_tile(pb::GetTileRequest {
                    level,
                    index,
                    width,
                })
                .await
                .unwrap_err();
            assert_eq!(status.code(), code, "tile {level}/{index}/{width}");
        }
    }
}

#[tokio::test]
async fn subject_reports_name_recipients_and_keep_to_the_officers_scope() {
    for db in databases().await {
        let app = seeded(db.url()).await;
        let request = pb::SubjectReportRequest {
            person_ids: vec!["p-victim".into()],
            request_reference: "AVG-2026-20".into(),
            ..Default::default()
        };
        let chain = app
            .dpo_veilig_huis()
            .subject_report(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(chain.organisation_scope, "");
        let lines: Vec<(&str, &str, &str, i64)> = chain
            .disclosures
            .iter()
            .map(|d| {
                (
                    d.organisation_name.as_str(),
                    d.partner_type.as_str(),
                    d.purpose.as_str(),
                    d.time.unwrap().seconds,
                )
            })
            .collect();
        assert_eq!(lines.len(), 3, "{}", db.label());
        assert_eq!(lines[0].0, "CAW Oost-Brabant");
        assert_eq!(lines[1].0, "GGZ Kempen");
        assert!(lines.iter().all(|l| l.2 == "case_building" && l.3 > 0));
        assert_eq!(attribute(&newest(&app).await, "scope"), "all");

        // The CAW's officer answers for the CAW: its own two disclosures.
        let caw = app
            .dpo_caw()
            .subject_report(request)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(caw.organisation_scope, CAW);
        assert_eq!(caw.disclosures.len(), 2, "{}", db.label());
        assert!(caw.disclosures.iter().all(|d| d.organisation_id == CAW));
        let record = newest(&app).await;
        assert_eq!(record.action, pb::AuditAction::SubjectReport as i32);
        assert_eq!(attribute(&record, "scope"), "organisation");
        assert_eq!(attribute(&record, "disclosures"), "2");
    }
}
