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
        let mut tx = self.inner.db.pool().begin().await?;
        let due_requests =
            store::open_requests_due(&mut tx, now.saturating_add(lead), Within::default()).await?;
        let mut notices = request_notices(due_requests, now);
        let dates = [
            (DueDate::Review, K::ReviewDue, "review"),
            (DueDate::FollowUpCheck, K::FollowUpCheckDue, "follow_up"),
            (DueDate::InformingReview, K::InformingReviewDue, "informing"),
        ];
        for (date, kind, label) in dates {
            let came = now.saturating_add(1);
            for (id, at) in store::dates_due(&mut tx, date, came, Within::default()).await? {
                notices.push(due(&id, kind, "", at, format!("{label}:{id}:{at}")));
            }
        }
        for n in &mut notices {
            n.at = now;
        }
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
    let (sender, receiver) = mpsc::channel(PAGE as usize);
    let follower = Follower {
        broker: broker.clone(),
        call: call.clone(),
        dossier_id,
        after,
    };
    tokio::spawn(follower.run(sender));
    Ok(ReceiverStream::new(receiver))
}

/// One WatchEvents stream.
struct Follower {
    broker: Broker,
    call: Call,
    dossier_id: Option<String>,
    after: i64,
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
                Err(Failure::Error(status)) => return Err(status),
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
