//! The broker's tables (SQLite or PostgreSQL through `sqlx::Any`). Values are
//! stored sealed; no column holds personal data in clear.

use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use crate::keys::WrappedKey;

mod circle;
mod content;
mod events;
mod figures;
mod listing;
mod notices;
mod replies;
mod requests;

pub use circle::*;
pub use content::*;
pub use events::*;
pub use figures::*;
pub use listing::*;
pub use notices::*;
pub use replies::*;
pub use requests::*;

/// A dossier's row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DossierRow {
    /// Opaque id.
    pub dossier_id: String,
    /// Judicial district.
    pub district: String,
    /// Track asked for.
    pub requested_track: i32,
    /// Track decided (0 before assessment).
    pub track: i32,
    /// Current phase.
    pub phase: i32,
    /// Since when.
    pub phase_since: i64,
    /// When registered.
    pub registered_at: i64,
    /// The registering organisation.
    pub registering_org: String,
    /// The agreement it was registered under.
    pub basis: pb::LegalBasisRef,
    /// The casusregisseur (user id, organisation id, when, by whom).
    pub case_director: Option<(String, String, i64, String)>,
    /// Last change.
    pub updated_at: i64,
    /// Increases with every change.
    pub revision: i64,
    /// The data key, sealed (None once erased).
    pub key: Option<WrappedKey>,
    /// In follow_up: the six-month check date.
    pub follow_up_check_at: Option<i64>,
    /// Once closed or not retained.
    pub closed_at: Option<i64>,
    /// When the decided track started.
    pub track_since: Option<i64>,
    /// The next planned track review.
    pub review_due_at: Option<i64>,
    /// The earliest review date of a deferred informing.
    pub informing_review_at: Option<i64>,
}

pub(super) const DOSSIER_COLUMNS: &str = "dossier_id, district, requested_track, track, phase, phase_since, \
     registered_at, registering_org, basis_agreement_id, basis_version, case_director_user, \
     case_director_org, case_director_at, case_director_by, updated_at, revision, key_id, wrapped_key, \
     follow_up_check_at, closed_at, track_since, review_due_at, informing_review_at";

pub(super) fn dossier_from_row(row: &AnyRow) -> anyhow::Result<DossierRow> {
    let int =
        |name: &str| -> anyhow::Result<i32> { Ok(i32::try_from(row.try_get::<i64, _>(name)?)?) };
    let director: Option<String> = row.try_get("case_director_user")?;
    let key_id: Option<String> = row.try_get("key_id")?;
    let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key")?;
    Ok(DossierRow {
        dossier_id: row.try_get("dossier_id")?,
        district: row.try_get("district")?,
        requested_track: int("requested_track")?,
        track: int("track")?,
        phase: int("phase")?,
        phase_since: row.try_get("phase_since")?,
        registered_at: row.try_get("registered_at")?,
        registering_org: row.try_get("registering_org")?,
        basis: pb::LegalBasisRef {
            agreement_id: row.try_get("basis_agreement_id")?,
            agreement_version: u32::try_from(row.try_get::<i64, _>("basis_version")?)?,
        },
        case_director: match director {
            Some(user) => Some((
                user,
                row.try_get::<Option<String>, _>("case_director_org")?
                    .unwrap_or_default(),
                row.try_get::<Option<i64>, _>("case_director_at")?
                    .unwrap_or_default(),
                row.try_get::<Option<String>, _>("case_director_by")?
                    .unwrap_or_default(),
            )),
            None => None,
        },
        updated_at: row.try_get("updated_at")?,
        revision: row.try_get("revision")?,
        key: key_id
            .zip(wrapped)
            .map(|(key_id, sealed)| WrappedKey { key_id, sealed }),
        follow_up_check_at: row.try_get("follow_up_check_at")?,
        closed_at: row.try_get("closed_at")?,
        track_since: row.try_get("track_since")?,
        review_due_at: row.try_get("review_due_at")?,
        informing_review_at: row.try_get("informing_review_at")?,
    })
}

/// Inserts a new dossier.
pub async fn insert_dossier(
    conn: &mut AnyConnection,
    d: &DossierRow,
    idempotency_key: &str,
) -> anyhow::Result<()> {
    let key = d
        .key
        .clone()
        .ok_or_else(|| anyhow::anyhow!("a new dossier has a key"))?;
    sqlx::query(
        "INSERT INTO dossiers (dossier_id, district, requested_track, track, phase, phase_since, \
         registered_at, registering_org, basis_agreement_id, basis_version, updated_at, revision, \
         idempotency_key, key_id, wrapped_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&d.dossier_id)
    .bind(&d.district)
    .bind(i64::from(d.requested_track))
    .bind(i64::from(d.track))
    .bind(i64::from(d.phase))
    .bind(d.phase_since)
    .bind(d.registered_at)
    .bind(&d.registering_org)
    .bind(&d.basis.agreement_id)
    .bind(i64::from(d.basis.agreement_version))
    .bind(d.updated_at)
    .bind(d.revision)
    .bind(idempotency_key)
    .bind(key.key_id)
    .bind(key.sealed)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The dossier an organisation registered with this retry key.
pub async fn by_idempotency_key(
    pool: &AnyPool,
    org: &str,
    key: &str,
) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT dossier_id FROM dossiers WHERE registering_org = $1 AND idempotency_key = $2",
    )
    .bind(org)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok(r.try_get("dossier_id")?)).transpose()
}

/// One dossier.
pub async fn dossier(conn: &mut AnyConnection, id: &str) -> anyhow::Result<Option<DossierRow>> {
    let row = sqlx::query(&format!(
        "SELECT {DOSSIER_COLUMNS} FROM dossiers WHERE dossier_id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(dossier_from_row).transpose()
}

/// Locks a dossier for a change (a no-op write) and bumps its revision.
/// Returns false when there is no such dossier.
pub async fn touch(conn: &mut AnyConnection, id: &str, now: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE dossiers SET revision = revision + 1, updated_at = $1 WHERE dossier_id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a dossier from phase `from` to the phase of `to`, with the dates
/// that come with it (track, its start and review, follow-up check, close),
/// as `to` holds them. Returns false when it is no longer in `from`.
pub async fn set_phase(
    conn: &mut AnyConnection,
    from: i32,
    to: &DossierRow,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE dossiers SET phase = $1, phase_since = $2, track = $3, track_since = $4, \
         review_due_at = $5, follow_up_check_at = $6, closed_at = $7 \
         WHERE dossier_id = $8 AND phase = $9",
    )
    .bind(i64::from(to.phase))
    .bind(to.phase_since)
    .bind(i64::from(to.track))
    .bind(to.track_since)
    .bind(to.review_due_at)
    .bind(to.follow_up_check_at)
    .bind(to.closed_at)
    .bind(&to.dossier_id)
    .bind(i64::from(from))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Appoints the casusregisseur of a dossier.
pub async fn set_case_director(
    conn: &mut AnyConnection,
    id: &str,
    user: &str,
    org: &str,
    by: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE dossiers SET case_director_user = $1, case_director_org = $2, \
         case_director_at = $3, case_director_by = $4 WHERE dossier_id = $5",
    )
    .bind(user)
    .bind(org)
    .bind(now)
    .bind(by)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Crypto-shreds a dossier: its wrapped key, its sealed values and requests
/// and its lookup hashes go. Returns false when it was erased before.
pub async fn erase(conn: &mut AnyConnection, id: &str, now: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE dossiers SET key_id = NULL, wrapped_key = NULL, erased_at = $1, revision = revision + 1 \
         WHERE dossier_id = $2 AND wrapped_key IS NOT NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE contributions SET value = NULL WHERE dossier_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE information_requests SET sealed = $1 WHERE dossier_id = $2")
        .bind(Vec::<u8>::new())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for statement in [
        "DELETE FROM person_lookup WHERE person_id IN (SELECT person_id FROM persons WHERE dossier_id = $1)",
        "DELETE FROM replies WHERE dossier_id = $1",
        "DELETE FROM dossier_events WHERE dossier_id = $1",
    ] {
        sqlx::query(statement).bind(id).execute(&mut *conn).await?;
    }
    Ok(true)
}

/// Dossiers closed (or not retained) at or before `cutoff` and not erased yet.
pub async fn closed_before(pool: &AnyPool, cutoff: i64) -> anyhow::Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT dossier_id FROM dossiers WHERE closed_at IS NOT NULL AND closed_at <= $1 \
         AND wrapped_key IS NOT NULL ORDER BY dossier_id",
    )
    .bind(cutoff)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("dossier_id")?)).collect()
}
