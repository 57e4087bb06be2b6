//! Verifying the log from outside, trusting nothing but the checkpoint
//! signer's key: what `schakel audit verify` and external auditors run.
//!
//! The tree is verified from its tiles alone (anyone authenticated): every
//! leaf hash, the root at every signed checkpoint (the log signs one per
//! committed batch), the latest checkpoint's signature, and consistency with
//! a checkpoint verified earlier. Bodies are verified within the caller's
//! scope (GetLogInfo says which): each body rehashes to its verified leaf
//! hash. A body may be missing only below the highest retention frontier
//! recorded in a verified entry. The all-seeing auditor also rebuilds the
//! query index (columns and posting lists) from the verified bodies. The
//! first failure names the first bad index.

mod index;

use schakel_proto::v1::{self as pb, audit_service_client::AuditServiceClient};
use schakel_tlog::{
    CompactRange, Hash, NoteVerifier, leaf_hash, open_checkpoint, verify_consistency,
};
use tonic::client::GrpcService;

use crate::{
    entry,
    log::{MAX_LEAVES_PER_CALL, TILE_WIDTH},
};

/// What was verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Entries in the verified tree.
    pub tree_size: u64,
    /// Which bodies the caller could read.
    pub scope: pb::BodyScope,
    /// Entries whose bytes were rehashed.
    pub bodies_checked: u64,
    /// Entries outside the caller's scope (their leaf hashes are verified).
    pub bodies_withheld: u64,
    /// Entries whose bodies were dropped, all below the frontier.
    pub bodies_dropped: u64,
    /// The highest retention frontier recorded in a verified entry.
    pub retention_frontier: u64,
    /// Whether the query index was rebuilt and compared (all-seeing only).
    pub index_checked: bool,
    /// Signed checkpoints whose roots were recomputed.
    pub checkpoints_checked: u64,
    /// The latest signed checkpoint, to save for the next `--since`.
    pub checkpoint_note: String,
}

/// Why verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A checkpoint's signature or format is wrong.
    #[error("checkpoint of size {size}: {reason}")]
    Checkpoint {
        /// Tree size claimed (0 when unreadable).
        size: u64,
        /// What is wrong.
        reason: String,
    },
    /// The entry's bytes do not hash to its leaf hash, do not decode to an
    /// entry with this index, or are missing above the retention frontier.
    #[error("entry {index}: {reason}")]
    Entry {
        /// The first bad index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The leaves from `first` up to `size` do not produce the signed root.
    #[error(
        "entries {first}..{size}: the tree root does not match the signed checkpoint of size {size} (first bad index {first})"
    )]
    Root {
        /// The first index of the batch that changed.
        first: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The stored query index disagrees with the verified bodies: queries
    /// and subject reports would miss or misplace this entry.
    #[error("entry {index}: the query index disagrees with the verified body: {reason}")]
    Index {
        /// The first entry whose index disagrees.
        index: u64,
        /// What disagrees.
        reason: String,
    },
    /// The saved checkpoint is not a prefix of the current log.
    #[error("the log is not consistent with the saved checkpoint of size {size}: {reason}")]
    Inconsistent {
        /// Size of the saved checkpoint.
        size: u64,
        /// What is wrong.
        reason: String,
    },
    /// Talking to the server failed.
    #[error("audit service: {0}")]
    Transport(#[from] tonic::Status),
}

impl VerifyError {
    /// The first bad index, when the failure is about entries.
    pub fn first_bad_index(&self) -> Option<u64> {
        match self {
            VerifyError::Entry { index, .. } | VerifyError::Index { index, .. } => Some(*index),
            VerifyError::Root { first, .. } => Some(*first),
            _ => None,
        }
    }
}

fn checkpoint_error(size: u64, err: impl std::fmt::Display) -> VerifyError {
    VerifyError::Checkpoint {
        size,
        reason: err.to_string(),
    }
}

fn entry_error(index: u64, reason: impl Into<String>) -> VerifyError {
    VerifyError::Entry {
        index,
        reason: reason.into(),
    }
}

/// The leaf hashes `[start, end)` from level-0 tiles (`start` a multiple of
/// the tile width).
async fn leaf_hashes<T>(
    client: &mut AuditServiceClient<T>,
    start: u64,
    end: u64,
) -> Result<Vec<Hash>, VerifyError>
where
    T: GrpcService<tonic::body::Body> + Clone,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut hashes = Vec::with_capacity((end - start) as usize);
    let mut at = start;
    while at < end {
        let width = (end - at).min(TILE_WIDTH);
        let tile = client
            .get_tile(pb::GetTileRequest {
                level: 0,
                index: at / TILE_WIDTH,
                width: width as u32,
            })
            .await?
            .into_inner()
            .hashes;
        if tile.len() as u64 != width * 32 {
            return Err(entry_error(at, "the tile holds the wrong number of hashes"));
        }
        hashes.extend(tile.chunks_exact(32).map(|h| {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(h);
            hash
        }));
        at += width;
    }
    Ok(hashes)
}

/// Indices whose bodies the log no longer holds, as ascending ranges.
#[derive(Default)]
struct Dropped(Vec<(u64, u64)>);

impl Dropped {
    fn add(&mut self, index: u64) {
        match self.0.last_mut() {
            Some((_, end)) if *end == index => *end += 1,
            _ => self.0.push((index, index + 1)),
        }
    }
    fn count(&self) -> u64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }
    /// The first dropped index at or above `frontier`.
    fn first_above(&self, frontier: u64) -> Option<u64> {
        self.0
            .iter()
            .find(|(_, end)| *end > frontier)
            .map(|(start, _)| (*start).max(frontier))
    }
}

/// Verifies the whole log served by `client` against the pinned `verifier`
/// and `origin`; `since` is a signed checkpoint saved earlier. `progress` is
/// called with (entries done, total).
pub async fn verify<T>(
    client: &mut AuditServiceClient<T>,
    verifier: &NoteVerifier,
    origin: &str,
    since: Option<&str>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verified, VerifyError>
where
    T: GrpcService<tonic::body::Body> + Clone,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let scope = client
        .get_log_info(pb::GetLogInfoRequest {})
        .await?
        .into_inner()
        .body_scope();
    let latest = client
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await?
        .into_inner()
        .checkpoint
        .unwrap_or_default();
    let head = open_checkpoint(&latest.signed_note, verifier, Some(origin))
        .map_err(|e| checkpoint_error(latest.tree_size, e))?;
    let saved = match since {
        Some(note) => Some(open_checkpoint(note, verifier, Some(origin)).map_err(|e| {
            VerifyError::Inconsistent {
                size: 0,
                reason: e.to_string(),
            }
        })?),
        None => None,
    };
    if let Some(saved) = &saved
        && saved.size > head.size
    {
        return Err(VerifyError::Inconsistent {
            size: saved.size,
            reason: format!("the log shrank to {}", head.size),
        });
    }
    let reads_bodies = matches!(scope, pb::BodyScope::Organisation | pb::BodyScope::All);
    let all_seeing = scope == pb::BodyScope::All;
    let mut index_check = if all_seeing {
        Some(index::IndexCheck::start(client).await?)
    } else {
        None
    };

    let mut range = CompactRange::new();
    let mut checkpoints = std::collections::VecDeque::new();
    let mut next_checkpoints_after = 0u64;
    let mut batch_start = 0u64;
    let (mut bodies_checked, mut withheld) = (0u64, 0u64);
    let mut dropped = Dropped::default();
    let mut frontier = 0u64;
    let mut checkpoints_checked = 0;
    let mut saved_root_seen = saved.as_ref().is_none_or(|s| s.size == 0);
    progress(0, head.size);
    while range.size() < head.size {
        let start = range.size();
        let end = head.size.min(start + MAX_LEAVES_PER_CALL);
        let hashes = leaf_hashes(client, start, end).await?;
        let mut leaves = Vec::new();
        while reads_bodies && start + (leaves.len() as u64) < end {
            let page = client
                .get_entries(pb::GetEntriesRequest {
                    start: start + leaves.len() as u64,
                    end,
                    with_index: all_seeing,
                })
                .await?
                .into_inner()
                .leaves;
            if page.is_empty() {
                return Err(entry_error(
                    start + leaves.len() as u64,
                    "missing from the log",
                ));
            }
            leaves.extend(page);
        }
        for (offset, hash) in hashes.into_iter().enumerate() {
            let index = start + offset as u64;
            if let Some(leaf) = leaves.get(offset) {
                if leaf.index != index {
                    return Err(entry_error(
                        index,
                        format!("server sent index {} out of order", leaf.index),
                    ));
                }
                if leaf.leaf_hash.as_slice() != hash {
                    return Err(entry_error(
                        index,
                        "the entry's leaf hash differs from the tree's tile",
                    ));
                }
                if leaf.body_withheld {
                    if all_seeing {
                        return Err(entry_error(
                            index,
                            "body withheld from the all-seeing auditor",
                        ));
                    }
                    withheld += 1;
                } else if leaf.body_dropped {
                    dropped.add(index);
                } else {
                    if leaf_hash(&leaf.entry_bytes) != hash {
                        return Err(entry_error(index, "entry bytes do not match the leaf hash"));
                    }
                    let decoded = entry::decode(&leaf.entry_bytes)
                        .map_err(|e| entry_error(index, format!("undecodable entry: {e}")))?;
                    if decoded.index != index {
                        return Err(entry_error(
                            index,
                            format!("entry claims index {}", decoded.index),
                        ));
                    }
                    if let Some(f) = entry::retention_frontier(&decoded) {
                        frontier = frontier.max(f);
                    }
                    if let Some(check) = &mut index_check {
                        check.entry(index, &decoded, leaf.index_row.as_ref());
                    }
                    bodies_checked += 1;
                }
            }
            range.append(hash);
            if let Some(check) = &mut index_check {
                check.reached(client, range.size()).await?;
            }
            // Compare with every signed checkpoint of this size.
            loop {
                if checkpoints.is_empty() && next_checkpoints_after < head.size {
                    let page = client
                        .list_checkpoints(pb::ListCheckpointsRequest {
                            after_tree_size: next_checkpoints_after,
                            limit: 1000,
                        })
                        .await?
                        .into_inner()
                        .checkpoints;
                    next_checkpoints_after = page.last().map_or(head.size, |c| c.tree_size);
                    checkpoints.extend(page);
                }
                let Some(front) = checkpoints.front() else {
                    break;
                };
                if front.tree_size > range.size() {
                    break;
                }
                let c = checkpoints.pop_front().unwrap_or_default();
                let opened = open_checkpoint(&c.signed_note, verifier, Some(origin))
                    .map_err(|e| checkpoint_error(c.tree_size, e))?;
                if opened.size == range.size() {
                    if opened.root != range.root() {
                        return Err(VerifyError::Root {
                            first: batch_start,
                            size: opened.size,
                        });
                    }
                    checkpoints_checked += 1;
                    batch_start = range.size();
                }
            }
            if let Some(saved) = &saved
                && saved.size == range.size()
            {
                if saved.root != range.root() {
                    return Err(VerifyError::Inconsistent {
                        size: saved.size,
                        reason: "the entries up to it hash to another root".into(),
                    });
                }
                saved_root_seen = true;
            }
        }
        progress(range.size(), head.size);
    }
    if range.root() != head.root {
        return Err(VerifyError::Root {
            first: batch_start,
            size: head.size,
        });
    }
    if let Some(index) = dropped.first_above(frontier) {
        return Err(entry_error(
            index,
            format!(
                "body missing at or above the retention frontier {frontier} recorded in the log"
            ),
        ));
    }
    if let Some(check) = index_check {
        check.finish()?;
    }
    if let Some(saved) = &saved {
        if !saved_root_seen {
            return Err(VerifyError::Inconsistent {
                size: saved.size,
                reason: "never reached".into(),
            });
        }
        if saved.size > 0 {
            let proof = client
                .get_consistency_proof(pb::GetConsistencyProofRequest {
                    old_tree_size: saved.size,
                    new_tree_size: head.size,
                })
                .await?
                .into_inner()
                .hashes;
            let proof: Vec<Hash> = proof
                .iter()
                .filter_map(|h| h.as_slice().try_into().ok())
                .collect();
            verify_consistency(saved.size, head.size, &proof, &saved.root, &head.root).map_err(
                |e| VerifyError::Inconsistent {
                    size: saved.size,
                    reason: e.to_string(),
                },
            )?;
        }
    }
    Ok(Verified {
        tree_size: head.size,
        scope,
        bodies_checked,
        bodies_withheld: withheld,
        bodies_dropped: dropped.count(),
        retention_frontier: frontier,
        index_checked: all_seeing,
        checkpoints_checked,
        checkpoint_note: latest.signed_note,
    })
}
