//! Notices: what partner systems follow with WatchEvents instead of polling.
//! Changes raise theirs in their own unit of work (a request received,
//! answered, declined or cancelled; a phase change); the sweep raises those
//! the clock brings (a request due soon or overdue, its escalation to the
//! casusregisseur, a track review, a follow-up check, a deferred informing
//! to review), each once. A follower delivers a notice only through the
//! circle and basis gates, as a read, and records each delivery.

use schakel_kit::validate::{self, Invalid};
use schakel_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::{
    Broker,
    pipeline::{Call, Failure, Outcome},
    store::{self, DueDate, Notice, Within},
};

/// What WatchEvents streams.
pub(crate) type Events = ReceiverStream<Result<pb::BrokerEvent, Status>>;

/// Notices read per query.
const PAGE: i64 = 100;

/// A notice the clock brings, raised once per `key`.
fn due(
    dossier_id: &str,
    kind: pb::BrokerEventKind,
    audience: &str,
    due_at: i64,
    key: String,
) -> Notice {
    Notice {
        dossier_id: dossier_id.to_owned(),
        kind: kind as i32,
        audience: audience.to_owned(),
        due_at: Some(due_at),
        once_key: Some(key),
        ..Default::default()
    }
}

/// The notices of open requests due before `now + lead`: a reminder to the
/// addressee before the due date; after it, overdue to both parties and an
/// escalation to the casusregisseur's organisation.
fn request_notices(due_requests: Vec<store::DueRequest>, now: i64) -> Vec<Notice> {
    use pb::BrokerEventKind as K;
    let mut notices = Vec::new();
    for r in due_requests {
        let (id, at) = (&r.request_id, r.due_at);
        let mut raise = |kind, audience: &str, key: String| {
            let mut notice = due(&r.dossier_id, kind, audience, at, key);
            notice.request_id = id.clone();
            notices.push(notice);
        };
        if at > now {
            raise(K::RequestDueSoon, &r.to_org, format!("due_soon:{id}:{at}"));
            continue;
        }
        for org in [&r.from_org, &r.to_org] {
            raise(K::RequestOverdue, org, format!("overdue:{id}:{org}"));
        }
        if let Some(director) = &r.director_org {
            raise(K::RequestEscalated, director, format!("escalated:{id}"));
        }
    }
    notices
}

impl Broker {
    /// Raises the notices whose dates came by now (each once, whichever
    /// instance sweeps); how many were new.
    pub async fn sweep(&self) -> anyhow::Result<u64> {
        use pb::BrokerEventKind as K;
        let now = self.inner.clock.now();
        let lead = self.inner.process.reminder_seconds();
        let within = Within {
            unnoticed_at: Some(now),
            ..Within::default()
        };
        // Read before the transaction, which only writes (each notice is
        // raised once by its key, whoever else swept meanwhile).
        let mut conn = self.inner.db.pool().acquire().await?;
        let due_requests =
            store::open_requests_due(&mut conn, now.saturating_add(lead), within).await?;
        let mut notices = request_notices(due_requests, now);
        let dates = [
            (DueDate::Review, K::ReviewDue),
            (DueDate::FollowUpCheck, K::FollowUpCheckDue),
            (DueDate::InformingReview, K::InformingReviewDue),
        ];
        for (date, kind) in dates {
            let came = now.saturating_add(1);
            for (id, at) in store::dates_due(&mut conn, date, came, within).await? {
                let key = format!("{}:{id}:{at}", date.label());
                notices.push(due(&id, kind, "", at, key));
            }
        }
        drop(conn);
        for n in &mut notices {
            n.at = now;
        }
        let mut tx = self.inner.db.pool().begin().await?;
        let raised = store::insert_notices(&mut tx, self.inner.db.backend(), &notices).await?;
        tx.commit().await?;
        if raised > 0 {
            self.inner.noticed.notify_waiters();
        }
        Ok(raised)
    }

    /// Sweeps now and then every `process.sweep_every`, in the background.
    pub fn spawn_sweeper(&self) {
        let broker = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(broker.inner.process.sweep_every);
            loop {
                every.tick().await;
                if let Err(err) = broker.sweep().await {
                    tracing::error!(error = format!("{err:#}"), "broker sweep failed");
                }
            }
        });
    }

    /// Keeps the dossier's earliest deferred-informing review date as
    /// legal-basis now holds the informing records.
    pub(crate) async fn refresh_informing_review(&self, dossier_id: &str) -> Outcome<()> {
        let records = self
            .inner
            .basis
            .informing_records(dossier_id.to_owned(), false)
            .await?;
        let deferred = pb::InformingState::Deferred as i32;
        let earliest = records
            .iter()
            .filter_map(|r| r.details.as_ref())
            .filter(|d| d.state == deferred)
            .filter_map(|d| d.review_at.as_ref().map(|t| t.seconds))
            .min();
        store::set_informing_review(self.inner.db.pool(), dossier_id, earliest).await?;
        Ok(())
    }
}

/// WatchEvents: the caller's notices after the cursor, then new ones as they
/// come, until the caller hangs up.
pub(crate) async fn watch(
    broker: &Broker,
    call: &Call,
    req: pb::WatchEventsRequest,
) -> Outcome<Events> {
    let dossier_id = match req.dossier_id.as_str() {
        "" => None,
        id => Some(validate::id("dossier_id", id)?),
    };
    let after =
        i64::try_from(req.after).map_err(|_| Invalid::new("after", "not a cursor of this feed"))?;
    let slot = Slot::take(broker, &call.caller.organisation_id)?;
    let (sender, receiver) = mpsc::channel(PAGE as usize);
    let follower = Follower {
        broker: broker.clone(),
        call: call.clone(),
        dossier_id,
        after,
        _slot: slot,
    };
    tokio::spawn(follower.run(sender));
    Ok(ReceiverStream::new(receiver))
}

/// Streams one organisation may hold open at once.
pub(crate) const STREAMS_PER_ORGANISATION: usize = 32;

/// One of an organisation's open streams, given back when dropped.
struct Slot {
    broker: Broker,
    org: String,
}

impl Slot {
    fn take(broker: &Broker, org: &str) -> Result<Slot, Status> {
        let mut open = broker
            .inner
            .followers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let count = open.entry(org.to_owned()).or_default();
        if *count >= STREAMS_PER_ORGANISATION {
            return Err(Status::resource_exhausted(format!(
                "an organisation follows at most {STREAMS_PER_ORGANISATION} streams at once"
            )));
        }
        *count += 1;
        Ok(Slot {
            broker: broker.clone(),
            org: org.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .broker
            .inner
            .followers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.org) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.org);
            }
        }
    }
}

/// One WatchEvents stream.
struct Follower {
    broker: Broker,
    call: Call,
    dossier_id: Option<String>,
    after: i64,
    _slot: Slot,
}

type Sender = mpsc::Sender<Result<pb::BrokerEvent, Status>>;

impl Follower {
    async fn run(mut self, sender: Sender) {
        let inner = self.broker.inner.clone();
        loop {
            // Registered before reading, so that a notice written meanwhile
            // wakes the next wait.
            let noticed = inner.noticed.notified();
            tokio::pin!(noticed);
            noticed.as_mut().enable();
            // The stream lives no longer than the token it was opened with.
            let left = self.call.caller.expires_at - inner.clock.now();
            if left <= 0 {
                let expired = "the token expired: reconnect with a new one and the last cursor";
                let _ = sender.send(Err(Status::unauthenticated(expired))).await;
                return;
            }
            let full = match self.deliver(&sender).await {
                Ok(full) => full,
                Err(status) => {
                    let _ = sender.send(Err(status)).await;
                    return;
                }
            };
            if sender.is_closed() {
                return;
            }
            if full {
                continue;
            }
            // Notices another instance wrote are found at the next sweep.
            tokio::select! {
                () = &mut noticed => {}
                () = tokio::time::sleep(inner.process.sweep_every) => {}
                () = tokio::time::sleep(std::time::Duration::from_secs(left as u64)) => {}
                () = sender.closed() => return,
            }
        }
    }

    /// Delivers the next page of notices; whether it was full.
    async fn deliver(&mut self, sender: &Sender) -> Result<bool, Status> {
        let org = &self.call.caller.organisation_id;
        let pool = self.broker.inner.db.pool();
        let page = store::notices_after(pool, org, self.after, self.dossier_id.as_deref(), PAGE)
            .await
            .map_err(|e| Status::from(schakel_kit::error::ServiceError::Internal(e)))?;
        for notice in &page {
            let call = self.call.renewed(&self.broker);
            match self.delivered(&call, notice).await {
                Ok(Some(event)) => {
                    if sender.send(Ok(event)).await.is_err() {
                        return Ok(false);
                    }
                }
                Ok(None) => {}
                // Without the audit log (or legal-basis) nothing is delivered:
                // the caller reconnects with its cursor.
                Err(Failure::Error(status)) if status.code() == tonic::Code::Unavailable => {
                    return Err(status);
                }
                // A notice that cannot be delivered must not stop the feed
                // for good: logged (ids only) and passed.
                Err(Failure::Error(status)) => {
                    tracing::error!(
                        seq = notice.seq,
                        dossier_id = %notice.dossier_id,
                        code = ?status.code(),
                        "a notice could not be delivered; passed"
                    );
                }
                Err(Failure::Refused(refusal)) => return Err(refusal.status()),
            }
            self.after = notice.seq;
        }
        Ok(page.len() as i64 == PAGE)
    }

    /// The event, when the caller passes the gates for its dossier now (its
    /// delivery recorded); None (left out) otherwise.
    async fn delivered(&self, call: &Call, notice: &Notice) -> Outcome<Option<pb::BrokerEvent>> {
        let Some(covered) = self
            .broker
            .covered_or_none(call, &notice.dossier_id)
            .await?
        else {
            return Ok(None);
        };
        let kind =
            pb::BrokerEventKind::try_from(notice.kind).unwrap_or(pb::BrokerEventKind::Unspecified);
        let mut scope = covered.scope();
        scope.resource_id = notice.request_id.clone();
        scope
            .attributes
            .push(("event", kind.as_str_name().to_owned()));
        let audit_index = self.broker.record(call, scope).await?;
        Ok(Some(pb::BrokerEvent {
            cursor: notice.seq as u64,
            kind: notice.kind,
            dossier_id: notice.dossier_id.clone(),
            request_id: notice.request_id.clone(),
            at: Some(schakel_kit::time::to_timestamp(notice.at)),
            phase: notice.phase,
            due_at: notice.due_at.map(schakel_kit::time::to_timestamp),
            audit_index,
        }))
    }
}
