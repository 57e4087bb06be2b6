//! Retention: entry bodies are dropped after `audit.retention`, leaf and
//! subtree hashes stay. The frontier (every entry below it is older than the
//! cutoff) is recorded in the log itself, durably, before any body goes: a
//! body missing at or above the highest recorded frontier is then evidence
//! of tampering (see the verifier).

use schakel_proto::v1 as pb;
use sqlx::AnyPool;

use crate::{AuditLog, entry, store};

/// The first index whose entry is at or after `cutoff` (the tree size when
/// none is): the writer never goes back in time, so every entry below it is
/// older.
async fn first_at_or_after(pool: &AnyPool, cutoff: i64) -> sqlx::Result<u64> {
    let first: Option<i64> = sqlx::query_scalar("SELECT MIN(idx) FROM entries WHERE time >= $1")
        .bind(cutoff)
        .fetch_one(pool)
        .await?;
    match first {
        Some(first) => Ok(first as u64),
        None => store::tree_size(pool).await,
    }
}

/// Drops the bodies (and their query rows) of the entries below `frontier`;
/// returns how many.
async fn drop_bodies_below(pool: &AnyPool, frontier: u64) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM entries WHERE idx < $1")
        .bind(frontier as i64)
        .execute(&mut *tx)
        .await?;
    // Postings of segments wholly below the frontier go too (a partly
    // dropped segment keeps its postings; its dropped entries just no longer
    // match).
    sqlx::query(
        "DELETE FROM postings WHERE segment < \
         $1 / (SELECT COALESCE(MAX(segment_size), 1) FROM sealed_segments)",
    )
    .bind(frontier as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// The body of the newest retention record, if any. The action is written
/// into the SQL (not bound) so that the partial index `entries_retention`
/// answers it without a scan of the entries.
async fn newest_record(pool: &AnyPool) -> sqlx::Result<Option<Vec<u8>>> {
    let sql = format!(
        "SELECT body FROM entries WHERE action = {} AND body IS NOT NULL ORDER BY idx DESC LIMIT 1",
        pb::AuditAction::RetentionApply as i32
    );
    sqlx::query_scalar(&sql).fetch_optional(pool).await
}

impl AuditLog {
    /// Drops the bodies of entries older than `retention_secs`, after
    /// recording the frontier in the log; how many bodies were dropped.
    pub async fn apply_retention(&self, retention_secs: i64) -> anyhow::Result<u64> {
        let cutoff = self.clock().now() - retention_secs;
        let pool = self.database().pool();
        let frontier = first_at_or_after(pool, cutoff).await?;
        if frontier <= self.first_with_body().await? {
            return Ok(0);
        }
        let record = schakel_kit::audit::entry(
            pb::Actor {
                subject: "audit".into(),
                kind: pb::PrincipalKind::InternalService as i32,
                ..Default::default()
            },
            pb::AuditAction::RetentionApply,
            pb::Decision::Granted,
            "audit",
            &[
                ("frontier", &frontier.to_string()),
                ("cutoff", &cutoff.to_string()),
            ],
        );
        self.append(record, schakel_kit::audit::new_append_id())
            .await
            .map_err(|e| anyhow::anyhow!("recording the retention frontier: {e}"))?;
        Ok(drop_bodies_below(pool, frontier).await?)
    }

    /// The highest retention frontier the log records (0 when none).
    pub async fn retention_frontier(&self) -> anyhow::Result<u64> {
        let newest = newest_record(self.database().pool()).await?;
        Ok(newest
            .and_then(|body| entry::decode(&body).ok())
            .and_then(|e| entry::retention_frontier(&e))
            .unwrap_or(0))
    }
}
