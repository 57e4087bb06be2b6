//! Users: people who log in.

use schakel_kit::{auth::Role, time::to_timestamp};
use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use super::{roles_proto, unique_violation};
use crate::{
    error::Result,
    model::{roles_from_text, roles_to_text},
};

fn user(row: &AnyRow) -> Result<pb::User> {
    Ok(pb::User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        organisation_id: row.try_get("organisation_id")?,
        roles: roles_proto(&row.try_get::<String, _>("roles")?)?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: Some(to_timestamp(row.try_get("created_at")?)),
        pending_approval: row.try_get::<i64, _>("pending_approval")? != 0,
        created_by: row
            .try_get::<Option<String>, _>("created_by")?
            .unwrap_or_default(),
        approved_by: row
            .try_get::<Option<String>, _>("approved_by")?
            .unwrap_or_default(),
    })
}

const USER_COLUMNS: &str = "id, username, display_name, organisation_id, roles, disabled, \
     created_at, pending_approval, created_by, approved_by";

/// Inserts a user with its password hash (pending approval and creator as
/// `user` says).
pub async fn insert_user(
    conn: &mut AnyConnection,
    user: &pb::User,
    roles: &[Role],
    password_hash: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username, display_name, organisation_id, roles, password_hash, \
         disabled, created_at, pending_approval, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(&user.display_name)
    .bind(&user.organisation_id)
    .bind(roles_to_text(roles))
    .bind(password_hash)
    .bind(now)
    .bind(i64::from(user.pending_approval))
    .bind((!user.created_by.is_empty()).then_some(user.created_by.as_str()))
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

/// How many enabled, approved users hold `role`.
pub async fn count_users_with_role(pool: &AnyPool, role: Role) -> Result<usize> {
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT roles FROM users WHERE disabled = 0 AND pending_approval = 0")
            .fetch_all(pool)
            .await?;
    Ok(roles
        .iter()
        .filter(|r| roles_from_text(r).is_ok_and(|list| list.contains(&role)))
        .count())
}

/// Approves a pending user by `approver`; returns false when the user is not
/// (or no longer) pending.
pub async fn approve_user(conn: &mut AnyConnection, id: &str, approver: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET pending_approval = 0, approved_by = $1 \
         WHERE id = $2 AND pending_approval = 1 AND disabled = 0",
    )
    .bind(approver)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Disables a user; returns false when there is no such user.
pub async fn disable_user(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET disabled = 1, disabled_at = COALESCE(disabled_at, $1) WHERE id = $2",
    )
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
