//! One unit of work for every change: begin, change, audit entry, commit.
//! A [`Unit`] holds the transaction privately; the only way to finish it is
//! [`Unit::commit`], which appends the decision's entry (fail closed) before
//! committing, and dropping it rolls the change back.

use schakel_kit::{crypto::SecretKey, time::to_timestamp};
use schakel_proto::v1 as pb;
use sqlx::{Any, AnyConnection, Transaction};

use super::{Call, Covered, Outcome, Scope};
use crate::{Broker, seal, store};

/// A change in progress.
pub(crate) struct Unit<'c> {
    tx: Transaction<'static, Any>,
    call: &'c Call,
    dossier_id: String,
    key: Option<SecretKey>,
    events: Vec<pb::DossierEvent>,
    notices: Vec<store::Notice>,
    seq: Option<i64>,
}

impl<'c> Unit<'c> {
    /// The transaction, for the change's statements.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The next sequence number of the dossier's contributions.
    pub(crate) async fn next_seq(&mut self) -> Outcome<i64> {
        let seq = match self.seq {
            Some(seq) => seq,
            None => store::next_seq(&mut self.tx, &self.dossier_id).await?,
        };
        self.seq = Some(seq + 1);
        Ok(seq)
    }

    /// The dossier's data key (None for an oversight change).
    pub(crate) fn key(&self) -> Option<&SecretKey> {
        self.key.as_ref()
    }

    /// Adds an event to the dossier's history, recorded with this change's
    /// audit index.
    pub(crate) fn event(
        &mut self,
        action: pb::AuditAction,
        fill: impl FnOnce(&mut pb::DossierEvent),
    ) {
        let mut event = pb::DossierEvent {
            action: action as i32,
            at: Some(to_timestamp(self.call.now)),
            by: self.call.caller.subject.clone(),
            by_organisation_id: self.call.caller.organisation_id.clone(),
            ..Default::default()
        };
        fill(&mut event);
        self.events.push(event);
    }

    /// Raises a notice for WatchEvents with this change (`audience` "": the
    /// whole circle).
    pub(crate) fn notice(
        &mut self,
        kind: pb::BrokerEventKind,
        audience: &str,
        fill: impl FnOnce(&mut store::Notice),
    ) {
        let mut notice = store::Notice {
            dossier_id: self.dossier_id.clone(),
            kind: kind as i32,
            audience: audience.to_owned(),
            at: self.call.now,
            ..Default::default()
        };
        fill(&mut notice);
        self.notices.push(notice);
    }

    /// Appends the entry of `scope` (granted), then commits; the audit index.
    pub(crate) async fn commit(mut self, broker: &Broker, scope: Scope) -> Outcome<u64> {
        let index = broker.record(self.call, scope).await?;
        let events = std::mem::take(&mut self.events);
        for mut event in events {
            event.audit_index = index;
            let key = self
                .key
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("history needs the key"))?;
            let id = uuid::Uuid::now_v7().to_string();
            let sealed = seal::seal_event(key, &self.dossier_id, &id, &event)?;
            store::insert_event(&mut self.tx, &self.dossier_id, &id, self.call.now, &sealed)
                .await?;
        }
        let backend = broker.inner.db.backend();
        let raised = store::insert_notices(&mut self.tx, backend, &self.notices).await?;
        self.tx.commit().await?;
        if raised > 0 {
            broker.inner.noticed.notify_waiters();
        }
        Ok(index)
    }
}

impl<'c> Covered<'c> {
    /// A change to this dossier (its row locked for the change).
    pub(crate) async fn begin(&self, broker: &Broker) -> Outcome<Unit<'c>> {
        let id = &self.dossier().row.dossier_id;
        let mut unit = broker
            .begin(self.call(), id, Some(self.key().clone()))
            .await?;
        if !store::touch(unit.conn(), id, self.call().now).await? {
            return Err(anyhow::anyhow!("the dossier vanished").into());
        }
        Ok(unit)
    }
}

impl Broker {
    /// A unit about `dossier_id`. Only for what no gate can cover: a dossier
    /// being registered (its new key) and the oversight of erasure.
    pub(crate) async fn begin<'c>(
        &self,
        call: &'c Call,
        dossier_id: &str,
        key: Option<SecretKey>,
    ) -> Outcome<Unit<'c>> {
        Ok(Unit {
            tx: self.inner.db.pool().begin().await?,
            call,
            dossier_id: dossier_id.to_owned(),
            key,
            events: Vec::new(),
            notices: Vec::new(),
            seq: None,
        })
    }
}
