//! The transparency-dev/merkle RFC 6962 proof vectors (testdata/rfc6962)
//! and the reference tree of 8 leaves used across CT and transparency-dev.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use schakel_tlog::{
    Hash, consistency_plan, inclusion_plan, leaf_hash, root_plan, verify_consistency,
    verify_inclusion,
};
use serde::Deserialize;

use crate::common;
use crate::common::{MemTree, hex};

/// Missing fields take Go's zero values, as in the Go test that reads them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionVector {
    #[serde(default)]
    leaf_idx: u64,
    #[serde(default)]
    tree_size: u64,
    #[serde(default)]
    root: Option<String>,
    #[serde(default)]
    leaf_hash: Option<String>,
    #[serde(default)]
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsistencyVector {
    #[serde(default)]
    size1: u64,
    #[serde(default)]
    size2: u64,
    #[serde(default)]
    root1: Option<String>,
    #[serde(default)]
    root2: Option<String>,
    #[serde(default)]
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn hash(field: &Option<String>) -> Option<Hash> {
    STANDARD
        .decode(field.as_deref().unwrap_or(""))
        .ok()?
        .try_into()
        .ok()
}

fn proof(field: &Option<Vec<String>>) -> Option<Vec<Hash>> {
    field
        .iter()
        .flatten()
        .map(|element| hash(&Some(element.clone())))
        .collect()
}

fn vector_files(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/rfc6962")
        .join(kind);
    let mut files = Vec::new();
    for group in std::fs::read_dir(&dir).unwrap() {
        for file in std::fs::read_dir(group.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A verdict on one vector file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    /// Rejected by the verifier.
    Rejected,
    /// A value is not a 32-byte hash (the empty "garbage" proof elements,
    /// empty roots and leaves), so it cannot even be expressed as a `Hash`:
    /// callers reject it while decoding, at the type boundary.
    Undecodable,
}

fn verdict(decoded: Option<bool>) -> Verdict {
    match decoded {
        Some(true) => Verdict::Accepted,
        Some(false) => Verdict::Rejected,
        None => Verdict::Undecodable,
    }
}

fn inclusion_accepts(v: &InclusionVector) -> Option<bool> {
    let (leaf, root, proof) = (hash(&v.leaf_hash)?, hash(&v.root)?, proof(&v.proof)?);
    Some(verify_inclusion(&leaf, v.leaf_idx, v.tree_size, &proof, &root).is_ok())
}

fn consistency_accepts(v: &ConsistencyVector) -> Option<bool> {
    let (root1, root2, proof) = (hash(&v.root1)?, hash(&v.root2)?, proof(&v.proof)?);
    Some(verify_consistency(v.size1, v.size2, &proof, &root1, &root2).is_ok())
}

/// Checks every file of one kind; returns the verdicts.
fn check_all<T: for<'de> Deserialize<'de>>(
    kind: &str,
    judge: impl Fn(&T) -> Verdict,
    want_err: impl Fn(&T) -> bool,
    desc: impl Fn(&T) -> &str,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for path in vector_files(kind) {
        let vector: T = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let verdict = judge(&vector);
        let accepted = verdict == Verdict::Accepted;
        assert_eq!(
            accepted,
            !want_err(&vector),
            "{} ({}): {}",
            path.display(),
            desc(&vector),
            if accepted {
                "verifier accepted a bad proof"
            } else {
                "good proof rejected"
            }
        );
        verdicts.push(verdict);
    }
    verdicts
}

#[test]
fn verifier_accepts_exactly_the_good_vectors() {
    let inclusion = check_all::<InclusionVector>(
        "inclusion",
        |v| verdict(inclusion_accepts(v)),
        |v| v.want_err,
        |v| &v.desc,
    );
    let consistency = check_all::<ConsistencyVector>(
        "consistency",
        |v| verdict(consistency_accepts(v)),
        |v| v.want_err,
        |v| &v.desc,
    );
    let all: Vec<Verdict> = inclusion.iter().chain(&consistency).copied().collect();
    let count = |wanted: Verdict| all.iter().filter(|&&v| v == wanted).count();
    assert!(all.len() > 100, "only {} vector files", all.len());
    assert!(inclusion.len() > 50 && consistency.len() > 50);
    assert_eq!(
        count(Verdict::Accepted),
        11,
        "6 inclusion + 5 consistency happy paths"
    );
    // Most bad vectors must be caught by the verifier, not by decoding.
    assert!(
        count(Verdict::Rejected) > 100,
        "{} verifier rejections",
        count(Verdict::Rejected)
    );
}

/// The leaves of the reference tree (RFC 6962 test data, as used by
/// Certificate Transparency and transparency-dev/merkle).
const REFERENCE_LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];
const REFERENCE_ROOT_8: &str = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";

#[test]
fn reference_tree_root() {
    let tree = MemTree::from_entries(&REFERENCE_LEAVES);
    assert_eq!(hex(&tree.range.root()), REFERENCE_ROOT_8);
    assert_eq!(hex(&tree.run(&root_plan(8))[0]), REFERENCE_ROOT_8);
    assert_eq!(tree.roots[8], common::mth(&tree.leaves));
}

/// The happy-path vectors are built on the reference tree: our generator
/// must produce exactly their proofs, not merely proofs that verify.
#[test]
fn generated_proofs_equal_the_reference_vectors() {
    let tree = MemTree::from_entries(&REFERENCE_LEAVES);
    let on_reference_tree = |size: u64, root: &Option<String>| {
        size <= 8 && hash(root) == Some(tree.roots[size as usize])
    };
    let mut compared = 0;
    for path in vector_files("inclusion") {
        let v: InclusionVector = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if v.want_err || !on_reference_tree(v.tree_size, &v.root) {
            continue;
        }
        assert_eq!(
            hash(&v.leaf_hash),
            Some(leaf_hash(REFERENCE_LEAVES[v.leaf_idx as usize]))
        );
        let generated = tree.run(&inclusion_plan(v.leaf_idx, v.tree_size).unwrap());
        assert_eq!(Some(generated), proof(&v.proof), "{}", path.display());
        compared += 1;
    }
    for path in vector_files("consistency") {
        let v: ConsistencyVector = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if v.want_err
            || !on_reference_tree(v.size1, &v.root1)
            || !on_reference_tree(v.size2, &v.root2)
        {
            continue;
        }
        let generated = tree.run(&consistency_plan(v.size1, v.size2).unwrap());
        assert_eq!(Some(generated), proof(&v.proof), "{}", path.display());
        compared += 1;
    }
    assert_eq!(compared, 10);
}
