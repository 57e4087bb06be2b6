//! The need-to-know circle of a dossier.

use schakel_kit::time::to_timestamp;
use schakel_proto::v1 as pb;
use sqlx::{AnyConnection, Row};

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
