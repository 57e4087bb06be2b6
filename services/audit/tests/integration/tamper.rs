//! Tampering with any stored entry, hash or checkpoint is detected, and the
//! verifier names the first bad index (the database is modified directly, as
//! an operator with database access could).

use crate::common::*;
use prost::Message;
use schakel_audit::verifier::VerifyError;
use schakel_kit::testing::databases;
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
        assert_eq!(verified.tree_size, 11);

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
