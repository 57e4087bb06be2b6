//! The policy versions table (SQLite or PostgreSQL through `sqlx::Any`).

use schakel_kit::time::to_timestamp;
use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

/// A stored version.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredVersion {
    /// The version number.
    pub version: u64,
    /// Its status.
    pub status: pb::PolicyVersionStatus,
    /// The version it was proposed against.
    pub base_version: u64,
    /// What it is for.
    pub description: String,
    /// The files.
    pub document: pb::PolicyDocument,
    /// SHA-256 of the files.
    pub content_sha256: Vec<u8>,
    /// Who proposed it, when.
    pub proposed_by: String,
    /// When proposed.
    pub proposed_at: i64,
    /// Who approved or rejected it.
    pub decided_by: String,
    /// When approved or rejected.
    pub decided_at: Option<i64>,
    /// Why rejected.
    pub rejection_reason: String,
    /// When it became active.
    pub activated_at: Option<i64>,
}

fn status_code(status: pb::PolicyVersionStatus) -> &'static str {
    match status {
        pb::PolicyVersionStatus::Proposed => "proposed",
        pb::PolicyVersionStatus::Active => "active",
        pb::PolicyVersionStatus::Superseded => "superseded",
        pb::PolicyVersionStatus::Rejected => "rejected",
        pb::PolicyVersionStatus::Stale => "stale",
        pb::PolicyVersionStatus::Unspecified => "unspecified",
    }
}

fn status_from(code: &str) -> anyhow::Result<pb::PolicyVersionStatus> {
    Ok(match code {
        "proposed" => pb::PolicyVersionStatus::Proposed,
        "active" => pb::PolicyVersionStatus::Active,
        "superseded" => pb::PolicyVersionStatus::Superseded,
        "rejected" => pb::PolicyVersionStatus::Rejected,
        "stale" => pb::PolicyVersionStatus::Stale,
        other => anyhow::bail!("unknown stored status {other}"),
    })
}

impl StoredVersion {
    /// The API form, without files and fields (as in lists).
    pub fn summary(&self) -> pb::PolicyVersion {
        pb::PolicyVersion {
            version: self.version,
            status: self.status as i32,
            base_version: self.base_version,
            description: self.description.clone(),
            content_sha256: self.content_sha256.clone(),
            proposed_by: self.proposed_by.clone(),
            proposed_at: Some(to_timestamp(self.proposed_at)),
            decided_by: self.decided_by.clone(),
            decided_at: self.decided_at.map(to_timestamp),
            rejection_reason: self.rejection_reason.clone(),
            activated_at: self.activated_at.map(to_timestamp),
            document: None,
            fields: vec![],
        }
    }
}

const COLUMNS: &str = "version, status, base_version, description, content_sha256, model_conf, \
     policy_csv, fields_csv, proposed_by, proposed_at, decided_by, decided_at, rejection_reason, \
     activated_at";

fn from_row(row: &AnyRow) -> anyhow::Result<StoredVersion> {
    Ok(StoredVersion {
        version: u64::try_from(row.try_get::<i64, _>("version")?)?,
        status: status_from(&row.try_get::<String, _>("status")?)?,
        base_version: u64::try_from(row.try_get::<i64, _>("base_version")?)?,
        description: row.try_get("description")?,
        document: pb::PolicyDocument {
            model_conf: row.try_get("model_conf")?,
            policy_csv: row.try_get("policy_csv")?,
            fields_csv: row.try_get("fields_csv")?,
        },
        content_sha256: row.try_get("content_sha256")?,
        proposed_by: row.try_get("proposed_by")?,
        proposed_at: row.try_get("proposed_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        rejection_reason: row.try_get("rejection_reason")?,
        activated_at: row.try_get("activated_at")?,
    })
}

/// Inserts a version. Returns false when the version number is taken.
pub async fn insert(conn: &mut AnyConnection, v: &StoredVersion) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO policy_versions (version, status, active, base_version, description, \
         content_sha256, model_conf, policy_csv, fields_csv, proposed_by, proposed_at, \
         decided_by, decided_at, rejection_reason, activated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (version) DO NOTHING",
    )
    .bind(v.version as i64)
    .bind(status_code(v.status))
    .bind((v.status == pb::PolicyVersionStatus::Active).then_some(1_i64))
    .bind(v.base_version as i64)
    .bind(&v.description)
    .bind(v.content_sha256.clone())
    .bind(&v.document.model_conf)
    .bind(&v.document.policy_csv)
    .bind(&v.document.fields_csv)
    .bind(&v.proposed_by)
    .bind(v.proposed_at)
    .bind(&v.decided_by)
    .bind(v.decided_at)
    .bind(&v.rejection_reason)
    .bind(v.activated_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One version.
pub async fn get(conn: &mut AnyConnection, version: u64) -> anyhow::Result<Option<StoredVersion>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM policy_versions WHERE version = $1"
    ))
    .bind(version as i64)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The number of the active version, if any.
pub async fn active_version(pool: &AnyPool) -> anyhow::Result<Option<u64>> {
    let row = sqlx::query("SELECT version FROM policy_versions WHERE active = 1")
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok(u64::try_from(r.try_get::<i64, _>("version")?)?))
        .transpose()
}

/// The highest version number (0 when there is none).
pub async fn max_version(conn: &mut AnyConnection) -> anyhow::Result<u64> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM policy_versions")
        .fetch_one(&mut *conn)
        .await?;
    Ok(u64::try_from(row.try_get::<i64, _>("v")?)?)
}

/// Versions below `before` (0 = all), newest first, with one of `statuses`
/// (empty = any), at most `limit`.
pub async fn list(
    pool: &AnyPool,
    statuses: &[pb::PolicyVersionStatus],
    before: u64,
    limit: i64,
) -> anyhow::Result<Vec<StoredVersion>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM policy_versions WHERE ($1 = 0 OR version < $1) \
         ORDER BY version DESC"
    ))
    .bind(before as i64)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let v = from_row(row)?;
        if statuses.is_empty() || statuses.contains(&v.status) {
            out.push(v);
            if out.len() as i64 == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Takes the lock that serialises lifecycle changes (a no-op write on the
/// active row: on PostgreSQL its row lock, on SQLite the write lock).
pub async fn lock(conn: &mut AnyConnection) -> anyhow::Result<()> {
    sqlx::query("UPDATE policy_versions SET active = active WHERE active = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Makes proposed `version` active at `now`: the active one is superseded,
/// every other proposal goes stale. Returns whether `version` was proposed.
pub async fn activate(
    conn: &mut AnyConnection,
    version: u64,
    by: &str,
    now: i64,
) -> anyhow::Result<bool> {
    sqlx::query("UPDATE policy_versions SET status = 'superseded', active = NULL WHERE active = 1")
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query(
        "UPDATE policy_versions SET status = 'active', active = 1, decided_by = $1, \
         decided_at = $2, activated_at = $2 WHERE version = $3 AND status = 'proposed'",
    )
    .bind(by)
    .bind(now)
    .bind(version as i64)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE policy_versions SET status = 'stale' WHERE status = 'proposed'")
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Marks proposed `version` stale.
pub async fn mark_stale(conn: &mut AnyConnection, version: u64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE policy_versions SET status = 'stale' WHERE version = $1 AND status = 'proposed'",
    )
    .bind(version as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Rejects proposed `version`. Returns whether it was proposed.
pub async fn reject(
    conn: &mut AnyConnection,
    version: u64,
    by: &str,
    reason: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE policy_versions SET status = 'rejected', decided_by = $1, decided_at = $2, \
         rejection_reason = $3 WHERE version = $4 AND status = 'proposed'",
    )
    .bind(by)
    .bind(now)
    .bind(reason)
    .bind(version as i64)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
