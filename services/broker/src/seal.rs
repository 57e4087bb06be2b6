//! Sealing and opening what the broker stores under a dossier's data key:
//! field values (bound to dossier, field, person and contribution),
//! information requests, history events and kept replies, each bound to its
//! own context so that one cannot stand in for another.

use prost::Message;
use schakel_kit::crypto::SecretKey;
use schakel_proto::v1 as pb;

use crate::{keys::value_context, store};

type Result<T> = anyhow::Result<T>;

fn seal_message(key: &SecretKey, message: &impl Message, context: &[u8]) -> Result<Vec<u8>> {
    key.seal(&message.encode_to_vec(), context)
}

fn open_message<M: Message + Default>(key: &SecretKey, sealed: &[u8], context: &[u8]) -> Result<M> {
    Ok(M::decode(key.open(sealed, context)?.as_slice())?)
}

/// Seals a contribution's value.
pub(crate) fn seal_value(
    key: &SecretKey,
    dossier_id: &str,
    meta: &pb::Contribution,
    value: &pb::FieldValue,
) -> Result<Vec<u8>> {
    let context = value_context(
        dossier_id,
        &meta.path,
        &meta.person_id,
        &meta.contribution_id,
    );
    seal_message(key, value, &context)
}

/// Opens a stored contribution's value (None for a retraction).
pub(crate) fn open_value(
    key: &SecretKey,
    dossier_id: &str,
    c: &store::ContributionRow,
) -> Result<Option<pb::FieldValue>> {
    let Some(sealed) = &c.sealed else {
        return Ok(None);
    };
    let m = &c.meta;
    let context = value_context(dossier_id, &m.path, &m.person_id, &m.contribution_id);
    open_message(key, sealed, &context).map(Some)
}

fn request_context(dossier_id: &str, request_id: &str) -> Vec<u8> {
    value_context(dossier_id, "information_request", "", request_id)
}

/// Seals an information request (without its computed overdue flag).
pub(crate) fn seal_request(key: &SecretKey, request: &pb::InformationRequest) -> Result<Vec<u8>> {
    let mut stored = request.clone();
    stored.overdue = false;
    let context = request_context(&stored.dossier_id, &stored.information_request_id);
    seal_message(key, &stored, &context)
}

/// Opens a stored information request, its overdue flag computed at `now`.
pub(crate) fn open_request(
    key: &SecretKey,
    row: &store::RequestRow,
    now: i64,
) -> Result<pb::InformationRequest> {
    let context = request_context(&row.dossier_id, &row.request_id);
    let mut request: pb::InformationRequest = open_message(key, &row.sealed, &context)?;
    request.overdue =
        request.status == pb::InformationRequestStatus::Open as i32 && row.due_at <= now;
    Ok(request)
}

fn event_context(dossier_id: &str, event_id: &str) -> Vec<u8> {
    value_context(dossier_id, "history", "", event_id)
}

/// Seals a history event.
pub(crate) fn seal_event(
    key: &SecretKey,
    dossier_id: &str,
    event_id: &str,
    event: &pb::DossierEvent,
) -> Result<Vec<u8>> {
    seal_message(key, event, &event_context(dossier_id, event_id))
}

/// Opens a history event.
pub(crate) fn open_event(
    key: &SecretKey,
    dossier_id: &str,
    event_id: &str,
    sealed: &[u8],
) -> Result<pb::DossierEvent> {
    open_message(key, sealed, &event_context(dossier_id, event_id))
}

fn reply_context(dossier_id: &str, org: &str, rpc: &str, idempotency_key: &str) -> Vec<u8> {
    format!("schakel reply\0{dossier_id}\0{org}\0{rpc}\0{idempotency_key}").into_bytes()
}

/// Seals a reply kept for retries.
pub(crate) fn seal_reply(
    key: &SecretKey,
    (dossier_id, org, rpc, idempotency_key): (&str, &str, &str, &str),
    reply: &impl Message,
) -> Result<Vec<u8>> {
    seal_message(
        key,
        reply,
        &reply_context(dossier_id, org, rpc, idempotency_key),
    )
}

/// Opens a kept reply.
pub(crate) fn open_reply<M: Message + Default>(
    key: &SecretKey,
    (dossier_id, org, rpc, idempotency_key): (&str, &str, &str, &str),
    sealed: &[u8],
) -> Result<M> {
    open_message(
        key,
        sealed,
        &reply_context(dossier_id, org, rpc, idempotency_key),
    )
}
