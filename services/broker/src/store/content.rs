//! The client system and the contributions of a dossier (values sealed), and
//! the lookup hashes of persons.

use schakel_kit::time::to_timestamp;
use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, AnyPool, Row};

/// The persons of a dossier: pseudonymous id and role codes.
pub async fn persons(
    conn: &mut AnyConnection,
    id: &str,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let rows = sqlx::query(
        "SELECT person_id, roles FROM persons WHERE dossier_id = $1 ORDER BY added_at, person_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let roles: String = r.try_get("roles")?;
            Ok((
                r.try_get("person_id")?,
                roles
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ))
        })
        .collect()
}

/// Adds a person.
pub async fn insert_person(
    conn: &mut AnyConnection,
    dossier_id: &str,
    person_id: &str,
    roles: &[String],
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO persons (person_id, dossier_id, roles, added_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(person_id)
    .bind(dossier_id)
    .bind(roles.join(","))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A stored contribution (value still sealed).
#[derive(Clone, Debug, PartialEq)]
pub struct ContributionRow {
    /// The contribution as the API shows it, without its value.
    pub meta: pb::Contribution,
    /// The sealed value (None for a retraction).
    pub sealed: Option<Vec<u8>>,
}

/// The next sequence number of a dossier's contributions.
pub async fn next_seq(conn: &mut AnyConnection, id: &str) -> anyhow::Result<i64> {
    let row =
        sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM contributions WHERE dossier_id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(row.try_get::<i64, _>("s")? + 1)
}

/// Stores a contribution.
pub async fn insert_contribution(
    conn: &mut AnyConnection,
    dossier_id: &str,
    seq: i64,
    c: &ContributionRow,
) -> anyhow::Result<()> {
    let m = &c.meta;
    let optional = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    sqlx::query(
        "INSERT INTO contributions (contribution_id, dossier_id, seq, path, person_id, value, \
         source_org, source_type, author, contributed_at, purpose, supersedes, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&m.contribution_id)
    .bind(dossier_id)
    .bind(seq)
    .bind(&m.path)
    .bind(&m.person_id)
    .bind(c.sealed.clone())
    .bind(&m.source_organisation_id)
    .bind(&m.source_partner_type)
    .bind(&m.author)
    .bind(m.contributed_at.map_or(0, |t| t.seconds))
    .bind(&m.purpose)
    .bind(optional(&m.supersedes_contribution_id))
    .bind(optional(&m.information_request_id))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks `old` superseded by `new`, if `old` is a current contribution of
/// `org` to the same dossier, path and person. Returns whether it was.
pub async fn supersede(
    conn: &mut AnyConnection,
    dossier_id: &str,
    old: &str,
    new: &pb::Contribution,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE contributions SET superseded_by = $1 WHERE contribution_id = $2 AND dossier_id = $3 \
         AND source_org = $4 AND path = $5 AND person_id = $6 AND superseded_by IS NULL",
    )
    .bind(&new.contribution_id)
    .bind(old)
    .bind(dossier_id)
    .bind(&new.source_organisation_id)
    .bind(&new.path)
    .bind(&new.person_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every contribution of a dossier, oldest first.
pub async fn contributions(
    conn: &mut AnyConnection,
    id: &str,
) -> anyhow::Result<Vec<ContributionRow>> {
    let rows = sqlx::query(
        "SELECT contribution_id, path, person_id, value, source_org, source_type, author, \
         contributed_at, purpose, supersedes, superseded_by, request_id FROM contributions \
         WHERE dossier_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let text = |name: &str| -> anyhow::Result<String> {
                Ok(r.try_get::<Option<String>, _>(name)?.unwrap_or_default())
            };
            Ok(ContributionRow {
                meta: pb::Contribution {
                    contribution_id: r.try_get("contribution_id")?,
                    path: r.try_get("path")?,
                    person_id: r.try_get("person_id")?,
                    value: None,
                    source_organisation_id: r.try_get("source_org")?,
                    source_partner_type: r.try_get("source_type")?,
                    author: r.try_get("author")?,
                    contributed_at: Some(to_timestamp(r.try_get("contributed_at")?)),
                    purpose: r.try_get("purpose")?,
                    supersedes_contribution_id: text("supersedes")?,
                    superseded_by_contribution_id: text("superseded_by")?,
                    information_request_id: text("request_id")?,
                },
                sealed: r.try_get("value")?,
            })
        })
        .collect()
}

/// Records a lookup hash of a person.
pub async fn insert_lookup(
    conn: &mut AnyConnection,
    token: &[u8],
    person_id: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO person_lookup (token, person_id) VALUES ($1, $2) ON CONFLICT (token, person_id) DO NOTHING",
    )
    .bind(token.to_vec())
    .bind(person_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The (dossier, person) pairs with this lookup hash, in dossiers not erased
/// whose circle holds `org` (any circle when `org` is empty).
pub async fn find_by_token(
    pool: &AnyPool,
    token: &[u8],
    org: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT p.dossier_id, p.person_id FROM person_lookup l \
         JOIN persons p ON p.person_id = l.person_id \
         JOIN dossiers d ON d.dossier_id = p.dossier_id \
         WHERE l.token = $1 AND d.wrapped_key IS NOT NULL \
         AND ($2 = '' OR EXISTS (SELECT 1 FROM participants x WHERE x.dossier_id = d.dossier_id AND x.organisation_id = $2)) \
         ORDER BY p.dossier_id, p.person_id",
    )
    .bind(token.to_vec())
    .bind(org)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("dossier_id")?, r.try_get("person_id")?)))
        .collect()
}
