//! Property tests: the frontier, the proof plans and the verifier against
//! the naive recursive definitions of RFC 9162, and against tampering.

use proptest::collection::vec;
use proptest::prelude::*;
use schakel_tlog::{
    CompactRange, Hash, consistency_plan, inclusion_plan, leaf_hash, root_plan, verify_consistency,
    verify_inclusion,
};

use crate::common;
use crate::common::{MemTree, entries};

const MAX_SIZE: u64 = 300;

fn flip(proof: &[Hash], element: usize, bit: usize) -> Vec<Hash> {
    let mut tampered = proof.to_vec();
    tampered[element][bit / 8] ^= 1 << (bit % 8);
    tampered
}

proptest! {
    #[test]
    fn frontier_root_matches_naive_mth(
        entries in vec(vec(any::<u8>(), 0..12), 1..=MAX_SIZE as usize),
    ) {
        let tree = MemTree::from_entries(&entries);
        let size = entries.len() as u64;
        prop_assert_eq!(tree.range.size(), size);
        prop_assert_eq!(tree.range.root(), common::mth(&tree.leaves));
        prop_assert_eq!(tree.run(&root_plan(size)), vec![common::mth(&tree.leaves)]);
        // Every intermediate root too (each prefix is a tree of its own).
        for s in [1, size / 3, size / 2, size - 1] {
            prop_assert_eq!(tree.roots[s as usize], common::mth(&tree.leaves[..s as usize]));
        }
    }

    #[test]
    fn frontier_round_trips_through_stored_peaks(
        size in 0..=MAX_SIZE, more in 1..40u64, salt: [u8; 4],
    ) {
        let all = entries(size + more, &salt);
        let tree = MemTree::from_entries(&all[..size as usize]);
        let ids = CompactRange::peak_ids(size);
        prop_assert_eq!(ids.len(), size.count_ones() as usize);
        let peaks: Vec<Hash> = ids.iter().map(|id| tree.nodes[id]).collect();
        let mut reloaded = CompactRange::from_peaks(size, peaks).unwrap();
        prop_assert_eq!(reloaded.size(), size);
        prop_assert_eq!(reloaded.root(), tree.range.root());
        // The reloaded frontier keeps growing exactly like the original.
        let mut original = tree.range.clone();
        for entry in &all[size as usize..] {
            let leaf = leaf_hash(entry);
            prop_assert_eq!(reloaded.append(leaf), original.append(leaf));
        }
        prop_assert_eq!(reloaded.root(), original.root());
        prop_assert!(CompactRange::from_peaks(size, vec![[0; 32]; ids.len() + 1]).is_err());
    }

    #[test]
    fn inclusion_proofs_verify_and_match_rfc_path(size in 1..=MAX_SIZE, pick: u64, salt: [u8; 4]) {
        let tree = MemTree::from_entries(&entries(size, &salt));
        let root = tree.range.root();
        // The naive PATH is quadratic: compare a few indices here (all of
        // them in the exhaustive small-tree test), verify every one.
        for index in [0, size / 2, size - 1, pick % size] {
            let proof = tree.run(&inclusion_plan(index, size).unwrap());
            prop_assert_eq!(&proof, &common::path(index as usize, &tree.leaves));
        }
        for index in 0..size {
            let proof = tree.run(&inclusion_plan(index, size).unwrap());
            let leaf = tree.leaves[index as usize];
            prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
        }
    }

    #[test]
    fn tampered_inclusion_proofs_fail(
        size in 2..=MAX_SIZE, pick: u64, element: usize, bit in 0..256usize, salt: [u8; 4],
    ) {
        let tree = MemTree::from_entries(&entries(MAX_SIZE, &salt));
        let index = pick % size;
        let leaf = tree.leaves[index as usize];
        let root = tree.roots[size as usize];
        let proof = tree.run(&inclusion_plan(index, size).unwrap());
        prop_assert!(!proof.is_empty());
        let tampered = flip(&proof, element % proof.len(), bit);
        prop_assert!(verify_inclusion(&leaf, index, size, &tampered, &root).is_err());
        for other in (0..size).filter(|&i| i != index) {
            prop_assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err());
        }
        // Another size: its own root must not be provable with this proof.
        // (Against the *same* root a different size can verify when the
        // proof shape is identical; the size is bound to the root by the
        // signed checkpoint, not by the proof.)
        for other in (index + 1..=MAX_SIZE).filter(|&s| s != size) {
            let other_root = tree.roots[other as usize];
            prop_assert!(verify_inclusion(&leaf, index, other, &proof, &other_root).is_err());
        }
        prop_assert!(verify_inclusion(&leaf, index, size, &proof[1..], &root).is_err());
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_match_rfc_proof(
        size in 1..=MAX_SIZE, pairs in vec((any::<u64>(), any::<u64>()), 1..24), salt: [u8; 4],
    ) {
        let tree = MemTree::from_entries(&entries(size, &salt));
        for (a, b) in pairs {
            let (old, new) = (a % (size + 1), b % (size + 1));
            let (old, new) = (old.min(new), old.max(new));
            let proof = tree.run(&consistency_plan(old, new).unwrap());
            let naive = common::consistency(old as usize, &tree.leaves[..new as usize]);
            prop_assert_eq!(&proof, &naive);
            let (old_root, new_root) = (tree.roots[old as usize], tree.roots[new as usize]);
            prop_assert_eq!(verify_consistency(old, new, &proof, &old_root, &new_root), Ok(()));
        }
    }

    #[test]
    fn tampered_consistency_proofs_fail(
        new in 2..=MAX_SIZE, pick: u64, element: usize, bit in 0..256usize, salt: [u8; 4],
    ) {
        let tree = MemTree::from_entries(&entries(MAX_SIZE, &salt));
        let old = 1 + pick % (new - 1);
        let (old_root, new_root) = (tree.roots[old as usize], tree.roots[new as usize]);
        let proof = tree.run(&consistency_plan(old, new).unwrap());
        prop_assert!(!proof.is_empty());
        let tampered = flip(&proof, element % proof.len(), bit);
        prop_assert!(verify_consistency(old, new, &tampered, &old_root, &new_root).is_err());
        prop_assert!(verify_consistency(old, new, &proof, &new_root, &new_root).is_err());
        prop_assert!(verify_consistency(old, new, &proof, &old_root, &old_root).is_err());
        for other in (1..=MAX_SIZE).filter(|&s| s != old && s <= new) {
            let other_root = tree.roots[other as usize];
            prop_assert!(verify_consistency(other, new, &proof, &other_root, &new_root).is_err());
        }
        for other in (old..=MAX_SIZE).filter(|&s| s != new) {
            let other_root = tree.roots[other as usize];
            prop_assert!(verify_consistency(old, other, &proof, &old_root, &other_root).is_err());
        }
        prop_assert!(verify_consistency(old, new, &proof[1..], &old_root, &new_root).is_err());
    }
}

/// Exhaustive over small trees: every (index, size) and every (old, new).
#[test]
fn all_small_proofs_match_the_rfc_definitions() {
    let tree = MemTree::from_entries(&entries(64, b"small"));
    for new in 0..=64u64 {
        let root = tree.roots[new as usize];
        let leaves = &tree.leaves[..new as usize];
        for index in 0..new {
            let proof = tree.run(&inclusion_plan(index, new).unwrap());
            assert_eq!(proof, common::path(index as usize, leaves));
            verify_inclusion(&leaves[index as usize], index, new, &proof, &root).unwrap();
        }
        for old in 0..=new {
            let proof = tree.run(&consistency_plan(old, new).unwrap());
            assert_eq!(proof, common::consistency(old as usize, leaves));
            verify_consistency(old, new, &proof, &tree.roots[old as usize], &root).unwrap();
        }
    }
}
