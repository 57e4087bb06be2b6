//! A dossier's history of phase and circle changes (each event sealed under
//! the dossier's key: the reasons are free text).

use sqlx::{AnyConnection, Row};

/// Appends a sealed event to a dossier's history, naming the append id of
/// the change's audit entry (its index is known once the entry is delivered).
pub async fn insert_event(
    conn: &mut AnyConnection,
    dossier_id: &str,
    event_id: &str,
    at: i64,
    sealed: &[u8],
    append_id: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO dossier_events (event_id, dossier_id, at, sealed, append_id) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event_id)
    .bind(dossier_id)
    .bind(at)
    .bind(sealed.to_vec())
    .bind(append_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One stored event: its id, its sealed bytes, and the index of its
/// change's audit entry once delivered.
pub type StoredEvent = (String, Vec<u8>, Option<u64>);

/// A dossier's sealed events, oldest first.
pub async fn events(
    conn: &mut AnyConnection,
    dossier_id: &str,
) -> anyhow::Result<Vec<StoredEvent>> {
    let rows = sqlx::query(
        "SELECT e.event_id AS event_id, e.sealed AS sealed, o.audit_index AS audit_index \
         FROM dossier_events e LEFT JOIN audit_outbox o ON o.append_id = e.append_id \
         WHERE e.dossier_id = $1 ORDER BY e.at, e.event_id",
    )
    .bind(dossier_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let index: Option<i64> = r.try_get("audit_index")?;
            Ok((
                r.try_get("event_id")?,
                r.try_get("sealed")?,
                index.map(|i| i as u64),
            ))
        })
        .collect()
}
