//! Identity's queries. Each takes the pool or a transaction; SQL runs on both
//! SQLite and PostgreSQL.

use schakel_kit::{auth::Role, time::to_timestamp};
use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use crate::{
    error::{Error, Result},
    model::{roles_from_text, roles_to_text},
};

fn roles_proto(text: &str) -> anyhow::Result<Vec<i32>> {
    Ok(roles_from_text(text)?
        .into_iter()
        .map(|r| r.to_proto() as i32)
        .collect())
}

/// Maps a unique-constraint violation to ALREADY_EXISTS, anything else to internal.
fn unique_violation(err: sqlx::Error, message: impl FnOnce() -> String) -> Error {
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

// --- users -----------------------------------------------------------------

fn user(row: &AnyRow) -> Result<pb::User> {
    Ok(pb::User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        organisation_id: row.try_get("organisation_id")?,
        roles: roles_proto(&row.try_get::<String, _>("roles")?)?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: Some(to_timestamp(row.try_get("created_at")?)),
    })
}

const USER_COLUMNS: &str =
    "id, username, display_name, organisation_id, roles, disabled, created_at";

/// Inserts a user with its password hash.
pub async fn insert_user(
    conn: &mut AnyConnection,
    user: &pb::User,
    roles: &[Role],
    password_hash: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username, display_name, organisation_id, roles, password_hash, disabled, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(&user.display_name)
    .bind(&user.organisation_id)
    .bind(roles_to_text(roles))
    .bind(password_hash)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_violation(e, || format!("user name {} is taken", user.username)))?;
    Ok(())
}

/// Replaces a user's password hash (dev seeding only).
pub async fn set_password_hash(pool: &AnyPool, user_id: &str, hash: &str) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// One user.
pub async fn get_user(pool: &AnyPool, id: &str) -> Result<Option<pb::User>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user).transpose()
}

/// One user by login name.
pub async fn find_user_by_username(pool: &AnyPool, username: &str) -> Result<Option<pb::User>> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(user).transpose()
}

/// A user's login record: the user and its password hash.
pub async fn user_credentials(
    pool: &AnyPool,
    username: &str,
) -> Result<Option<(pb::User, String)>> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => Ok(Some((user(&row)?, row.try_get("password_hash")?))),
        None => Ok(None),
    }
}

/// Whether any enabled user holds `role`.
pub async fn any_user_with_role(pool: &AnyPool, role: Role) -> Result<bool> {
    let roles: Vec<String> = sqlx::query_scalar("SELECT roles FROM users WHERE disabled = 0")
        .fetch_all(pool)
        .await?;
    Ok(roles
        .iter()
        .any(|r| roles_from_text(r).is_ok_and(|list| list.contains(&role))))
}

/// Disables a user; returns false when there is no such user.
pub async fn disable_user(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE users SET disabled = 1, disabled_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A page of users after `after` (id order), optionally of one organisation.
pub async fn list_users(
    pool: &AnyPool,
    organisation_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<pb::User>> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id > $1 AND ($2 = '' OR organisation_id = $2) \
         ORDER BY id LIMIT $3"
    ))
    .bind(after)
    .bind(organisation_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(user).collect()
}

// --- service accounts ------------------------------------------------------

/// A service account with its stored secret hash.
pub struct ServiceAccountRecord {
    /// The account.
    pub account: pb::ServiceAccount,
    /// argon2id hash of the client secret, if it has one.
    pub secret_hash: Option<String>,
    /// Whether it may still obtain tokens.
    pub disabled: bool,
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

/// A service account by client id.
pub async fn find_service_account(
    pool: &AnyPool,
    client_id: &str,
) -> Result<Option<ServiceAccountRecord>> {
    let row = sqlx::query(
        "SELECT id, client_id, name, organisation_id, roles, secret_hash, certificate_subject, disabled, created_at \
         FROM service_accounts WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let subject: Option<String> = row.try_get("certificate_subject")?;
    Ok(Some(ServiceAccountRecord {
        account: pb::ServiceAccount {
            id: row.try_get("id")?,
            client_id: row.try_get("client_id")?,
            name: row.try_get("name")?,
            organisation_id: row.try_get("organisation_id")?,
            roles: roles_proto(&row.try_get::<String, _>("roles")?)?,
            certificate_subject: subject.unwrap_or_default(),
            created_at: Some(to_timestamp(row.try_get("created_at")?)),
        },
        secret_hash: row.try_get("secret_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
    }))
}
