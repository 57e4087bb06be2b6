//! Service accounts: partner organisations' systems.

use schakel_kit::{auth::Role, time::to_timestamp};
use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use super::{roles_proto, unique_violation};
use crate::{error::Result, model::roles_to_text};

/// A service account with its stored secret hash.
pub struct ServiceAccountRecord {
    /// The account.
    pub account: pb::ServiceAccount,
    /// argon2id hash of the client secret, if it has one.
    pub secret_hash: Option<String>,
    /// Whether it may still obtain tokens.
    pub disabled: bool,
    /// Tokens issued at or before this second are revoked.
    pub revoked_at: Option<i64>,
}

/// Inserts a service account.
pub async fn insert_service_account(
    conn: &mut AnyConnection,
    account: &pb::ServiceAccount,
    roles: &[Role],
    secret_hash: Option<&str>,
    now: i64,
) -> Result<()> {
    let subject =
        (!account.certificate_subject.is_empty()).then_some(account.certificate_subject.as_str());
    sqlx::query(
        "INSERT INTO service_accounts \
         (id, client_id, name, organisation_id, roles, secret_hash, certificate_subject, disabled, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
    )
    .bind(&account.id)
    .bind(&account.client_id)
    .bind(&account.name)
    .bind(&account.organisation_id)
    .bind(roles_to_text(roles))
    .bind(secret_hash)
    .bind(subject)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_violation(e, || "client id taken".into()))?;
    Ok(())
}

const ACCOUNT_COLUMNS: &str = "id, client_id, name, organisation_id, roles, secret_hash, \
     certificate_subject, disabled, created_at, revoked_at";

fn record(row: &AnyRow) -> Result<ServiceAccountRecord> {
    let subject: Option<String> = row.try_get("certificate_subject")?;
    let secret_hash: Option<String> = row.try_get("secret_hash")?;
    let disabled = row.try_get::<i64, _>("disabled")? != 0;
    Ok(ServiceAccountRecord {
        account: pb::ServiceAccount {
            id: row.try_get("id")?,
            client_id: row.try_get("client_id")?,
            name: row.try_get("name")?,
            organisation_id: row.try_get("organisation_id")?,
            roles: roles_proto(&row.try_get::<String, _>("roles")?)?,
            certificate_subject: subject.unwrap_or_default(),
            created_at: Some(to_timestamp(row.try_get("created_at")?)),
            disabled,
            has_secret: secret_hash.is_some(),
        },
        secret_hash,
        disabled,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// A service account by client id.
pub async fn find_service_account(
    pool: &AnyPool,
    client_id: &str,
) -> Result<Option<ServiceAccountRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM service_accounts WHERE client_id = $1"
    ))
    .bind(client_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(record).transpose()
}

/// A service account by id.
pub async fn get_service_account(pool: &AnyPool, id: &str) -> Result<Option<pb::ServiceAccount>> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM service_accounts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(record).transpose()?.map(|r| r.account))
}

/// A page of service accounts after `after` (id order), optionally of one
/// organisation.
pub async fn list_service_accounts(
    pool: &AnyPool,
    organisation_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<pb::ServiceAccount>> {
    let rows = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM service_accounts \
         WHERE id > $1 AND ($2 = '' OR organisation_id = $2) ORDER BY id LIMIT $3"
    ))
    .bind(after)
    .bind(organisation_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok(record(r)?.account)).collect()
}

/// Disables a service account and voids its tokens from `now`; returns
/// false when there is no such account.
pub async fn disable_service_account(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let done =
        sqlx::query("UPDATE service_accounts SET disabled = 1, revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Replaces an enabled service account's secret and voids the tokens issued
/// until `now`; returns false when there is no such enabled account.
pub async fn reset_service_account_secret(
    conn: &mut AnyConnection,
    id: &str,
    secret_hash: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE service_accounts SET secret_hash = $1, revoked_at = $2 \
         WHERE id = $3 AND disabled = 0",
    )
    .bind(secret_hash)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
