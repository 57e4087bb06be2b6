//! Helpers shared by the integration tests: an in-memory node store fed by
//! `CompactRange::append`, and naive recursive RFC 9162 definitions to
//! compare against.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use schakel_tlog::{CompactRange, Hash, NodeId, ProofPlan, empty_root, leaf_hash, node_hash};

/// A log kept the way the audit service keeps it: a frontier plus every
/// perfect node ever created, and (for tests) the root at every size.
#[derive(Default)]
pub struct MemTree {
    pub range: CompactRange,
    pub nodes: HashMap<NodeId, Hash>,
    pub leaves: Vec<Hash>,
    /// `roots[s]` is the root of the first `s` leaves.
    pub roots: Vec<Hash>,
}

impl MemTree {
    pub fn new() -> Self {
        Self {
            roots: vec![empty_root()],
            ..Self::default()
        }
    }

    pub fn from_entries<T: AsRef<[u8]>>(entries: &[T]) -> Self {
        let mut tree = Self::new();
        for entry in entries {
            tree.push(leaf_hash(entry.as_ref()));
        }
        tree
    }

    pub fn push(&mut self, leaf: Hash) {
        for (id, hash) in self.range.append(leaf) {
            assert!(
                self.nodes.insert(id, hash).is_none(),
                "{id:?} created twice"
            );
        }
        self.leaves.push(leaf);
        self.roots.push(self.range.root());
    }

    /// Fetches the plan's nodes from the store and assembles the proof.
    pub fn run(&self, plan: &ProofPlan) -> Vec<Hash> {
        let distinct: std::collections::HashSet<_> = plan.nodes().iter().collect();
        assert_eq!(distinct.len(), plan.nodes().len(), "plan repeats a node");
        let fetched: Vec<Hash> = plan
            .nodes()
            .iter()
            .map(|id| {
                *self
                    .nodes
                    .get(id)
                    .unwrap_or_else(|| panic!("{id:?} not stored"))
            })
            .collect();
        plan.assemble(&fetched).unwrap()
    }
}

/// Distinct entries: the index followed by `salt`.
pub fn entries(n: u64, salt: &[u8]) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| [i.to_be_bytes().as_slice(), salt].concat())
        .collect()
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]), straight from RFC 9162 section 2.1.1.
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]), RFC 9162 section 2.1.3.1.
pub fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut proof = path(m, &leaves[..k]);
        proof.push(mth(&leaves[k..]));
        proof
    } else {
        let mut proof = path(m - k, &leaves[k..]);
        proof.push(mth(&leaves[..k]));
        proof
    }
}

/// SUBPROOF(m, D[n], b), RFC 9162 section 2.1.4.1.
pub fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete {
            Vec::new()
        } else {
            vec![mth(leaves)]
        };
    }
    let k = split(n);
    if m <= k {
        let mut proof = subproof(m, &leaves[..k], complete);
        proof.push(mth(&leaves[k..]));
        proof
    } else {
        let mut proof = subproof(m - k, &leaves[k..], false);
        proof.push(mth(&leaves[..k]));
        proof
    }
}

/// PROOF(m, D[n]); empty for m == 0.
pub fn consistency(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if m == 0 {
        return Vec::new();
    }
    subproof(m, leaves, true)
}

pub fn b64(hash: &Hash) -> String {
    STANDARD.encode(hash)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
