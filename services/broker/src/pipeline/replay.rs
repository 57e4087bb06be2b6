//! Idempotent retries: a reply is kept per organisation, RPC and
//! idempotency key (sealed under the dossier's key), and a retry of the same
//! request gets it again after passing the same gates as the first call, as a
//! new audited decision. The same key with another request is refused.

use prost::Message;
use sha2::{Digest, Sha256};

use super::{Call, Covered, Outcome, Refusal, Scope, unit::Unit};
use crate::{Broker, seal, store};

/// A request to keep the reply of (empty key: nothing is kept).
pub(crate) struct Replay {
    key: String,
    hash: Vec<u8>,
}

impl Replay {
    /// The replay of `request` under `key` (validated by [`key`]).
    pub(crate) fn of(key: &str, request: &impl Message) -> Self {
        Replay {
            key: key.to_owned(),
            hash: Sha256::digest(request.encode_to_vec()).to_vec(),
        }
    }
}

/// A reply kept before, or the request to keep this one's.
pub(crate) enum Kept<R> {
    Replayed(R),
    Fresh(Replay),
}

/// Replies with an audit index (the one of the decision that gave them).
pub(crate) trait Audited {
    /// Sets the audit index.
    fn set_audit_index(&mut self, index: u64);
}

macro_rules! audited {
    ($($t:ty),*) => {$(
        impl Audited for $t {
            fn set_audit_index(&mut self, index: u64) {
                self.audit_index = index;
            }
        }
    )*};
}
use schakel_proto::v1 as pb;
audited!(
    pb::RegisterDossierResponse,
    pb::ContributeResponse,
    pb::AddPersonResponse,
    pb::RequestInformationResponse,
    pb::AnswerInformationRequestResponse
);

/// An idempotency key: empty, or 1-64 characters of [A-Za-z0-9._:/@+=-].
pub(crate) fn key(value: &str) -> Outcome<String> {
    Ok(super::reference("idempotency_key", value, 0..=64)?)
}

fn parts<'a>(
    call: &'a Call,
    dossier_id: &'a str,
    key: &'a str,
) -> (&'a str, &'a str, &'a str, &'a str) {
    (
        dossier_id,
        &call.caller.organisation_id,
        call.rpc.name(),
        key,
    )
}

impl Covered<'_> {
    /// The reply kept for `idempotency_key` and this request, if any.
    pub(crate) async fn kept<R: Message + Default>(
        &self,
        broker: &Broker,
        idempotency_key: &str,
        request: &impl Message,
    ) -> Outcome<Kept<R>> {
        let replay = Replay::of(&key(idempotency_key)?, request);
        if replay.key.is_empty() {
            return Ok(Kept::Fresh(replay));
        }
        let call = self.call();
        let mut conn = broker.inner.db.pool().acquire().await?;
        let org = &call.caller.organisation_id;
        let Some(kept) = store::reply(&mut conn, org, call.rpc.name(), &replay.key).await? else {
            return Ok(Kept::Fresh(replay));
        };
        let id = &self.dossier().row.dossier_id;
        if kept.request_hash != replay.hash || kept.dossier_id != *id {
            let message = "this idempotency key was used for another request";
            return Err(
                Refusal::precondition(self.scope(), "IDEMPOTENCY_KEY_REUSED", message).into(),
            );
        }
        let reply = seal::open_reply(self.key(), parts(call, id, &replay.key), &kept.sealed)?;
        Ok(Kept::Replayed(reply))
    }
}

impl Unit<'_> {
    /// Keeps `reply` for retries with the replay's key, in this unit.
    pub(crate) async fn keep(
        &mut self,
        call: &Call,
        dossier_id: &str,
        replay: Replay,
        reply: &impl Message,
    ) -> Outcome<()> {
        if replay.key.is_empty() {
            return Ok(());
        }
        let key = self
            .key()
            .ok_or_else(|| anyhow::anyhow!("a reply is kept under the key"))?;
        let sealed = seal::seal_reply(key, parts(call, dossier_id, &replay.key), reply)?;
        let kept = store::KeptReply {
            request_hash: replay.hash,
            dossier_id: dossier_id.to_owned(),
            sealed,
        };
        let org = &call.caller.organisation_id;
        if !store::keep_reply(
            self.conn(),
            org,
            call.rpc.name(),
            &replay.key,
            &kept,
            call.now,
        )
        .await?
        {
            return Err(tonic::Status::aborted(
                "a retry with this idempotency key is under way; retry",
            )
            .into());
        }
        Ok(())
    }
}

impl Broker {
    /// Answers a retry with the kept reply, as a new recorded decision.
    pub(crate) async fn replayed<R: Audited>(
        &self,
        call: &Call,
        mut scope: Scope,
        mut reply: R,
    ) -> Outcome<R> {
        scope.attributes.push(("replay", "true".into()));
        reply.set_audit_index(self.record(call, scope).await?);
        Ok(reply)
    }
}
