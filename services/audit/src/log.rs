//! The audit log: appends go through the single [`Writer`](crate::writer);
//! reads (checkpoints, entries, proofs) come straight from the database, so
//! any instance can serve them.

use std::sync::Arc;

use anyhow::Context;
use schakel_kit::{
    audit::{AppendFuture, AuditError, AuditSink},
    db::Database,
    time::{Clock, to_timestamp},
};
use schakel_proto::v1 as pb;
use schakel_tlog::{Checkpoint, CompactRange, Hash, NoteSigner, consistency_plan, inclusion_plan};
use tokio::sync::{mpsc, oneshot};

use crate::{
    AppendError, entry, store,
    writer::{Pending, Writer},
};

/// The largest number of leaves one `GetEntries` call returns (four tiles).
pub const MAX_LEAVES_PER_CALL: u64 = 1024;

/// Hashes per full tile (C2SP tlog-tiles).
pub const TILE_WIDTH: u64 = 256;

/// The transparency log (cheap to clone).
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    queue: mpsc::Sender<Pending>,
    origin: String,
    verifier_key: String,
    public_key: [u8; 32],
    clock: Clock,
    active: tokio::sync::watch::Receiver<bool>,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The request asks for something outside the log (index, size).
    #[error("{0}")]
    OutOfRange(String),
    /// Storage failure or corruption.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AuditLog {
    /// Opens the log on a migrated database. Checks that the stored tree
    /// matches the latest signed checkpoint (refusing to start otherwise), signs
    /// a checkpoint for an empty log, and starts the writer.
    pub async fn open(
        db: Database,
        origin: &str,
        key_name: &str,
        key: ed25519_dalek::SigningKey,
        clock: Clock,
        max_batch: usize,
        index_segment: u64,
    ) -> anyhow::Result<Self> {
        let (range, last_time) = load_range(&db).await?;
        let public_key = key.verifying_key().to_bytes();
        let signer = NoteSigner::new(key_name, key)?;
        let verifier_key = signer.verifier_key();
        if store::latest_checkpoint(db.pool()).await?.is_none() {
            let body = Checkpoint {
                origin: origin.into(),
                size: range.size(),
                root: range.root(),
                extensions: vec![],
            };
            let note = signer.sign(&body.to_text())?;
            let root = range.root();
            let mut writes = store::Writes::new(db.backend());
            writes.checkpoint(range.size(), &root, &note, clock.now())?;
            let mut tx = db.pool().begin().await?;
            writes.execute(&mut tx).await?;
            tx.commit().await?;
        }
        let (queue, receiver) = mpsc::channel(max_batch * 4);
        let (active_tx, active) = tokio::sync::watch::channel(false);
        let writer = Writer {
            db: db.clone(),
            signer,
            origin: origin.into(),
            clock: clock.clone(),
            max_batch,
            range,
            last_time,
            active: active_tx,
            connection: None,
            index_segment,
            sealed: None,
            open: None,
        };
        tokio::spawn(writer.run(receiver));
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                queue,
                origin: origin.into(),
                verifier_key,
                public_key,
                clock,
                active,
            }),
        })
    }

    /// Appends an entry; resolves once it is durably committed.
    pub async fn append(
        &self,
        entry: pb::AuditEntry,
        append_id: String,
    ) -> Result<pb::AppendResponse, AppendError> {
        entry::validate(&entry).map_err(AppendError::Invalid)?;
        if append_id.is_empty() || append_id.len() > 128 || !entry::is_code(&append_id) {
            return Err(AppendError::Invalid(entry::InvalidEntry {
                field: "append_id".into(),
                message: "a unique id of at most 128 characters is required".into(),
            }));
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .queue
            .send(Pending {
                entry,
                append_id,
                reply,
            })
            .await
            .map_err(|_| AppendError::Unavailable("writer stopped".into()))?;
        answer
            .await
            .map_err(|_| AppendError::Unavailable("writer stopped".into()))?
    }

    /// Resolves once this instance is the log's writer (at once on SQLite; on
    /// PostgreSQL when it holds the writer lock). Until then appends are
    /// refused as UNAVAILABLE.
    pub async fn writing(&self) {
        let mut active = self.inner.active.clone();
        let _ = active.wait_for(|a| *a).await;
    }

    /// Whether this instance is the writer (true at once on SQLite), as it
    /// changes: for health, so that a standby gets no calls.
    pub fn writer_status(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.active.clone()
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// The checkpoint origin line.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The C2SP verifier key of the checkpoint signer.
    pub fn verifier_key(&self) -> &str {
        &self.inner.verifier_key
    }

    /// The raw Ed25519 public key of the checkpoint signer.
    pub fn public_key(&self) -> [u8; 32] {
        self.inner.public_key
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The latest signed checkpoint.
    pub async fn checkpoint(&self) -> anyhow::Result<pb::Checkpoint> {
        let stored = store::latest_checkpoint(self.inner.db.pool())
            .await?
            .context("no checkpoint")?;
        Ok(to_proto(&self.inner.origin, stored))
    }

    /// Signed checkpoints with size above `after`, oldest first.
    pub async fn checkpoints_after(
        &self,
        after: u64,
        limit: i64,
    ) -> anyhow::Result<Vec<pb::Checkpoint>> {
        let stored = store::checkpoints_after(self.inner.db.pool(), after, limit).await?;
        Ok(stored
            .into_iter()
            .map(|c| to_proto(&self.inner.origin, c))
            .collect())
    }

    async fn signed_size(&self) -> Result<u64, ReadError> {
        Ok(store::latest_checkpoint(self.inner.db.pool())
            .await
            .map_err(anyhow::Error::new)?
            .map_or(0, |c| c.0))
    }

    /// Every entry up to the latest checkpoint, decoded, oldest first (for
    /// tests and tools; a verifier reads leaves page by page instead).
    pub async fn entries(&self) -> anyhow::Result<Vec<pb::AuditEntry>> {
        let size = self.checkpoint().await?.tree_size;
        let mut entries = Vec::new();
        let mut start = 0;
        while start < size {
            let leaves = self.leaves(start, size).await?;
            start += leaves.len() as u64;
            for leaf in &leaves {
                entries.push(crate::entry::decode(&leaf.entry_bytes)?);
            }
        }
        Ok(entries)
    }

    /// Leaves `[start, end)` (at most [`MAX_LEAVES_PER_CALL`]), within the
    /// latest checkpoint, each with its body and stored query columns when
    /// held (the service layer decides what a caller may see).
    pub async fn leaves(&self, start: u64, end: u64) -> Result<Vec<pb::AuditLeaf>, ReadError> {
        let size = self.signed_size().await?;
        if start > end || end > size {
            return Err(ReadError::OutOfRange(format!(
                "entries [{start}, {end}) are not in the log of size {size}"
            )));
        }
        let end = end.min(start.saturating_add(MAX_LEAVES_PER_CALL));
        let rows = store::leaves(self.inner.db.pool(), start, end)
            .await
            .map_err(anyhow::Error::new)?;
        Ok(rows
            .into_iter()
            .map(|leaf| {
                let (entry_bytes, index_row) = leaf.body.unzip();
                pb::AuditLeaf {
                    index: leaf.index,
                    body_dropped: entry_bytes.is_none(),
                    entry_bytes: entry_bytes.unwrap_or_default(),
                    leaf_hash: leaf.hash,
                    body_withheld: false,
                    index_row,
                }
            })
            .collect())
    }

    /// Tile `index` at `level` (C2SP tlog-tiles): the hashes of the nodes of
    /// height `8 * level` from `256 * index`, `width` of them (1 to 256),
    /// each complete within the latest checkpoint; concatenated.
    pub async fn tile(&self, level: u32, index: u64, width: u64) -> Result<Vec<u8>, ReadError> {
        let signed = self.signed_size().await?;
        let height = level.saturating_mul(8);
        let beyond = || {
            ReadError::OutOfRange(format!(
                "tile {level}/{index} of width {width} is not complete in the log of size {signed}"
            ))
        };
        if height >= 64 || width == 0 || width > TILE_WIDTH {
            return Err(beyond());
        }
        let first = index.checked_mul(TILE_WIDTH).ok_or_else(beyond)?;
        let end = first.checked_add(width).ok_or_else(beyond)?;
        // Node i at height h covers leaves [i << h, (i + 1) << h).
        if end
            .checked_shl(height)
            .is_none_or(|leaves| leaves >> height != end || leaves > signed)
        {
            return Err(beyond());
        }
        let rows = store::node_range(self.inner.db.pool(), height as u8, first, end)
            .await
            .map_err(anyhow::Error::new)?;
        let mut hashes = Vec::with_capacity(width as usize * 32);
        for (expected, (idx, hash)) in (first..end).zip(&rows) {
            if *idx != expected || hash.len() != 32 {
                return Err(anyhow::anyhow!(
                    "tree node {height}/{expected} missing from the store"
                )
                .into());
            }
            hashes.extend_from_slice(hash);
        }
        if rows.len() as u64 != width {
            return Err(anyhow::anyhow!(
                "tree nodes of tile {level}/{index} missing from the store"
            )
            .into());
        }
        Ok(hashes)
    }

    /// The RFC 9162 inclusion proof of `index` in the tree of `size`.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(Vec<Hash>, Hash), ReadError> {
        let signed = self.signed_size().await?;
        if size > signed || index >= size {
            return Err(ReadError::OutOfRange(format!(
                "index {index} in tree size {size} (log size {signed})"
            )));
        }
        let plan = inclusion_plan(index, size).map_err(|e| ReadError::OutOfRange(e.to_string()))?;
        let leaf_id = schakel_tlog::NodeId { level: 0, index };
        let mut ids = plan.nodes().to_vec();
        ids.push(leaf_id);
        let hashes = store::nodes(self.inner.db.pool(), self.inner.db.backend(), &ids).await?;
        let (proof_hashes, leaf) = hashes.split_at(hashes.len() - 1);
        let proof = plan.assemble(proof_hashes).map_err(anyhow::Error::new)?;
        Ok((proof, leaf[0]))
    }

    /// The RFC 9162 consistency proof between tree sizes `old` and `new`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ReadError> {
        let signed = self.signed_size().await?;
        if old == 0 || old > new || new > signed {
            return Err(ReadError::OutOfRange(format!(
                "sizes {old} -> {new} (log size {signed}); need 0 < old <= new"
            )));
        }
        let plan = consistency_plan(old, new).map_err(|e| ReadError::OutOfRange(e.to_string()))?;
        let hashes =
            store::nodes(self.inner.db.pool(), self.inner.db.backend(), plan.nodes()).await?;
        Ok(plan.assemble(&hashes).map_err(anyhow::Error::new)?)
    }

    /// The first index whose body is still held.
    pub async fn first_with_body(&self) -> anyhow::Result<u64> {
        match store::first_with_body(self.inner.db.pool()).await? {
            Some(first) => Ok(first),
            None => Ok(store::tree_size(self.inner.db.pool()).await?),
        }
    }
}

impl AuditSink for AuditLog {
    fn append(&self, entry: pb::AuditEntry, append_id: String) -> AppendFuture<'_> {
        Box::pin(async move {
            AuditLog::append(self, entry, append_id)
                .await
                .map_err(|e| match e {
                    AppendError::Invalid(invalid) => AuditError::Rejected(invalid.to_string()),
                    AppendError::Unavailable(why) => AuditError::Unavailable(why),
                })
        })
    }

    fn probe(&self) -> schakel_kit::audit::ProbeFuture<'_> {
        Box::pin(async move {
            if *self.inner.active.borrow() && !self.inner.db.pool().is_closed() {
                Ok(())
            } else {
                Err(AuditError::Unavailable("not the writer".into()))
            }
        })
    }
}

fn to_proto(
    origin: &str,
    (size, root, note, signed_at): store::StoredCheckpoint,
) -> pb::Checkpoint {
    pb::Checkpoint {
        signed_note: note,
        origin: origin.into(),
        tree_size: size,
        root_hash: root,
        signed_at: Some(to_timestamp(signed_at)),
    }
}

/// Loads the tree's right frontier from storage and checks it against the
/// latest signed checkpoint. Returns the frontier and the newest entry time.
pub(crate) async fn load_range(db: &Database) -> anyhow::Result<(CompactRange, i64)> {
    let size = store::tree_size(db.pool()).await?;
    let peaks = store::nodes(db.pool(), db.backend(), &CompactRange::peak_ids(size)).await?;
    let range = CompactRange::from_peaks(size, peaks)?;
    if let Some((signed, root, _, time)) = store::latest_checkpoint(db.pool()).await? {
        anyhow::ensure!(
            signed == size && root.as_slice() == range.root(),
            "audit log integrity: the stored tree (size {size}) does not match the latest signed checkpoint \
             (size {signed}); run `schakel audit verify` to find the first altered entry"
        );
        return Ok((range, time));
    }
    Ok((range, 0))
}

/// The receipt of an entry appended earlier.
pub(crate) async fn receipt_of(
    db: &Database,
    index: u64,
    time: i64,
) -> anyhow::Result<pb::AppendResponse> {
    let leaf = store::nodes(
        db.pool(),
        db.backend(),
        &[schakel_tlog::NodeId { level: 0, index }],
    )
    .await?;
    Ok(pb::AppendResponse {
        index,
        time: Some(to_timestamp(time)),
        leaf_hash: leaf[0].to_vec(),
    })
}
