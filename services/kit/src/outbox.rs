//! An audit entry for a change exists if and only if the change committed:
//! the transactional outbox (DESIGN.md invariant 9).
//!
//! A [`Change`] is a database transaction that can only be finished by
//! [`Change::commit`]. Its entries are staged in the service's own
//! `audit_outbox` table inside the same transaction, so they commit or roll
//! back with the change itself; no lock is held while the log is called.
//! After the commit each entry is delivered to the log under its own append
//! id (a retried append with that id is the same entry, so a delivery that
//! timed out after the log committed it leaves no orphan), and the reply
//! waits for it. An entry the log cannot take now stays staged and the
//! outbox's drainer delivers it later, oldest first (also after a restart).
//!
//! Delivered rows keep their audit index (the entry bytes are dropped), so a
//! service can name the entry of any of its changes (the broker's dossier
//! history does).

use std::{
    ops::{Deref, DerefMut},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prost::Message;
use schakel_proto::v1 as pb;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};
use tonic::{Code, Status};

use crate::{
    audit::{AuditError, AuditSink, new_append_id},
    db::Database,
};

/// How long a reply waits for its entries to reach the log before it says
/// they are pending (an append that hangs is given up after this).
const DELIVER_FOR: Duration = Duration::from_secs(5);
/// Attempts per entry within a reply: a retry with the same append id after
/// a timeout finds the entry if the log did commit it; a log that refuses
/// at once is not waited for.
const ATTEMPTS: usize = 3;
/// Entries staged longer ago than this are the drainer's (the change's own
/// call has given up on them).
const DRAIN_AFTER: Duration = Duration::from_secs(10);
/// How often the drainer looks for entries left behind.
pub const DRAIN_EVERY: Duration = Duration::from_secs(5);
/// How often it tries while changes are refused.
const RETRY_STALLED: Duration = Duration::from_secs(1);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Where a service's changes stage their audit entries (cheap to clone).
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    sink: Arc<dyn AuditSink>,
    deliver_for: Duration,
    /// Set when an entry could not be delivered, cleared by the next
    /// delivery: while set no change begins, so that the changes without
    /// their entry in the log stay few (the ones already under way).
    stalled: std::sync::atomic::AtomicBool,
}

/// Why a change did not begin or did not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The log has not taken this service's last entries: no change begins
    /// until it has (nothing changed).
    #[error("audit log unavailable: staged entries wait for it")]
    Stalled,
    /// The transaction did not commit: nothing changed, nothing is logged.
    #[error("not committed: {0}")]
    NotCommitted(#[from] sqlx::Error),
    /// The change committed and its entries are staged, but the log did not
    /// take them in time; they will be delivered.
    #[error("committed; audit entry pending: {0}")]
    Pending(AuditError),
}

impl CommitError {
    /// Whether the change committed (its entries are staged).
    pub fn committed(&self) -> bool {
        matches!(self, CommitError::Pending(_))
    }
}

impl From<CommitError> for Status {
    fn from(err: CommitError) -> Self {
        match err {
            CommitError::Stalled => AuditError::Unavailable(String::new()).into(),
            CommitError::NotCommitted(err) => crate::error::internal(&err.into()),
            CommitError::Pending(AuditError::Rejected(reason)) => crate::error::internal(
                &anyhow::anyhow!("audit entry refused after commit: {reason}"),
            ),
            CommitError::Pending(AuditError::Unavailable(_)) => crate::error::with_reason(
                Code::Unavailable,
                "AUDIT_PENDING",
                "the change was made; its audit entry is queued and will be appended to the log \
                 when the log is reachable (do not repeat the change)",
            ),
        }
    }
}

impl Outbox {
    /// The outbox in `db` (whose migrations created `audit_outbox`),
    /// delivering to `sink`.
    pub fn new(db: &Database, sink: Arc<dyn AuditSink>) -> Self {
        Self::with_deadline(db, sink, DELIVER_FOR)
    }

    /// As [`Outbox::new`], waiting at most `deliver_for` per reply. Starts
    /// the drainer (which stops when the last clone is dropped).
    pub fn with_deadline(db: &Database, sink: Arc<dyn AuditSink>, deliver_for: Duration) -> Self {
        let outbox = Self {
            inner: Arc::new(Inner {
                pool: db.pool().clone(),
                sink,
                deliver_for,
                stalled: Default::default(),
            }),
        };
        outbox.spawn_drainer();
        outbox
    }

    /// Begins a change; [`CommitError::Stalled`] while entries of earlier
    /// changes wait for the log.
    pub async fn begin(&self) -> Result<Change, CommitError> {
        if self.inner.stalled.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(CommitError::Stalled);
        }
        Ok(Change {
            tx: self.inner.pool.begin().await?,
            outbox: self.clone(),
            staged: Vec::new(),
        })
    }

    /// Appends the entry of a decision that changes nothing (a read, a
    /// refusal, a token issued) directly, before its reply; what it finds
    /// out about the log also holds for changes.
    pub async fn append_now(
        &self,
        entry: pb::AuditEntry,
    ) -> Result<pb::AppendResponse, AuditError> {
        let result = self.inner.sink.append(entry, new_append_id()).await;
        match &result {
            Ok(_) => self.stalled(false),
            Err(AuditError::Unavailable(_)) => self.stalled(true),
            Err(AuditError::Rejected(_)) => {}
        }
        result
    }

    /// Whether the log can take entries now (before an irreversible change).
    pub async fn probe(&self) -> Result<(), AuditError> {
        let result = self.inner.sink.probe().await;
        self.stalled(result.is_err());
        result
    }

    /// Delivers one staged entry, retrying with the same append id until
    /// `deadline`; marks it delivered.
    async fn deliver(
        &self,
        append_id: &str,
        entry: &pb::AuditEntry,
        deadline: tokio::time::Instant,
    ) -> Result<pb::AppendResponse, AuditError> {
        let mut wait = Duration::from_millis(20);
        let mut attempts = 0;
        let receipt = loop {
            attempts += 1;
            let attempt = self.inner.sink.append(entry.clone(), append_id.to_owned());
            match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(receipt)) => {
                    self.stalled(false);
                    break receipt;
                }
                Ok(Err(AuditError::Rejected(reason))) => {
                    self.reject(append_id, &reason).await;
                    return Err(AuditError::Rejected(reason));
                }
                Ok(Err(AuditError::Unavailable(why))) => {
                    if attempts >= ATTEMPTS || tokio::time::Instant::now() + wait >= deadline {
                        self.stalled(true);
                        return Err(AuditError::Unavailable(why));
                    }
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
                Err(_) => {
                    self.stalled(true);
                    return Err(AuditError::Unavailable("append timed out".into()));
                }
            }
        };
        // Marking may fail (the entry is in the log): the drainer then
        // delivers it again under the same id, which changes nothing.
        let marked = sqlx::query(
            "UPDATE audit_outbox SET entry = NULL, audit_index = $1, delivered_at = $2 \
             WHERE append_id = $3",
        )
        .bind(receipt.index as i64)
        .bind(now())
        .bind(append_id)
        .execute(&self.inner.pool)
        .await;
        if let Err(err) = marked {
            tracing::warn!(error = %err, "audit entry delivered but not marked; it will be re-sent");
        }
        Ok(receipt)
    }

    fn stalled(&self, stalled: bool) {
        let was = self
            .inner
            .stalled
            .swap(stalled, std::sync::atomic::Ordering::SeqCst);
        if was != stalled {
            if stalled {
                tracing::error!(
                    "audit log unavailable: changes are refused until it takes the staged entries"
                );
            } else {
                tracing::info!("audit log reachable again: changes are accepted");
            }
        }
    }

    /// The log refused an entry (a bug in the service): it is kept, marked,
    /// and never retried.
    async fn reject(&self, append_id: &str, reason: &str) {
        tracing::error!(reason, "the audit log refused a staged entry");
        let _ = sqlx::query("UPDATE audit_outbox SET rejected = $1 WHERE append_id = $2")
            .bind(reason)
            .bind(append_id)
            .execute(&self.inner.pool)
            .await;
    }

    /// Delivers every staged entry older than `older_than`, oldest first,
    /// until one cannot be delivered; how many were.
    pub async fn drain(&self, older_than: Duration) -> anyhow::Result<u64> {
        let before = now() - older_than.as_secs() as i64;
        let mut delivered = 0;
        loop {
            let rows = sqlx::query(
                "SELECT append_id, entry FROM audit_outbox \
                 WHERE entry IS NOT NULL AND rejected IS NULL AND staged_at <= $1 \
                 ORDER BY append_id LIMIT 100",
            )
            .bind(before)
            .fetch_all(&self.inner.pool)
            .await?;
            if rows.is_empty() {
                return Ok(delivered);
            }
            let before_page = delivered;
            for row in &rows {
                let append_id: String = row.try_get("append_id")?;
                let bytes: Vec<u8> = row.try_get("entry")?;
                let entry = pb::AuditEntry::decode(bytes.as_slice())?;
                let deadline = tokio::time::Instant::now() + self.inner.deliver_for;
                match self.deliver(&append_id, &entry, deadline).await {
                    Ok(_) => delivered += 1,
                    Err(AuditError::Rejected(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            // A page of refused entries whose mark did not stick would come
            // back at once: the next round tries again.
            if delivered == before_page {
                return Ok(delivered);
            }
        }
    }

    /// Entries staged and not yet delivered (nor refused).
    pub async fn pending(&self) -> sqlx::Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_outbox WHERE entry IS NOT NULL AND rejected IS NULL",
        )
        .fetch_one(&self.inner.pool)
        .await?;
        Ok(n as u64)
    }

    /// Delivers what earlier runs left staged at once, then every
    /// [`DRAIN_EVERY`], for as long as the outbox is in use.
    fn spawn_drainer(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let outbox = Outbox { inner };
                // At start, and while changes are refused, everything staged
                // is tried at once; otherwise what replies gave up on.
                let stalled = outbox
                    .inner
                    .stalled
                    .load(std::sync::atomic::Ordering::SeqCst);
                let older_than = if first || stalled {
                    Duration::ZERO
                } else {
                    DRAIN_AFTER
                };
                first = false;
                match outbox.drain(older_than).await {
                    // Nothing waits: while refusing changes, ask the log
                    // whether it is back.
                    Ok(0) if stalled => {
                        let _ = outbox.probe().await;
                    }
                    Ok(0) => {}
                    Ok(n) => tracing::info!(delivered = n, "staged audit entries delivered"),
                    Err(err) => tracing::warn!(
                        error = format!("{err:#}"),
                        "staged audit entries not delivered yet; retrying"
                    ),
                }
                let every = if outbox
                    .inner
                    .stalled
                    .load(std::sync::atomic::Ordering::SeqCst)
                {
                    RETRY_STALLED
                } else {
                    DRAIN_EVERY
                };
                drop(outbox);
                tokio::time::sleep(every).await;
            }
        });
    }
}

/// A change in progress: a transaction whose audit entries commit with it.
/// Dropping it rolls the change back with its entries.
pub struct Change {
    tx: Transaction<'static, Any>,
    outbox: Outbox,
    staged: Vec<(String, pb::AuditEntry)>,
}

impl Deref for Change {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for Change {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Change {
    /// Stages `entry` (index and time unset) in this transaction.
    pub async fn record(&mut self, entry: pb::AuditEntry) -> sqlx::Result<()> {
        let append_id = new_append_id();
        sqlx::query("INSERT INTO audit_outbox (append_id, entry, staged_at) VALUES ($1, $2, $3)")
            .bind(&append_id)
            .bind(entry.encode_to_vec())
            .bind(now())
            .execute(&mut *self.tx)
            .await?;
        self.staged.push((append_id, entry));
        Ok(())
    }

    /// The append id of the entry staged last (for rows that name it).
    pub fn last_append_id(&self) -> Option<&str> {
        self.staged.last().map(|(id, _)| id.as_str())
    }

    /// Commits, then delivers the staged entries in order; their receipts.
    pub async fn commit(self) -> Result<Vec<pb::AppendResponse>, CommitError> {
        let Change { tx, outbox, staged } = self;
        tx.commit().await?;
        let deadline = tokio::time::Instant::now() + outbox.inner.deliver_for;
        let mut receipts = Vec::with_capacity(staged.len());
        for (append_id, entry) in &staged {
            receipts.push(
                outbox
                    .deliver(append_id, entry, deadline)
                    .await
                    .map_err(CommitError::Pending)?,
            );
        }
        Ok(receipts)
    }
}
