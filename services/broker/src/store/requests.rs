//! Information requests (the request itself sealed).

use sqlx::{AnyConnection, Row, any::AnyRow};

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

pub(super) fn request_from_row(r: &AnyRow) -> anyhow::Result<RequestRow> {
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

pub(super) const REQUEST_COLUMNS: &str =
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
