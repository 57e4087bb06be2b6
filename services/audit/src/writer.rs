//! The single writer: group commit of concurrent appends.
//!
//! Appends queue on a channel; the writer takes everything queued (up to
//! `max_batch`), assigns indices, extends the tree, signs one checkpoint for the
//! new size and commits it all in one transaction. Each caller is answered only
//! after that commit returned (durable: SQLite WAL with `synchronous=FULL`, or
//! the PostgreSQL commit). On PostgreSQL the writer first takes an advisory
//! lock, so that of several audit instances exactly one writes; the others stay
//! in standby (appends: UNAVAILABLE) and take over when the lock frees. The
//! tables' primary keys make a fork impossible even if two writers raced.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use schakel_kit::{
    db::{Backend, Database},
    time::Clock,
};
use schakel_proto::v1 as pb;
use schakel_tlog::{Checkpoint, CompactRange, NoteSigner, leaf_hash};
use sqlx::{Connection, Executor};
use tokio::sync::{mpsc, oneshot};

use crate::{
    AppendError, entry,
    postings::{Kind, Lists},
    store,
};

/// The advisory lock key of the audit writer.
const WRITER_LOCK: i64 = 0x5343_4841_4b45_4c01;

/// Where one caller waits for its receipt.
type Reply = oneshot::Sender<Result<pb::AppendResponse, AppendError>>;

/// One queued append.
pub(crate) struct Pending {
    pub(crate) entry: pb::AuditEntry,
    pub(crate) append_id: String,
    pub(crate) reply: Reply,
}

pub(crate) struct Writer {
    pub(crate) db: Database,
    pub(crate) signer: NoteSigner,
    pub(crate) origin: String,
    pub(crate) clock: Clock,
    pub(crate) max_batch: usize,
    pub(crate) range: CompactRange,
    pub(crate) last_time: i64,
    /// Set once this instance is the writer.
    pub(crate) active: tokio::sync::watch::Sender<bool>,
    /// The connection commits go through, kept out of the pool: a SQLite
    /// connection's page cache stays valid only while no other connection
    /// writes, so one connection for every commit finds its b-tree pages
    /// cached instead of reading them again. Dropped after a failed commit
    /// and opened again for the next one.
    pub(crate) connection: Option<sqlx::AnyConnection>,
    /// Entries per query-index segment (the stored one once any is sealed).
    pub(crate) index_segment: u64,
    /// Segments sealed so far; None until read from the database.
    pub(crate) sealed: Option<u64>,
    /// The posting lists of the segments not sealed yet, by segment; None
    /// until read from the entries (see [`Writer::try_seal`]).
    pub(crate) open: Option<BTreeMap<u64, Lists>>,
}

impl Writer {
    /// Runs until every sender is gone.
    pub(crate) async fn run(mut self, mut queue: mpsc::Receiver<Pending>) {
        let _lock = match self.db.backend() {
            Backend::Postgres => match self.become_writer(&mut queue).await {
                Some(lock) => Some(lock),
                None => return,
            },
            Backend::Sqlite => None,
        };
        // Which segments are sealed is read again (another writer may have
        // sealed some), and what a crash left unsealed is sealed now.
        self.sealed = None;
        self.open = None;
        self.seal_complete().await;
        self.active.send_replace(true);
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.commit(batch).await;
            self.seal_complete().await;
        }
    }

    /// The writer's own connection, opened again if a failure dropped it;
    /// an error once the database was closed (shutdown): nothing is written then.
    async fn connection(&mut self) -> sqlx::Result<&mut sqlx::AnyConnection> {
        if self.db.pool().is_closed() {
            self.connection = None;
            return Err(sqlx::Error::PoolClosed);
        }
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.db.pool().acquire().await?.detach(),
        };
        Ok(self.connection.insert(connection))
    }

    /// How many segments are sealed, and their size (the stored one wins
    /// over the configured one).
    async fn load_seals(&mut self) -> anyhow::Result<u64> {
        let sealed = match crate::postings::sealed(self.db.pool()).await? {
            Some((count, size)) => {
                if size != self.index_segment {
                    tracing::warn!(
                        stored = size,
                        configured = self.index_segment,
                        "audit.index_segment differs from the stored segments; keeping the stored size"
                    );
                    self.index_segment = size;
                }
                count
            }
            None => 0,
        };
        self.sealed = Some(sealed);
        Ok(sealed)
    }

    /// Seals every complete segment not sealed yet, then makes sure the
    /// posting lists of the open segment are in memory (read from its entries
    /// when the writer starts or after a failure; kept up to date by
    /// [`Writer::write`] from then on). A failure is logged and retried after
    /// the next commit, from what the database holds: until then queries scan
    /// the unsealed segments.
    async fn seal_complete(&mut self) {
        if let Err(err) = self.try_seal().await {
            let sealed = self.sealed.take();
            self.connection = None;
            self.open = None;
            tracing::error!(
                sealed,
                error = format!("{err:#}"),
                "audit index: sealing failed; queries scan the segment meanwhile"
            );
        }
    }

    async fn try_seal(&mut self) -> anyhow::Result<()> {
        let mut sealed = match self.sealed {
            Some(sealed) => sealed,
            None => self.load_seals().await?,
        };
        let (backend, size) = (self.db.backend(), self.index_segment);
        while (sealed + 1) * size <= self.range.size() {
            let segment = sealed;
            let lists = match &mut self.open {
                Some(open) => open.remove(&segment),
                None => crate::postings::read(
                    self.connection().await?,
                    segment * size,
                    (segment + 1) * size,
                    size,
                )
                .await?
                .remove(&segment),
            };
            let postings = lists.unwrap_or_default().postings();
            crate::postings::store(self.connection().await?, backend, segment, size, &postings)
                .await?;
            tracing::debug!(
                segment,
                lists = postings.len(),
                "audit index segment sealed"
            );
            sealed += 1;
            self.sealed = Some(sealed);
        }
        if self.open.is_none() {
            let (start, end) = (sealed * size, self.range.size());
            let open = crate::postings::read(self.connection().await?, start, end, size).await?;
            self.open = Some(open);
        }
        Ok(())
    }

    /// Waits for the PostgreSQL advisory lock, refusing appends meanwhile;
    /// then reloads the tree (another writer may have extended it).
    async fn become_writer(
        &mut self,
        queue: &mut mpsc::Receiver<Pending>,
    ) -> Option<sqlx::AnyConnection> {
        let mut announced = false;
        loop {
            if let Ok(mut conn) = self.db.pool().acquire().await {
                let got: Result<bool, _> = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(WRITER_LOCK)
                    .fetch_one(&mut *conn)
                    .await;
                if matches!(got, Ok(true)) {
                    match crate::log::load_range(&self.db).await {
                        Ok((range, last_time)) => {
                            self.range = range;
                            self.last_time = last_time;
                            tracing::info!(size = self.range.size(), "audit writer active");
                            // The lock lives as long as this session: take it out
                            // of the pool, so it closes (and frees the lock) when
                            // the writer ends.
                            return Some(conn.detach());
                        }
                        Err(err) => {
                            tracing::error!(
                                error = format!("{err:#}"),
                                "cannot load the tree; staying in standby"
                            );
                            let _ = conn.execute("SELECT pg_advisory_unlock_all()").await;
                        }
                    }
                }
            }
            if !announced {
                tracing::warn!("another audit instance is the writer; standing by");
                announced = true;
            }
            let deadline = tokio::time::sleep(Duration::from_secs(1));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    () = &mut deadline => break,
                    next = queue.recv() => match next {
                        Some(p) => { let _ = p.reply.send(Err(AppendError::Unavailable("standby: another instance writes".into()))); }
                        None => return None,
                    },
                }
            }
        }
    }

    async fn commit(&mut self, batch: Vec<Pending>) {
        // Group the batch by append id (a key repeated within the batch is
        // appended once).
        let mut replies: HashMap<String, Vec<Reply>> = HashMap::new();
        let mut fresh: Vec<(String, pb::AuditEntry)> = Vec::new();
        for p in batch {
            if !replies.contains_key(&p.append_id) {
                fresh.push((p.append_id.clone(), p.entry));
            }
            replies.entry(p.append_id).or_default().push(p.reply);
        }
        // Optimistically append everything: retries of earlier appends are rare,
        // and the unique append id catches them.
        let before = self.range.clone();
        let mut existing = HashMap::new();
        let mut result = self.write(&fresh).await;
        if result.as_ref().is_err_and(is_unique_violation) {
            self.range = before.clone();
            let ids: Vec<&str> = fresh.iter().map(|(id, _)| id.as_str()).collect();
            match store::existing_appends(self.db.pool(), &ids).await {
                Ok(rows) => {
                    existing = rows
                        .into_iter()
                        .map(|(id, idx, time)| (id, (idx, time)))
                        .collect()
                }
                Err(err) => result = Err(err.into()),
            }
            if result.is_err() && !existing.is_empty() {
                fresh.retain(|(id, _)| !existing.contains_key(id));
                result = self.write(&fresh).await;
            }
        }
        let receipts = match result {
            Ok(receipts) => receipts,
            Err(err) => {
                self.range = before;
                self.connection = None;
                tracing::error!(error = format!("{err:#}"), "audit commit failed");
                for s in replies.into_values().flatten() {
                    let _ = s.send(Err(AppendError::Unavailable("commit failed".into())));
                }
                return;
            }
        };
        for (append_id, senders) in replies {
            let receipt = match (receipts.get(&append_id), existing.get(&append_id)) {
                (Some(r), _) => Ok(r.clone()),
                (None, Some((index, time))) => crate::log::receipt_of(&self.db, *index, *time)
                    .await
                    .map_err(|e| AppendError::Unavailable(format!("{e:#}"))),
                (None, None) => Err(AppendError::Unavailable("lost".into())),
            };
            for s in senders {
                let _ = s.send(receipt.clone());
            }
        }
    }

    /// Appends `fresh` and a checkpoint in one transaction; returns receipts by append id.
    async fn write(
        &mut self,
        fresh: &[(String, pb::AuditEntry)],
    ) -> anyhow::Result<HashMap<String, pb::AppendResponse>> {
        let mut receipts = HashMap::new();
        if fresh.is_empty() {
            return Ok(receipts);
        }
        let time = self.clock.now().max(self.last_time);
        let mut bodies = Vec::with_capacity(fresh.len());
        let mut nodes = Vec::new();
        for (append_id, submitted) in fresh {
            let mut e = submitted.clone();
            e.index = self.range.size();
            e.time = Some(schakel_kit::time::to_timestamp(time));
            let body = entry::encode(&e);
            let leaf = leaf_hash(&body);
            nodes.extend(self.range.append(leaf));
            receipts.insert(
                append_id.clone(),
                pb::AppendResponse {
                    index: e.index,
                    time: e.time,
                    leaf_hash: leaf.to_vec(),
                },
            );
            bodies.push((append_id, e, body));
        }
        let stored: Vec<store::StoredEntry<'_>> = bodies
            .iter()
            .map(|(append_id, e, body)| {
                let actor = e.actor.as_ref();
                let target = e.target.as_ref();
                store::StoredEntry {
                    index: e.index,
                    body,
                    time,
                    append_id,
                    actor_org: actor.map_or("", |a| &a.organisation_id),
                    actor_subject: actor.map_or("", |a| &a.subject),
                    target_org: target.map_or("", |t| &t.organisation_id),
                    dossier_id: target.map_or("", |t| &t.dossier_id),
                    action: e.action,
                    decision: e.decision,
                    purpose: &e.purpose,
                    trace_id: &e.trace_id,
                    persons: store::persons_column(target.map_or(&[], |t| &t.person_ids)),
                }
            })
            .collect();
        let root = self.range.root();
        let body = Checkpoint {
            origin: self.origin.clone(),
            size: self.range.size(),
            root,
            extensions: vec![],
        };
        let note = self.signer.sign(&body.to_text())?;
        let mut writes = store::Writes::new(self.db.backend());
        writes.nodes(&nodes)?;
        writes.entries(&stored)?;
        writes.checkpoint(self.range.size(), &root, &note, time)?;
        let mut tx = self.connection().await?.begin().await?;
        writes.execute(&mut tx).await?;
        tx.commit().await?;
        self.last_time = time;
        if let Some(open) = &mut self.open {
            let size = self.index_segment;
            for e in &stored {
                open.entry(e.index / size).or_default().add(
                    e.index % size,
                    [
                        (Kind::ActorOrganisation, e.actor_org),
                        (Kind::TargetOrganisation, e.target_org),
                        (Kind::Subject, e.actor_subject),
                        (Kind::Dossier, e.dossier_id),
                    ],
                    &e.persons,
                );
            }
        }
        Ok(receipts)
    }
}

/// Whether a failed write hit a unique constraint (a retried append id, or
/// an index another writer took).
fn is_unique_violation(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(cause.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::Database(db)) if db.is_unique_violation())
    })
}
