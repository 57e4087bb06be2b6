//! Verifying the log from outside, trusting nothing but the checkpoint
//! signer's key: what `schakel audit verify` and external auditors run.
//!
//! Fetches every entry, recomputes each leaf hash from the entry bytes and the
//! tree root at every signed checkpoint (the log signs one per committed
//! batch), checks the latest checkpoint's signature, and proves consistency with
//! a checkpoint saved earlier. The first failure names the first bad index.

use schakel_proto::v1::{self as pb, audit_service_client::AuditServiceClient};
use schakel_tlog::{
    CompactRange, Hash, NoteVerifier, leaf_hash, open_checkpoint, verify_consistency,
};
use tonic::client::GrpcService;

use crate::entry;

/// What was verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Entries in the verified tree.
    pub tree_size: u64,
    /// Entries whose bytes were rehashed (the others' bodies were dropped after retention).
    pub bodies_checked: u64,
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
    /// The entry's bytes do not hash to its stored leaf hash, or do not decode
    /// to an entry with this index.
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
            VerifyError::Entry { index, .. } => Some(*index),
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

    let mut range = CompactRange::new();
    let mut checkpoints = std::collections::VecDeque::new();
    let mut next_checkpoints_after = 0u64;
    let mut batch_start = 0u64;
    let mut bodies_checked = 0;
    let mut checkpoints_checked = 0;
    let mut saved_root_seen = saved.as_ref().is_none_or(|s| s.size == 0);
    progress(0, head.size);
    while range.size() < head.size {
        let start = range.size();
        let leaves = client
            .get_entries(pb::GetEntriesRequest {
                start,
                end: head.size,
            })
            .await?
            .into_inner()
            .leaves;
        if leaves.is_empty() {
            return Err(VerifyError::Entry {
                index: start,
                reason: "missing from the log".into(),
            });
        }
        for leaf in leaves {
            let index = range.size();
            let stored: Hash =
                leaf.leaf_hash
                    .as_slice()
                    .try_into()
                    .map_err(|_| VerifyError::Entry {
                        index,
                        reason: "stored leaf hash is not 32 bytes".into(),
                    })?;
            if leaf.index != index {
                return Err(VerifyError::Entry {
                    index,
                    reason: format!("server sent index {} out of order", leaf.index),
                });
            }
            if !leaf.body_dropped {
                if leaf_hash(&leaf.entry_bytes) != stored {
                    return Err(VerifyError::Entry {
                        index,
                        reason: "entry bytes do not match the leaf hash".into(),
                    });
                }
                let decoded = entry::decode(&leaf.entry_bytes).map_err(|e| VerifyError::Entry {
                    index,
                    reason: format!("undecodable entry: {e}"),
                })?;
                if decoded.index != index {
                    return Err(VerifyError::Entry {
                        index,
                        reason: format!("entry claims index {}", decoded.index),
                    });
                }
                bodies_checked += 1;
            }
            range.append(stored);
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
        bodies_checked,
        checkpoints_checked,
        checkpoint_note: latest.signed_note,
    })
}
