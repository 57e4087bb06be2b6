//! Transparency-log primitives for Schakel's audit log.
//!
//! Everything here is pure and free of I/O, so the same code runs inside the
//! audit service (which stores the tree) and inside independent verifiers
//! (`schakel audit verify`, third parties):
//!
//! - [`merkle`]: RFC 9162 section 2.1 hashing and the append-only
//!   [`CompactRange`] frontier that the log keeps in memory.
//! - [`proof`]: inclusion and consistency proof *generation* as a two-phase
//!   [`ProofPlan`], so a store can fetch every node it needs in one batch.
//! - [`verify`]: RFC 9162 proof verification.
//! - [`checkpoint`]: C2SP `tlog-checkpoint` note bodies.
//! - [`note`]: C2SP `signed-note` with Ed25519 signatures.
//!
//! # Example
//!
//! ```
//! use schakel_tlog::{CompactRange, leaf_hash, inclusion_plan, verify_inclusion};
//! use std::collections::HashMap;
//!
//! let mut tree = CompactRange::new();
//! let mut store = HashMap::new();
//! for entry in ["a", "b", "c"] {
//!     store.extend(tree.append(leaf_hash(entry.as_bytes())));
//! }
//! let plan = inclusion_plan(1, tree.size())?;
//! let fetched: Vec<_> = plan.nodes().iter().map(|id| store[id]).collect();
//! let proof = plan.assemble(&fetched)?;
//! verify_inclusion(&leaf_hash(b"b"), 1, tree.size(), &proof, &tree.root())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod verify;

pub use checkpoint::{Checkpoint, CheckpointError, open_checkpoint};
pub use merkle::{CompactRange, MerkleError, NodeId, empty_root, leaf_hash, node_hash};
pub use note::{NoteError, NoteSigner, NoteVerifier};
pub use proof::{ProofError, ProofPlan, consistency_plan, inclusion_plan, root_plan};
pub use verify::{VerifyError, verify_consistency, verify_inclusion};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];
