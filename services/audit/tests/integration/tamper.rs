//! Tampering with any stored entry, hash or checkpoint is detected, and the
//! verifier names the first bad index (the database is modified directly, as
//! an operator with database access could).

use crate::common::*;
use prost::Message;
use schakel_audit::verifier::VerifyError;
use schakel_kit::testing::databases;
use schakel_proto::v1 as pb;
use schakel_tlog::leaf_hash;

async fn log_of(size: u64, db_url: &str) -> TestAudit {
    let app = spawn(db_url).await;
    append_reads(&app, size).await;
    app
}

async fn body(app: &TestAudit, index: i64) -> Vec<u8> {
    sqlx::query_scalar("SELECT body FROM entries WHERE idx = $1")
        .bind(index)
        .fetch_one(app.audit.log().database().pool())
        .await
        .unwrap()
}

/// The entry at `index` with its purpose changed, re-encoded.
async fn altered_body(app: &TestAudit, index: i64) -> Vec<u8> {
    let mut entry = schakel_audit::entry::decode(&body(app, index).await).unwrap();
    entry.purpose = "follow_up".into();
    entry.encode_to_vec()
}

async fn exec(app: &TestAudit, sql: &str, blob: Vec<u8>, index: i64) {
    sqlx::query(sql)
        .bind(blob)
        .bind(index)
        .execute(app.audit.log().database().pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_altered_entry_body_is_pinpointed() {
    for db in databases().await {
        let app = log_of(10, db.url()).await;
        app.verify(None).await.unwrap();
        let altered = altered_body(&app, 5).await;
        exec(
            &app,
            "UPDATE entries SET body = $1 WHERE idx = $2",
            altered,
            5,
        )
        .await;
        let err = app.verify(None).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::Entry { index: 5, .. }),
            "{err} on {}",
            db.label()
        );
    }
}

#[tokio::test]
async fn an_altered_leaf_hash_is_pinpointed() {
    for db in databases().await {
        let app = log_of(10, db.url()).await;
        exec(
            &app,
            "UPDATE nodes SET hash = $1 WHERE level = 0 AND idx = $2",
            vec![7u8; 32],
            7,
        )
        .await;
        let err = app.verify(None).await.unwrap_err();
        assert_eq!(err.first_bad_index(), Some(7), "{err} on {}", db.label());
    }
}

#[tokio::test]
async fn a_consistently_rewritten_entry_breaks_the_signed_root() {
    for db in databases().await {
        let app = log_of(10, db.url()).await;
        // Rewrite the body and its leaf hash together: only the signature can tell.
        let altered = altered_body(&app, 4).await;
        let hash = leaf_hash(&altered).to_vec();
        exec(
            &app,
            "UPDATE entries SET body = $1 WHERE idx = $2",
            altered,
            4,
        )
        .await;
        exec(
            &app,
            "UPDATE nodes SET hash = $1 WHERE level = 0 AND idx = $2",
            hash,
            4,
        )
        .await;
        let err = app.verify(None).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::Root { first: 4, size: 5 }),
            "{err} on {}",
            db.label()
        );
    }
}

#[tokio::test]
async fn an_altered_checkpoint_is_detected() {
    for db in databases().await {
        let app = log_of(6, db.url()).await;
        let note: String = sqlx::query_scalar("SELECT note FROM checkpoints WHERE size = 6")
            .fetch_one(app.audit.log().database().pool())
            .await
            .unwrap();
        let mut lines: Vec<&str> = note.lines().collect();
        let forged_root = base64_of(&[9u8; 32]);
        lines[2] = &forged_root;
        let forged = format!("{}\n", lines.join("\n"));
        sqlx::query("UPDATE checkpoints SET note = $1 WHERE size = 6")
            .bind(forged)
            .execute(app.audit.log().database().pool())
            .await
            .unwrap();
        let err = app.verify(None).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::Checkpoint { size: 6, .. }),
            "{err} on {}",
            db.label()
        );
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_rolled_back_log_is_inconsistent_with_a_saved_checkpoint() {
    for db in databases().await {
        let app = log_of(8, db.url()).await;
        let saved = app.verify(None).await.unwrap().checkpoint_note;
        // The verifier's reads of bodies and postings are in the log too.
        let before = app.checkpoint().await.tree_size;
        // More entries: still consistent with what we saved.
        let mut internal = app.internal();
        for i in 0..3 {
            append(
                &mut internal,
                read_entry(CAW, "caw", &format!("e{i}"), &["p2"], &["plan.actions"]),
            )
            .await;
        }
        let verified = app.verify(Some(&saved)).await.unwrap();
        assert_eq!(verified.tree_size, before + 3);

        // An operator drops the newest entries and their checkpoints.
        let pool = app.audit.log().database().pool();
        for sql in [
            "DELETE FROM entries WHERE idx >= 5",
            "DELETE FROM nodes WHERE (level = 0 AND idx >= 5) OR (level = 1 AND idx >= 2) OR (level = 2 AND idx >= 1) OR level >= 3",
            "DELETE FROM checkpoints WHERE size > 5",
        ] {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        let err = app.verify(Some(&saved)).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::Inconsistent { size: 8, .. }),
            "{err} on {}",
            db.label()
        );
    }
}

#[tokio::test]
async fn the_service_refuses_to_start_on_a_tree_that_does_not_match_its_checkpoint() {
    for db in databases().await {
        let app = log_of(4, db.url()).await;
        // The right edge of the tree (what the writer continues from) is altered.
        exec(
            &app,
            "UPDATE nodes SET hash = $1 WHERE level = 2 AND idx = $2",
            vec![1u8; 32],
            0,
        )
        .await;
        let url = app.database_url.clone();
        let key = app.key.clone();
        drop(app);
        let result = schakel_audit::Audit::connect(
            &url,
            schakel_audit::AuditConfig::default(),
            key,
            schakel_kit::time::Clock::System,
        )
        .await;
        let err = result.err().expect("must refuse");
        assert!(
            format!("{err:#}").contains("does not match the latest signed checkpoint"),
            "{err:#}"
        );
    }
}

async fn run(app: &TestAudit, sql: &str) {
    sqlx::query(sql)
        .execute(app.audit.log().database().pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_deleted_body_row_in_the_middle_is_named() {
    for db in databases().await {
        let app = log_of(10, db.url()).await;
        run(&app, "DELETE FROM entries WHERE idx = 5").await;
        // Both the all-seeing auditor and the CAW's officer (whose entries
        // these are) see the gap: no retention frontier covers it.
        for verified in [
            app.verify(None).await,
            app.verify_as(app.dpo_caw(), None).await,
        ] {
            let err = verified.unwrap_err();
            assert!(
                matches!(&err, VerifyError::Entry { index: 5, reason } if reason.contains("retention frontier")),
                "{err} on {}",
                db.label()
            );
        }
    }
}

#[tokio::test]
async fn a_body_missing_above_the_recorded_frontier_is_named() {
    for db in databases().await {
        let start = schakel_kit::time::Clock::System.now();
        let clock = schakel_kit::time::Clock::manual(start);
        let app = spawn_with(db.url(), clock.clone()).await;
        append_reads(&app, 6).await;
        clock.advance(11 * 365 * 24 * 3600);
        append_reads(&app, 6).await;
        assert_eq!(app.audit.apply_retention().await.unwrap(), 6);
        app.verify(None).await.unwrap();
        // Below the frontier (6) a missing body is retention; at 7 it is not.
        run(&app, "DELETE FROM entries WHERE idx = 7").await;
        let err = app.verify(None).await.unwrap_err();
        assert_eq!(err.first_bad_index(), Some(7), "{err} on {}", db.label());
    }
}

#[tokio::test]
async fn a_blanked_dossier_column_is_named() {
    for db in databases().await {
        let app = log_of(10, db.url()).await;
        // Entry 9 is in the open query segment, entry 6 in a sealed one:
        // both are found by their dossier until the column is blanked.
        run(&app, "UPDATE entries SET dossier_id = '' WHERE idx = 9").await;
        let hidden = app
            .dpo_veilig_huis()
            .query(pb::QueryRequest {
                dossier_id: "d9".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert!(hidden.is_empty(), "the blanked column hides the entry");
        let err = app.verify(None).await.unwrap_err();
        assert!(
            matches!(&err, VerifyError::Index { index: 9, reason } if reason.contains("dossier")),
            "{err} on {}",
            db.label()
        );
        run(&app, "UPDATE entries SET dossier_id = '' WHERE idx = 6").await;
        let err = app.verify(None).await.unwrap_err();
        assert_eq!(err.first_bad_index(), Some(6), "{err} on {}", db.label());
    }
}

#[tokio::test]
async fn a_deleted_posting_row_is_named() {
    for db in databases().await {
        let app = log_of(10, db.url()).await;
        app.verify(None).await.unwrap();
        // Segment 1 (entries 4..8) is sealed: dossier d5 is found through
        // its posting list, until that row is deleted.
        run(
            &app,
            "DELETE FROM postings WHERE segment = 1 AND kind = 'd' AND key = 'd5'",
        )
        .await;
        let hidden = app
            .dpo_veilig_huis()
            .query(pb::QueryRequest {
                dossier_id: "d5".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert!(hidden.is_empty(), "the deleted posting hides the entry");
        let err = app.verify(None).await.unwrap_err();
        assert!(
            matches!(&err, VerifyError::Index { index: 5, reason } if reason.contains("segment 1")),
            "{err} on {}",
            db.label()
        );
        // A scoped officer cannot check the index, and is not told it is fine.
        let scoped = app.verify_as(app.dpo_caw(), None).await.unwrap();
        assert!(!scoped.index_checked);
    }
}
