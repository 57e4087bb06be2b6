//! One unit of work for every change: begin, change, audit entry, commit.
//! A [`Unit`] holds the transaction privately; the only way to finish it is
//! [`Unit::commit`], which stages the decision's entry in the transaction and
//! delivers it to the log after the commit, before the reply
//! ([`schakel_kit::outbox`]): the log has the entry exactly when the change
//! committed, and no lock is held while the log is called. Dropping a unit
//! rolls the change back, entry and all.

use schakel_kit::{crypto::SecretKey, outbox::Change, time::to_timestamp};
use schakel_proto::v1 as pb;
use sqlx::AnyConnection;
use tonic::Status;

use super::{Call, Covered, Outcome, Scope};
use crate::{Broker, seal, store};

/// A change in progress.
pub(crate) struct Unit<'c> {
    tx: Change,
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

    /// Stages the entry of `scope` (granted), commits, and delivers the
    /// entry; its audit index.
    pub(crate) async fn commit(mut self, broker: &Broker, scope: Scope) -> Outcome<u64> {
        self.tx.record(broker.granted(self.call, scope)).await?;
        let append_id = self.tx.last_append_id().unwrap_or_default().to_owned();
        let events = std::mem::take(&mut self.events);
        for event in events {
            let key = self
                .key
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("history needs the key"))?;
            let id = uuid::Uuid::now_v7().to_string();
            let sealed = seal::seal_event(key, &self.dossier_id, &id, &event)?;
            store::insert_event(
                &mut self.tx,
                &self.dossier_id,
                &id,
                self.call.now,
                &sealed,
                &append_id,
            )
            .await?;
        }
        let backend = broker.inner.db.backend();
        let raised = store::insert_notices(&mut self.tx, backend, &self.notices).await?;
        let committed = self.tx.commit().await;
        if raised > 0 && committed.as_ref().map_or_else(|e| e.committed(), |_| true) {
            broker.inner.noticed.notify_waiters();
        }
        let receipts = committed.map_err(Status::from)?;
        Ok(receipts.first().map_or(0, |r| r.index))
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
            tx: self.inner.outbox.begin().await?,
            call,
            dossier_id: dossier_id.to_owned(),
            key,
            events: Vec::new(),
            notices: Vec::new(),
            seq: None,
        })
    }
}
