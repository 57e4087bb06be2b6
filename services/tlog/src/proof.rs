//! Proof generation without the whole tree in memory.
//!
//! A proof is a list of subtree hashes of the RFC 9162 tree. Every such
//! subtree is either perfect (a stored [`NodeId`]) or lies on the right edge
//! of the tree, in which case its hash is folded from the perfect nodes that
//! cover it. Generation is therefore split in two phases: a [`ProofPlan`]
//! names the perfect nodes to fetch (so an async store can get them in one
//! batch), and [`ProofPlan::assemble`] turns the fetched hashes into the
//! proof.

use crate::Hash;
use crate::merkle::{NodeId, fold_right, range_nodes};

/// Errors planning or assembling a proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// An inclusion proof was requested for a leaf outside the tree.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof was requested from a larger to a smaller tree.
    #[error("old tree size {old} is larger than new tree size {new}")]
    OldSizeExceedsNew {
        /// The old tree size.
        old: u64,
        /// The new tree size.
        new: u64,
    },
    /// `assemble` got a different number of hashes than `nodes()` lists.
    #[error("the plan needs {expected} node hashes, got {got}")]
    WrongHashCount {
        /// `nodes().len()`.
        expected: usize,
        /// The number of hashes supplied.
        got: usize,
    },
}

/// What to fetch to build one proof, and how to fold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofPlan {
    /// The perfect nodes to fetch, grouped by proof element in order.
    nodes: Vec<NodeId>,
    /// For each proof element, how many consecutive entries of `nodes`
    /// (largest first) fold into it.
    parts: Vec<usize>,
}

impl ProofPlan {
    /// Plans a proof whose elements are the RFC 9162 subtrees `ranges`
    /// (half-open leaf ranges), in proof order.
    fn from_ranges(ranges: &[(u64, u64)]) -> Self {
        let mut nodes = Vec::new();
        let mut parts = Vec::with_capacity(ranges.len());
        for &(begin, end) in ranges {
            let covering = range_nodes(begin, end);
            parts.push(covering.len());
            nodes.extend(covering);
        }
        Self { nodes, parts }
    }

    /// The distinct perfect nodes to fetch (each is a stored node: level 0 =
    /// leaf hashes, level l = hash of a complete subtree of 2^l leaves).
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// The number of hashes in the assembled proof.
    pub fn proof_len(&self) -> usize {
        self.parts.len()
    }

    /// Builds the proof from the fetched hashes (same order as `nodes()`);
    /// non-perfect right-edge subtrees are folded from their perfect parts.
    pub fn assemble(&self, hashes: &[Hash]) -> Result<Vec<Hash>, ProofError> {
        if hashes.len() != self.nodes.len() {
            return Err(ProofError::WrongHashCount {
                expected: self.nodes.len(),
                got: hashes.len(),
            });
        }
        let mut rest = hashes;
        let mut proof = Vec::with_capacity(self.parts.len());
        for &count in &self.parts {
            // Cannot fail: the counts sum to nodes.len() == hashes.len().
            let (element, tail) =
                rest.split_at_checked(count)
                    .ok_or(ProofError::WrongHashCount {
                        expected: self.nodes.len(),
                        got: hashes.len(),
                    })?;
            proof.push(fold_right(element));
            rest = tail;
        }
        Ok(proof)
    }
}

/// The largest power of two strictly below `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    1u64 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// Plans the inclusion proof PATH(index, D[0:size]) of RFC 9162 section
/// 2.1.3.1, ordered from the leaf's sibling up to the root's child.
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut begin, mut end) = (0u64, size);
    let mut ranges = Vec::new();
    // Walk down from the root; the sibling of each subtree on the path is a
    // proof element, and the RFC lists them bottom-up.
    while end - begin > 1 {
        let mid = begin + split_point(end - begin);
        if index < mid {
            ranges.push((mid, end));
            end = mid;
        } else {
            ranges.push((begin, mid));
            begin = mid;
        }
    }
    ranges.reverse();
    Ok(ProofPlan::from_ranges(&ranges))
}

/// Plans the consistency proof PROOF(old, D[0:new]) of RFC 9162 section
/// 2.1.4.1. `old == 0` and `old == new` give an empty proof.
pub fn consistency_plan(old: u64, new: u64) -> Result<ProofPlan, ProofError> {
    if old > new {
        return Err(ProofError::OldSizeExceedsNew { old, new });
    }
    let mut ranges = Vec::new();
    if old > 0 {
        // SUBPROOF(old, D[begin:end], complete), unrolled.
        let (mut begin, mut end, mut complete) = (0u64, new, true);
        while old - begin < end - begin {
            let mid = begin + split_point(end - begin);
            if old <= mid {
                ranges.push((mid, end));
                end = mid;
            } else {
                ranges.push((begin, mid));
                begin = mid;
                complete = false;
            }
        }
        // The old tree is now exactly [begin, end). The verifier knows its
        // hash already only if it is the whole old tree.
        if !complete {
            ranges.push((begin, end));
        }
        ranges.reverse();
    }
    Ok(ProofPlan::from_ranges(&ranges))
}

/// Plans the root of [0, size): `assemble` returns a single-element vector
/// holding the root ([`empty_root`](crate::empty_root) for 0).
pub fn root_plan(size: u64) -> ProofPlan {
    ProofPlan {
        nodes: range_nodes(0, size),
        parts: vec![size.count_ones() as usize],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::empty_root;

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn inclusion_plan_names_right_edge_parts() {
        // Tree of 7: leaf 0's path is leaf 1, [2,4), then [4,7) = [4,6)+[6].
        let plan = inclusion_plan(0, 7).unwrap();
        assert_eq!(
            plan.nodes(),
            &[
                NodeId::new(0, 1),
                NodeId::new(1, 1),
                NodeId::new(1, 2),
                NodeId::new(0, 6)
            ]
        );
        assert_eq!(plan.proof_len(), 3);
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        assert_eq!(
            inclusion_plan(0, 0),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert!(inclusion_plan(u64::MAX, u64::MAX).is_err());
        assert_eq!(
            consistency_plan(3, 2),
            Err(ProofError::OldSizeExceedsNew { old: 3, new: 2 })
        );
    }

    #[test]
    fn extreme_sizes_plan_without_overflow() {
        // The last leaf of a tree of 2^64 - 1 leaves pairs with every other peak.
        let plan = inclusion_plan(u64::MAX - 1, u64::MAX).unwrap();
        assert_eq!(plan.proof_len(), 63);
        let plan = inclusion_plan(0, u64::MAX).unwrap();
        assert_eq!(plan.proof_len(), 64);
        let plan = consistency_plan(u64::MAX - 1, u64::MAX).unwrap();
        assert!(plan.proof_len() > 0);
        assert_eq!(root_plan(u64::MAX).nodes().len(), 64);
    }

    #[test]
    fn trivial_consistency_proofs_are_empty() {
        for (old, new) in [(0, 0), (0, 9), (9, 9)] {
            let plan = consistency_plan(old, new).unwrap();
            assert!(plan.nodes().is_empty());
            assert_eq!(plan.assemble(&[]).unwrap(), Vec::<Hash>::new());
        }
    }

    #[test]
    fn root_of_empty_tree_is_empty_root() {
        assert_eq!(root_plan(0).assemble(&[]).unwrap(), vec![empty_root()]);
    }

    #[test]
    fn assemble_checks_the_hash_count() {
        let plan = inclusion_plan(0, 7).unwrap();
        assert_eq!(
            plan.assemble(&[[0; 32]; 3]),
            Err(ProofError::WrongHashCount {
                expected: 4,
                got: 3
            })
        );
    }
}
