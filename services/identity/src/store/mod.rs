//! Identity's queries. Each takes the pool or a transaction; SQL runs on both
//! SQLite and PostgreSQL.

use schakel_kit::time::to_timestamp;
use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use crate::{
    error::{Error, Result},
    model::roles_from_text,
};

mod service_accounts;
mod users;

pub use service_accounts::*;
pub use users::*;

pub(crate) fn roles_proto(text: &str) -> anyhow::Result<Vec<i32>> {
    Ok(roles_from_text(text)?
        .into_iter()
        .map(|r| r.to_proto() as i32)
        .collect())
}

/// Maps a unique-constraint violation to ALREADY_EXISTS, anything else to internal.
pub(crate) fn unique_violation(err: sqlx::Error, message: impl FnOnce() -> String) -> Error {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::AlreadyExists(message()),
        _ => err.into(),
    }
}

// --- partner types ---------------------------------------------------------

/// Whether a partner type code is registered.
pub async fn partner_type_exists(pool: &AnyPool, code: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM partner_types WHERE code = $1")
        .bind(code)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// Registers a partner type.
pub async fn insert_partner_type(
    conn: &mut AnyConnection,
    code: &str,
    description: &str,
) -> Result<pb::PartnerType> {
    sqlx::query("INSERT INTO partner_types (code, description, builtin) VALUES ($1, $2, 0)")
        .bind(code)
        .bind(description)
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_violation(e, || format!("partner type {code} already exists")))?;
    Ok(pb::PartnerType {
        code: code.into(),
        description: description.into(),
        builtin: false,
    })
}

/// All partner types, kernpartners first.
pub async fn list_partner_types(pool: &AnyPool) -> Result<Vec<pb::PartnerType>> {
    let rows = sqlx::query(
        "SELECT code, description, builtin FROM partner_types ORDER BY builtin DESC, code",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(pb::PartnerType {
                code: r.try_get("code")?,
                description: r.try_get("description")?,
                builtin: r.try_get::<i64, _>("builtin")? != 0,
            })
        })
        .collect()
}

// --- organisations ---------------------------------------------------------

fn organisation(row: &AnyRow) -> Result<pb::Organisation> {
    Ok(pb::Organisation {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        partner_type: row.try_get("partner_type")?,
        region: row.try_get("region")?,
        kbo_number: row.try_get("kbo_number")?,
        created_at: Some(to_timestamp(row.try_get("created_at")?)),
    })
}

const ORG_COLUMNS: &str = "id, name, partner_type, region, kbo_number, created_at";

/// Inserts an organisation.
pub async fn insert_organisation(
    conn: &mut AnyConnection,
    org: &pb::Organisation,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO organisations (id, name, partner_type, region, kbo_number, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&org.id)
    .bind(&org.name)
    .bind(&org.partner_type)
    .bind(&org.region)
    .bind(&org.kbo_number)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_violation(e, || "an organisation with this KBO number exists".into()))?;
    Ok(())
}

/// One organisation.
pub async fn get_organisation(pool: &AnyPool, id: &str) -> Result<Option<pb::Organisation>> {
    let row = sqlx::query(&format!(
        "SELECT {ORG_COLUMNS} FROM organisations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(organisation).transpose()
}

/// One organisation by KBO number.
pub async fn find_organisation_by_kbo(
    pool: &AnyPool,
    kbo: &str,
) -> Result<Option<pb::Organisation>> {
    let row = sqlx::query(&format!(
        "SELECT {ORG_COLUMNS} FROM organisations WHERE kbo_number = $1"
    ))
    .bind(kbo)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(organisation).transpose()
}

/// A page of organisations after `after` (id order), optionally filtered.
pub async fn list_organisations(
    pool: &AnyPool,
    partner_type: &str,
    region: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<pb::Organisation>> {
    let rows = sqlx::query(&format!(
        "SELECT {ORG_COLUMNS} FROM organisations \
         WHERE id > $1 AND ($2 = '' OR partner_type = $2) AND ($3 = '' OR region = $3) \
         ORDER BY id LIMIT $4"
    ))
    .bind(after)
    .bind(partner_type)
    .bind(region)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(organisation).collect()
}

/// Tokens voided since `since`: disabled users, and service accounts
/// disabled or given a new secret (see [`schakel_kit::auth::Revocation`]).
pub async fn revocations(pool: &AnyPool, since: i64) -> Result<Vec<schakel_kit::auth::Revocation>> {
    let rows = sqlx::query(
        "SELECT id, disabled_at AS at FROM users WHERE disabled_at > $1 \
         UNION ALL SELECT id, revoked_at AS at FROM service_accounts WHERE revoked_at > $1",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(schakel_kit::auth::Revocation {
                sub: row.try_get("id")?,
                iat_until: row.try_get("at")?,
            })
        })
        .collect()
}
