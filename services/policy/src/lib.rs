//! Schakel policy service: the need-to-know policy, versioned, in casbin's
//! portable files, compiled into the decision table the broker enforces.
//!
//! - [`document`]: the three files, parsed and checked line by line.
//! - [`table`]: the compiled decision table (fields as bit masks).
//! - [`proof`]: the table equals casbin's `enforce` over every combination,
//!   checked before any version can be proposed.
//! - [`expectations`]: the expectation tables of `policies/tests/`.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod document;
pub mod expectations;
mod port;
pub use port::LocalPolicy;
pub mod proof;
mod service;
pub mod store;
pub mod table;

use schakel_kit::validate::Invalid;
use schakel_proto::v1 as pb;

pub use document::Policy;
pub use service::{Active, Policies, SCHEMA, SERVICE_NAME, migrations};
pub use table::DecisionTable;

/// A version's files, parsed, compiled and proven equal to casbin.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The files as authored.
    pub document: pb::PolicyDocument,
    /// The parsed policy (for explanations).
    pub policy: Policy,
    /// The decision table.
    pub table: DecisionTable,
    /// How many decisions were proven equal to casbin's.
    pub proven: usize,
}

/// Parses and compiles a stored version (proven when it was proposed).
pub fn compile_unproven(version: u64, document: pb::PolicyDocument) -> Result<Compiled, Invalid> {
    let policy = Policy::parse(&document)?;
    let table = table::compile(version, &policy);
    Ok(Compiled {
        document,
        policy,
        table,
        proven: 0,
    })
}

/// Parses, compiles and proves `document` as version `version`.
pub async fn compile(version: u64, document: pb::PolicyDocument) -> Result<Compiled, Invalid> {
    let policy = Policy::parse(&document)?;
    let table = table::compile(version, &policy);
    let proven = proof::prove(&document, &policy, &table).await?.0;
    Ok(Compiled {
        document,
        policy,
        table,
        proven,
    })
}
