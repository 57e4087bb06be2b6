//! RFC 9162 section 2.1 Merkle tree hashing and the compact range (right
//! frontier) of an append-only tree.

use sha2::{Digest, Sha256};

use crate::Hash;

/// Domain-separation prefix for leaf hashes (RFC 9162 section 2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix for interior node hashes.
const NODE_PREFIX: u8 = 0x01;

/// Hashes a log entry into a leaf: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// Hashes two children into their parent: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Folds the hashes of adjacent perfect subtrees, largest (leftmost) first,
/// into the RFC 9162 hash of the range they cover.
///
/// The RFC splits a range at the largest power of two below its size, which
/// for such a decomposition always falls right after the first subtree; the
/// hash is therefore a right fold. An empty slice gives [`empty_root`].
pub(crate) fn fold_right(hashes: &[Hash]) -> Hash {
    let Some((last, rest)) = hashes.split_last() else {
        return empty_root();
    };
    rest.iter()
        .rev()
        .fold(*last, |acc, left| node_hash(left, &acc))
}

/// A perfect subtree: the 2^level leaves starting at leaf index << level.
///
/// Level 0 nodes are leaf hashes. This is the unit the audit service stores,
/// so that any proof can be built from stored nodes alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves; the subtree has 2^level leaves.
    pub level: u8,
    /// Position among the nodes of this level, counted from the left.
    pub index: u64,
}

impl NodeId {
    /// Creates a node id.
    pub fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// The half-open range of leaf indices under this node, or `None` when it
    /// does not fit in `u64` (such a node cannot exist in any log).
    pub fn leaf_range(&self) -> Option<(u64, u64)> {
        let width = 1u64.checked_shl(u32::from(self.level))?;
        let begin = self.index.checked_mul(width)?;
        let end = begin.checked_add(width)?;
        Some((begin, end))
    }
}

/// Errors building a Merkle structure from untrusted or stored input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The number of peak hashes does not match the tree size.
    #[error("a tree of size {size} has {expected} peaks, got {got}")]
    PeakCount {
        /// The tree size the peaks were given for.
        size: u64,
        /// `size.count_ones()`.
        expected: usize,
        /// The number of hashes supplied.
        got: usize,
    },
    /// The tree already holds `u64::MAX` leaves.
    #[error("the tree is full: it cannot grow beyond {} leaves", u64::MAX)]
    TreeFull,
}

/// The right frontier ("compact range") of a tree: the perfect subtrees that
/// cover [0, size), largest first.
///
/// This is all the state an append-only log needs to compute its root and
/// the new nodes created by each append.
#[derive(Clone, Debug, Default)]
pub struct CompactRange {
    size: u64,
    /// Hashes of the nodes in `peak_ids(size)` order.
    peaks: Vec<Hash>,
}

impl CompactRange {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The perfect nodes that make up the frontier of a tree of `size`
    /// leaves, largest first: one per set bit of `size`.
    pub fn peak_ids(size: u64) -> Vec<NodeId> {
        range_nodes(0, size)
    }

    /// Rebuilds a frontier from stored peak hashes, given in
    /// [`peak_ids`](Self::peak_ids) order.
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Result<Self, MerkleError> {
        let expected = size.count_ones() as usize;
        if peaks.len() != expected {
            return Err(MerkleError::PeakCount {
                size,
                expected,
                got: peaks.len(),
            });
        }
        Ok(Self { size, peaks })
    }

    /// The number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peak hashes, in [`peak_ids`](Self::peak_ids) order.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// The RFC 9162 Merkle tree hash of [0, size); [`empty_root`] for an
    /// empty tree.
    pub fn root(&self) -> Hash {
        fold_right(&self.peaks)
    }

    /// Appends a leaf hash and returns every perfect node that now exists
    /// and did not before: the leaf itself (`NodeId { level: 0, index:
    /// old_size }`) first, then each completed parent upward.
    ///
    /// A tree of `u64::MAX` leaves is full: appending to it changes nothing
    /// and returns no nodes. Use [`try_append`](Self::try_append) to detect
    /// that case.
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        self.try_append(leaf).unwrap_or_default()
    }

    /// Like [`append`](Self::append), but fails with
    /// [`MerkleError::TreeFull`] instead of ignoring the leaf.
    pub fn try_append(&mut self, leaf: Hash) -> Result<Vec<(NodeId, Hash)>, MerkleError> {
        let old_size = self.size;
        let new_size = old_size.checked_add(1).ok_or(MerkleError::TreeFull)?;
        let mut id = NodeId::new(0, old_size);
        let mut hash = leaf;
        let mut created = vec![(id, hash)];
        // Each trailing one bit of the old size is a peak of the same level
        // as the node being carried upward: merge them, like binary addition.
        while (old_size >> id.level) & 1 == 1 {
            let Some(left) = self.peaks.pop() else {
                break; // unreachable: peaks.len() == size.count_ones()
            };
            hash = node_hash(&left, &hash);
            id = NodeId::new(id.level + 1, id.index >> 1);
            created.push((id, hash));
        }
        self.peaks.push(hash);
        self.size = new_size;
        Ok(created)
    }
}

/// The perfect nodes covering [begin, end), largest first, when `begin` is
/// aligned to the largest power of two not above `end - begin` (true for the
/// whole tree and for every subtree of an RFC 9162 tree).
pub(crate) fn range_nodes(begin: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    let mut start = begin;
    let width = end.saturating_sub(begin);
    for level in (0..u64::BITS).rev() {
        if (width >> level) & 1 == 1 {
            // `level` < 64, so both the cast and the shifts are lossless.
            nodes.push(NodeId::new(level as u8, start >> level));
            start = start.wrapping_add(1u64 << level);
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let hex: String = empty_root().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(CompactRange::new().root(), empty_root());
    }

    #[test]
    fn peak_ids_follow_the_bits_of_the_size() {
        assert!(CompactRange::peak_ids(0).is_empty());
        assert_eq!(
            CompactRange::peak_ids(13),
            vec![NodeId::new(3, 0), NodeId::new(2, 2), NodeId::new(0, 12)]
        );
        let max = CompactRange::peak_ids(u64::MAX);
        assert_eq!(max.len(), 64);
        assert_eq!(max[0], NodeId::new(63, 0));
        assert_eq!(max[63], NodeId::new(0, u64::MAX - 1));
    }

    #[test]
    fn append_reports_new_nodes_bottom_up() {
        let mut tree = CompactRange::new();
        for i in 0..3u8 {
            tree.append(leaf_hash(&[i]));
        }
        let created = tree.append(leaf_hash(&[3]));
        let ids: Vec<_> = created.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            vec![NodeId::new(0, 3), NodeId::new(1, 1), NodeId::new(2, 0)]
        );
        assert_eq!(created[2].1, tree.root());
    }

    #[test]
    fn from_peaks_rejects_wrong_count() {
        let err = CompactRange::from_peaks(5, vec![[0; 32]]).unwrap_err();
        assert_eq!(
            err,
            MerkleError::PeakCount {
                size: 5,
                expected: 2,
                got: 1
            }
        );
    }

    #[test]
    fn full_tree_refuses_to_grow_without_panicking() {
        let mut tree = CompactRange::from_peaks(u64::MAX, vec![[7; 32]; 64]).unwrap();
        assert_eq!(tree.try_append([1; 32]), Err(MerkleError::TreeFull));
        assert!(tree.append([1; 32]).is_empty());
        assert_eq!(tree.size(), u64::MAX);

        let mut almost = CompactRange::from_peaks(u64::MAX - 1, vec![[7; 32]; 63]).unwrap();
        let created = almost.append([1; 32]);
        assert_eq!(created, vec![(NodeId::new(0, u64::MAX - 1), [1; 32])]);
        assert_eq!(almost.size(), u64::MAX);
    }

    #[test]
    fn leaf_range_never_overflows() {
        assert_eq!(NodeId::new(2, 3).leaf_range(), Some((12, 16)));
        assert_eq!(NodeId::new(64, 0).leaf_range(), None);
        assert_eq!(NodeId::new(255, 0).leaf_range(), None);
        assert_eq!(NodeId::new(1, u64::MAX).leaf_range(), None);
    }
}
