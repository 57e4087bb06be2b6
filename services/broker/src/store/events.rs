//! A dossier's history of phase and circle changes (each event sealed under
//! the dossier's key: the reasons are free text).

use sqlx::{AnyConnection, Row};

/// Appends a sealed event to a dossier's history.
pub async fn insert_event(
    conn: &mut AnyConnection,
    dossier_id: &str,
    event_id: &str,
    at: i64,
    sealed: &[u8],
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO dossier_events (event_id, dossier_id, at, sealed) VALUES ($1, $2, $3, $4)",
    )
    .bind(event_id)
    .bind(dossier_id)
    .bind(at)
    .bind(sealed.to_vec())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A dossier's sealed events, oldest first: (event id, sealed).
pub async fn events(
    conn: &mut AnyConnection,
    dossier_id: &str,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let rows = sqlx::query(
        "SELECT event_id, sealed FROM dossier_events WHERE dossier_id = $1 ORDER BY at, event_id",
    )
    .bind(dossier_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("event_id")?, r.try_get("sealed")?)))
        .collect()
}
