//! Replies kept for idempotent retries: per organisation, RPC and key, the
//! hash of the request and the reply, sealed under the dossier's key (a reply
//! can hold content); erased with the dossier.

use sqlx::{AnyConnection, Row};

/// A kept reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptReply {
    /// SHA-256 of the request it answered.
    pub request_hash: Vec<u8>,
    /// The dossier it is about.
    pub dossier_id: String,
    /// The reply (protobuf), sealed.
    pub sealed: Vec<u8>,
}

/// The reply kept for (`org`, `rpc`, `key`), if any.
pub async fn reply(
    conn: &mut AnyConnection,
    org: &str,
    rpc: &str,
    key: &str,
) -> anyhow::Result<Option<KeptReply>> {
    let row = sqlx::query(
        "SELECT request_hash, dossier_id, sealed FROM replies \
         WHERE organisation_id = $1 AND rpc = $2 AND idempotency_key = $3",
    )
    .bind(org)
    .bind(rpc)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(KeptReply {
            request_hash: r.try_get("request_hash")?,
            dossier_id: r.try_get("dossier_id")?,
            sealed: r.try_get("sealed")?,
        })
    })
    .transpose()
}

/// Keeps a reply. Returns false when one is kept for this key already (a
/// concurrent retry won).
pub async fn keep_reply(
    conn: &mut AnyConnection,
    org: &str,
    rpc: &str,
    key: &str,
    reply: &KeptReply,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO replies (organisation_id, rpc, idempotency_key, request_hash, dossier_id, \
         sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (organisation_id, rpc, idempotency_key) DO NOTHING",
    )
    .bind(org)
    .bind(rpc)
    .bind(key)
    .bind(reply.request_hash.clone())
    .bind(&reply.dossier_id)
    .bind(reply.sealed.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
