//! RFC 9162 section 2.1.3.2 (inclusion) and 2.1.4.2 (consistency) proof
//! verification.
//!
//! This module deliberately shares no code with [`crate::proof`] beyond the
//! hash functions, so that a bug in proof generation cannot hide itself.

use crate::Hash;
use crate::merkle::{empty_root, node_hash};

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The old tree size is larger than the new one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    OldSizeExceedsNew {
        /// The claimed old tree size.
        old: u64,
        /// The claimed new tree size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for the claimed sizes.
    #[error("the proof has {got} hashes, expected {expected}")]
    WrongProofSize {
        /// The number of hashes the sizes call for.
        expected: usize,
        /// The number of hashes in the proof.
        got: usize,
    },
    /// The proof does not lead to the claimed (new) root.
    #[error("the proof does not match the root hash")]
    RootMismatch,
    /// The consistency proof does not lead to the claimed old root.
    #[error("the proof does not match the old root hash")]
    OldRootMismatch,
}

/// The number of hashes in the inclusion proof of `index` in a tree of
/// `size` leaves (`index < size`): one per level where the path has a
/// perfect sibling, plus one per right-edge peak left of the path.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The number of hashes in the consistency proof from `old` to `new` leaves
/// (`0 < old < new`).
fn consistency_proof_len(old: u64, new: u64) -> usize {
    // The proof is the inclusion proof of the largest perfect subtree ending
    // at `old`, in the tree seen at that subtree's level, plus that subtree
    // itself unless it is the whole old tree.
    let level = old.trailing_zeros();
    let index = (old - 1) >> level;
    let blocks = ((new - 1) >> level) + 1;
    inclusion_proof_len(index, blocks) + usize::from(index != 0)
}

/// Shifts `a` and `b` right until the lowest bit of `a` is set or `a` is 0.
fn shift_to_set_bit(a: &mut u64, b: &mut u64) {
    let shift = if *a == 0 { 0 } else { a.trailing_zeros() };
    *a >>= shift;
    *b >>= shift;
}

/// Checks that the leaf with hash `leaf_hash` sits at `index` in the tree of
/// `size` leaves whose root is `root` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(VerifyError::WrongProofSize {
            expected,
            got: proof.len(),
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(VerifyError::WrongProofSize {
                expected,
                got: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            shift_to_set_bit(&mut fn_, &mut sn);
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(VerifyError::WrongProofSize {
            expected,
            got: proof.len(),
        });
    }
    if r != *root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root` (RFC 9162
/// section 2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots. An empty old tree is a
/// prefix of every tree; it needs an empty proof and `old_root` must be
/// [`empty_root`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), VerifyError> {
    if old_size > new_size {
        return Err(VerifyError::OldSizeExceedsNew {
            old: old_size,
            new: new_size,
        });
    }
    let expected = if old_size == 0 || old_size == new_size {
        0
    } else {
        consistency_proof_len(old_size, new_size)
    };
    if proof.len() != expected {
        return Err(VerifyError::WrongProofSize {
            expected,
            got: proof.len(),
        });
    }
    // An empty tree is a prefix of every tree, but its root is still fixed.
    let (fr, sr) = if old_size == 0 {
        (
            empty_root(),
            if new_size == 0 {
                empty_root()
            } else {
                *new_root
            },
        )
    } else if old_size == new_size {
        (*old_root, *old_root)
    } else {
        consistency_roots(old_size, new_size, proof, old_root)?
    };
    if fr != *old_root {
        return Err(VerifyError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Runs steps 2 to 6 of RFC 9162 section 2.1.4.2 for `0 < old < new` and a
/// non-empty proof, returning the recomputed old and new roots.
fn consistency_roots(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
) -> Result<(Hash, Hash), VerifyError> {
    let wrong_size = VerifyError::WrongProofSize {
        expected: consistency_proof_len(old, new),
        got: proof.len(),
    };
    // A power-of-two old tree is itself a node of the new tree, so the
    // proof omits it and the verifier starts from the old root.
    let (first, rest) = if old.is_power_of_two() {
        (old_root, proof)
    } else {
        proof.split_first().ok_or_else(|| wrong_size.clone())?
    };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    let ones = fn_.trailing_ones();
    fn_ >>= ones;
    sn >>= ones;
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(wrong_size);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            shift_to_set_bit(&mut fn_, &mut sn);
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_size);
    }
    Ok((fr, sr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;

    #[test]
    fn single_leaf_tree_needs_no_proof() {
        let leaf = leaf_hash(b"x");
        assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
        assert_eq!(
            verify_inclusion(&leaf, 0, 1, &[leaf], &leaf),
            Err(VerifyError::WrongProofSize {
                expected: 0,
                got: 1
            })
        );
    }

    #[test]
    fn extreme_indices_do_not_panic() {
        let h = [0u8; 32];
        assert_eq!(
            verify_inclusion(&h, u64::MAX, u64::MAX, &[], &h),
            Err(VerifyError::IndexOutOfRange {
                index: u64::MAX,
                size: u64::MAX
            })
        );
        assert!(verify_inclusion(&h, 0, u64::MAX, &[h; 64], &h).is_err());
        assert!(verify_inclusion(&h, u64::MAX - 1, u64::MAX, &[h; 63], &h).is_err());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &[h; 2], &h, &h).is_err());
        assert!(verify_consistency(1, u64::MAX, &[], &h, &h).is_err());
    }

    #[test]
    fn empty_old_tree_is_consistent_with_anything() {
        let any = [9u8; 32];
        assert_eq!(verify_consistency(0, 5, &[], &empty_root(), &any), Ok(()));
        assert_eq!(
            verify_consistency(0, 5, &[], &any, &any),
            Err(VerifyError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 0, &[], &empty_root(), &any),
            Err(VerifyError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 5, &[any], &empty_root(), &any),
            Err(VerifyError::WrongProofSize {
                expected: 0,
                got: 1
            })
        );
    }

    #[test]
    fn equal_sizes_need_equal_roots() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(verify_consistency(4, 4, &[], &a, &a), Ok(()));
        assert_eq!(
            verify_consistency(4, 4, &[], &a, &b),
            Err(VerifyError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(5, 4, &[], &a, &a),
            Err(VerifyError::OldSizeExceedsNew { old: 5, new: 4 })
        );
    }
}
