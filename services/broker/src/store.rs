//! The broker's tables (SQLite or PostgreSQL through `sqlx::Any`). Values are
//! stored sealed; no column holds personal data in clear.

use schakel_kit::time::to_timestamp;
use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use crate::keys::WrappedKey;

/// A dossier's row.
#[derive(Clone, Debug, PartialEq)]
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
}

const DOSSIER_COLUMNS: &str = "dossier_id, district, requested_track, track, phase, phase_since, \
     registered_at, registering_org, basis_agreement_id, basis_version, case_director_user, \
     case_director_org, case_director_at, case_director_by, updated_at, revision, key_id, wrapped_key";

fn dossier_from_row(row: &AnyRow) -> anyhow::Result<DossierRow> {
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

/// Moves a dossier from phase `from` to `to` (and sets the decided track
/// when given). Returns false when it is no longer in `from`.
pub async fn set_phase(
    conn: &mut AnyConnection,
    id: &str,
    from: i32,
    to: i32,
    track: Option<i32>,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE dossiers SET phase = $1, phase_since = $2, track = COALESCE($3, track), \
         closed_at = CASE WHEN $4 = 1 THEN $2 ELSE closed_at END \
         WHERE dossier_id = $5 AND phase = $6",
    )
    .bind(i64::from(to))
    .bind(now)
    .bind(track.map(i64::from))
    .bind(i64::from(crate::phase::is_final(
        pb::Phase::try_from(to).unwrap_or(pb::Phase::Unspecified),
    )))
    .bind(id)
    .bind(i64::from(from))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The circle of a dossier.
pub async fn participants(
    conn: &mut AnyConnection,
    id: &str,
) -> anyhow::Result<Vec<pb::DossierParticipant>> {
    let rows = sqlx::query(
        "SELECT organisation_id, partner_type, registrant, added_by, added_at FROM participants \
         WHERE dossier_id = $1 ORDER BY added_at, organisation_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(pb::DossierParticipant {
                organisation_id: r.try_get("organisation_id")?,
                partner_type: r.try_get("partner_type")?,
                registrant: r.try_get::<i64, _>("registrant")? != 0,
                added_by: r.try_get("added_by")?,
                added_at: Some(to_timestamp(r.try_get("added_at")?)),
            })
        })
        .collect()
}

/// Adds an organisation to the circle. Returns false when it was already in.
pub async fn add_participant(
    conn: &mut AnyConnection,
    id: &str,
    p: &pb::DossierParticipant,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO participants (dossier_id, organisation_id, partner_type, registrant, added_by, \
         added_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dossier_id, organisation_id) DO NOTHING",
    )
    .bind(id)
    .bind(&p.organisation_id)
    .bind(&p.partner_type)
    .bind(i64::from(p.registrant))
    .bind(&p.added_by)
    .bind(p.added_at.map_or(0, |t| t.seconds))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

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

/// Dossiers whose circle holds `org`, after `after` (id order), at most `limit`.
pub async fn dossiers_of(
    pool: &AnyPool,
    org: &str,
    after: &str,
    limit: i64,
) -> anyhow::Result<Vec<DossierRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {DOSSIER_COLUMNS} FROM dossiers d WHERE d.dossier_id > $1 AND d.wrapped_key IS NOT NULL \
         AND EXISTS (SELECT 1 FROM participants p WHERE p.dossier_id = d.dossier_id \
         AND p.organisation_id = $2) ORDER BY d.dossier_id LIMIT $3"
    ))
    .bind(after)
    .bind(org)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(dossier_from_row).collect()
}

/// A stored information request (the request itself sealed).
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRow {
    /// Id.
    pub request_id: String,
    /// Dossier.
    pub dossier_id: String,
    /// Asking organisation.
    pub from_org: String,
    /// Addressee.
    pub to_org: String,
    /// InformationRequestStatus.
    pub status: i32,
    /// Due.
    pub due_at: i64,
    /// Created.
    pub created_at: i64,
    /// The sealed InformationRequest.
    pub sealed: Vec<u8>,
}

fn request_from_row(r: &AnyRow) -> anyhow::Result<RequestRow> {
    Ok(RequestRow {
        request_id: r.try_get("request_id")?,
        dossier_id: r.try_get("dossier_id")?,
        from_org: r.try_get("from_org")?,
        to_org: r.try_get("to_org")?,
        status: i32::try_from(r.try_get::<i64, _>("status")?)?,
        due_at: r.try_get("due_at")?,
        created_at: r.try_get("created_at")?,
        sealed: r.try_get("sealed")?,
    })
}

const REQUEST_COLUMNS: &str =
    "request_id, dossier_id, from_org, to_org, status, due_at, created_at, sealed";

/// Stores a new request.
pub async fn insert_request(conn: &mut AnyConnection, r: &RequestRow) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO information_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&r.request_id)
    .bind(&r.dossier_id)
    .bind(&r.from_org)
    .bind(&r.to_org)
    .bind(i64::from(r.status))
    .bind(r.due_at)
    .bind(r.created_at)
    .bind(r.sealed.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One request.
pub async fn request(conn: &mut AnyConnection, id: &str) -> anyhow::Result<Option<RequestRow>> {
    let row = sqlx::query(&format!(
        "SELECT {REQUEST_COLUMNS} FROM information_requests WHERE request_id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(request_from_row).transpose()
}

/// Replaces a request's status and sealed form, if it still has status
/// `from`. Returns whether it did.
pub async fn update_request(
    conn: &mut AnyConnection,
    id: &str,
    from: i32,
    to: i32,
    sealed: &[u8],
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE information_requests SET status = $1, sealed = $2 WHERE request_id = $3 AND status = $4",
    )
    .bind(i64::from(to))
    .bind(sealed.to_vec())
    .bind(id)
    .bind(i64::from(from))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The requests sent by or addressed to `org`, newest first.
pub async fn requests_of(
    pool: &AnyPool,
    org: &str,
    inbox: bool,
    outbox: bool,
) -> anyhow::Result<Vec<RequestRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {REQUEST_COLUMNS} FROM information_requests \
         WHERE ($1 = 1 AND to_org = $2) OR ($3 = 1 AND from_org = $2) \
         ORDER BY created_at DESC, request_id DESC"
    ))
    .bind(i64::from(inbox))
    .bind(org)
    .bind(i64::from(outbox))
    .fetch_all(pool)
    .await?;
    rows.iter().map(request_from_row).collect()
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

/// Takes an organisation out of the circle (never the registrant). Returns
/// whether it was in.
pub async fn remove_participant(
    conn: &mut AnyConnection,
    id: &str,
    org: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "DELETE FROM participants WHERE dossier_id = $1 AND organisation_id = $2 AND registrant = 0",
    )
    .bind(id)
    .bind(org)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
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
    sqlx::query(
        "DELETE FROM person_lookup WHERE person_id IN (SELECT person_id FROM persons WHERE dossier_id = $1)",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
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
