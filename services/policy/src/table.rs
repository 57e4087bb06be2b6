//! Compiling a policy version into the decision table the broker enforces
//! (the table itself is [`schakel_kit::decision`]).

pub use schakel_kit::decision::{Decision, DecisionTable, FieldSet};

use crate::document::Policy;

/// Compiles `policy`: evaluates every rule for every subject, phase, action
/// and field, once.
pub fn compile(version: u64, policy: &Policy) -> DecisionTable {
    let fields: Vec<String> = policy.fields.iter().map(|f| f.path.clone()).collect();
    DecisionTable::build(
        version,
        fields,
        &policy.partner_types,
        |subject, role, field, action, phase| {
            let matched = policy.matching(subject, role, field, action, phase);
            (
                matched.iter().any(|r| r.allow),
                matched.iter().any(|r| !r.allow),
            )
        },
    )
}

#[cfg(test)]
mod tests;
