//! The legal-basis tables (SQLite or PostgreSQL through `sqlx::Any`).
//!
//! Terms, approvals, revocations and informing details are stored as their
//! protobuf encoding; the columns beside them are what queries need.

use std::collections::{HashMap, HashSet};

use prost::Message;
use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use crate::{
    check::Time,
    model::{Agreement, Version},
};

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> anyhow::Result<M> {
    M::decode(bytes).map_err(|e| anyhow::anyhow!("stored {what} does not decode: {e}"))
}

fn version_from_row(row: &AnyRow) -> anyhow::Result<(String, Version)> {
    let terms: Vec<u8> = row.try_get("terms")?;
    let approval: Option<Vec<u8>> = row.try_get("approval")?;
    Ok((
        row.try_get("agreement_id")?,
        Version {
            version: u32::try_from(row.try_get::<i64, _>("version")?)?,
            terms: decode(&terms, "terms")?,
            approval: approval.map(|a| decode(&a, "approval")).transpose()?,
            approved_at: row.try_get("approved_at")?,
            change_summary: row.try_get("change_summary")?,
            edited_by: row
                .try_get::<Option<String>, _>("edited_by")?
                .map_or_else(|| row.try_get("created_by"), Ok)?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
    ))
}

fn agreement_from_row(row: &AnyRow) -> anyhow::Result<Agreement> {
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let revocation: Option<Vec<u8>> = row.try_get("revocation")?;
    let revocation = match (revoked_at, revocation) {
        (Some(at), Some(bytes)) => Some((at, decode(&bytes, "revocation")?)),
        _ => None,
    };
    Ok(Agreement {
        agreement_id: row.try_get("agreement_id")?,
        created_at: row.try_get("created_at")?,
        dossier_count: u32::try_from(row.try_get::<i64, _>("dossier_count")?)?,
        revocation,
        versions: Vec::new(),
    })
}

const AGREEMENT_COLUMNS: &str = "agreement_id, created_at, dossier_count, revoked_at, revocation";
const VERSION_COLUMNS: &str = "agreement_id, version, terms, approval, approved_at, \
     change_summary, created_by, edited_by, created_at, updated_at";

/// The counter every change to agreements or versions increments (by trigger).
pub async fn agreements_generation(pool: &AnyPool) -> anyhow::Result<i64> {
    let row = sqlx::query("SELECT generation FROM agreements_generation WHERE id = 1")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get(0)?)
}

/// Every agreement with its versions, ordered by id. The number of agreements
/// is small (one per district and network, a few versions each), so the
/// service reads them whole and decides in memory.
pub async fn all_agreements(pool: &AnyPool) -> anyhow::Result<Vec<Agreement>> {
    let rows = sqlx::query(&format!(
        "SELECT {AGREEMENT_COLUMNS} FROM agreements ORDER BY agreement_id"
    ))
    .fetch_all(pool)
    .await?;
    let mut agreements = rows
        .iter()
        .map(agreement_from_row)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rows = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM agreement_versions ORDER BY agreement_id, version"
    ))
    .fetch_all(pool)
    .await?;
    let mut versions: HashMap<String, Vec<Version>> = HashMap::new();
    for row in &rows {
        let (id, version) = version_from_row(row)?;
        versions.entry(id).or_default().push(version);
    }
    for agreement in &mut agreements {
        agreement.versions = versions.remove(&agreement.agreement_id).unwrap_or_default();
        anyhow::ensure!(
            !agreement.versions.is_empty(),
            "agreement {} has no versions",
            agreement.agreement_id
        );
    }
    Ok(agreements)
}

/// One agreement with its versions (inside a transaction or not).
pub async fn agreement(conn: &mut AnyConnection, id: &str) -> anyhow::Result<Option<Agreement>> {
    let Some(row) = sqlx::query(&format!(
        "SELECT {AGREEMENT_COLUMNS} FROM agreements WHERE agreement_id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let mut agreement = agreement_from_row(&row)?;
    let rows = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM agreement_versions WHERE agreement_id = $1 ORDER BY version"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        agreement.versions.push(version_from_row(row)?.1);
    }
    anyhow::ensure!(
        !agreement.versions.is_empty(),
        "agreement {id} has no versions"
    );
    Ok(Some(agreement))
}

/// Locks agreement `id` for the rest of the transaction (a no-op write: on
/// PostgreSQL it takes the row lock, on SQLite the database write lock), so
/// that concurrent changes to one agreement run one after the other. Returns
/// whether the agreement exists.
pub async fn lock_agreement(conn: &mut AnyConnection, id: &str) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE agreements SET latest_version = latest_version WHERE agreement_id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts a new agreement with its first (draft) version.
pub async fn insert_agreement(
    conn: &mut AnyConnection,
    id: &str,
    version: &Version,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO agreements (agreement_id, created_at, latest_version, dossier_count) \
         VALUES ($1, $2, 1, 0)",
    )
    .bind(id)
    .bind(version.created_at)
    .execute(&mut *conn)
    .await?;
    insert_version(conn, id, version).await
}

/// Inserts `version` (a new draft) of agreement `id`.
pub async fn insert_version(
    conn: &mut AnyConnection,
    id: &str,
    version: &Version,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO agreement_versions (agreement_id, version, terms, approval, approved_at, \
         valid_from, valid_until, change_summary, created_by, created_at, updated_at, edited_by) \
         VALUES ($1, $2, $3, NULL, NULL, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(i64::from(version.version))
    .bind(version.terms.encode_to_vec())
    .bind(version.valid_from())
    .bind(version.valid_until())
    .bind(&version.change_summary)
    .bind(&version.created_by)
    .bind(version.created_at)
    .bind(version.updated_at)
    .bind(&version.edited_by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Makes `new_version` the latest version, if `base_version` still is (so
/// that two concurrent amendments cannot both succeed). Returns whether it did.
pub async fn advance_latest(
    conn: &mut AnyConnection,
    id: &str,
    base_version: u32,
    new_version: u32,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE agreements SET latest_version = $1 WHERE agreement_id = $2 AND latest_version = $3 \
         AND revoked_at IS NULL",
    )
    .bind(i64::from(new_version))
    .bind(id)
    .bind(i64::from(base_version))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the terms of a draft version. Returns whether a draft was changed
/// (approved versions are immutable; the database refuses too).
pub async fn update_draft(
    conn: &mut AnyConnection,
    id: &str,
    version: &Version,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE agreement_versions SET terms = $1, valid_from = $2, valid_until = $3, \
         change_summary = $4, updated_at = $5, edited_by = $8 \
         WHERE agreement_id = $6 AND version = $7 AND approved_at IS NULL",
    )
    .bind(version.terms.encode_to_vec())
    .bind(version.valid_from())
    .bind(version.valid_until())
    .bind(&version.change_summary)
    .bind(version.updated_at)
    .bind(id)
    .bind(i64::from(version.version))
    .bind(&version.edited_by)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the approval of a draft version at `now`. Returns whether a draft
/// was approved.
pub async fn approve(
    conn: &mut AnyConnection,
    id: &str,
    version: u32,
    approval: &pb::ProsecutorApproval,
    now: Time,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE agreement_versions SET approval = $1, approved_at = $2, updated_at = $2 \
         WHERE agreement_id = $3 AND version = $4 AND approved_at IS NULL",
    )
    .bind(approval.encode_to_vec())
    .bind(now)
    .bind(id)
    .bind(i64::from(version))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes agreement `id` at `now`. Returns whether it was not revoked before.
pub async fn revoke(
    conn: &mut AnyConnection,
    id: &str,
    revocation: &pb::AgreementRevocation,
    now: Time,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE agreements SET revoked_at = $1, revocation = $2 \
         WHERE agreement_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(revocation.encode_to_vec())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The agreements a dossier is already counted against.
pub async fn counted_for(pool: &AnyPool, dossier_id: &str) -> anyhow::Result<HashSet<String>> {
    let rows = sqlx::query("SELECT agreement_id FROM counted_dossiers WHERE dossier_id = $1")
        .bind(dossier_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("agreement_id")?))
        .collect()
}

/// What counting a dossier did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Newly counted.
    Counted,
    /// It was counted before (nothing changed).
    AlreadyCounted,
    /// The cap is full, or the agreement was revoked meanwhile (nothing changed).
    Refused,
}

/// Counts `dossier_id` against agreement `id` under `version`, unless the cap
/// (`max`, 0 = none) is reached. The conditional UPDATE serialises concurrent
/// registrations on the agreement's row: the last place goes to one of them.
pub async fn count_dossier(
    conn: &mut AnyConnection,
    id: &str,
    version: u32,
    dossier_id: &str,
    max: u32,
    now: Time,
) -> anyhow::Result<Counted> {
    // Writes first, so that on SQLite the transaction takes the write lock at
    // once instead of failing to upgrade a read.
    let inserted = sqlx::query(
        "INSERT INTO counted_dossiers (agreement_id, dossier_id, version, counted_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (agreement_id, dossier_id) DO NOTHING",
    )
    .bind(id)
    .bind(dossier_id)
    .bind(i64::from(version))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(Counted::AlreadyCounted);
    }
    let room = sqlx::query(
        "UPDATE agreements SET dossier_count = dossier_count + 1 \
         WHERE agreement_id = $1 AND revoked_at IS NULL AND ($2 = 0 OR dossier_count < $2)",
    )
    .bind(id)
    .bind(i64::from(max))
    .execute(&mut *conn)
    .await?;
    if room.rows_affected() != 1 {
        // The caller rolls back, which removes the row inserted above.
        return Ok(Counted::Refused);
    }
    Ok(Counted::Counted)
}

/// Appends an informing record.
pub async fn insert_informing(
    conn: &mut AnyConnection,
    record: &pb::InformingRecord,
) -> anyhow::Result<()> {
    let details = record.details.clone().unwrap_or_default();
    sqlx::query(
        "INSERT INTO informing_records (record_id, dossier_id, person_id, state, details, \
         recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&record.record_id)
    .bind(&record.dossier_id)
    .bind(&record.person_id)
    .bind(i64::from(details.state))
    .bind(details.encode_to_vec())
    .bind(
        record
            .recorded_by
            .clone()
            .unwrap_or_default()
            .encode_to_vec(),
    )
    .bind(record.recorded_at.map_or(0, |t| t.seconds))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The informing records of a dossier, oldest first.
pub async fn informing_records(
    pool: &AnyPool,
    dossier_id: &str,
) -> anyhow::Result<Vec<pb::InformingRecord>> {
    let rows = sqlx::query(
        "SELECT record_id, dossier_id, person_id, details, recorded_by, recorded_at \
         FROM informing_records WHERE dossier_id = $1 ORDER BY seq",
    )
    .bind(dossier_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let details: Vec<u8> = row.try_get("details")?;
            let by: Vec<u8> = row.try_get("recorded_by")?;
            Ok(pb::InformingRecord {
                record_id: row.try_get("record_id")?,
                dossier_id: row.try_get("dossier_id")?,
                person_id: row.try_get("person_id")?,
                details: Some(decode(&details, "informing details")?),
                recorded_by: Some(decode(&by, "informing actor")?),
                recorded_at: Some(schakel_kit::time::to_timestamp(row.try_get("recorded_at")?)),
            })
        })
        .collect()
}
