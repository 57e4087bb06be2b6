//! What privacy officers do with the broker (never with content): erase a
//! dossier of their organisation's circle, look up a data subject's
//! pseudonymous ids; and the retention job that erases closed dossiers.

pub(crate) mod erase;
pub(crate) mod lookup;
pub(crate) mod retention;

use crate::pipeline::Outcome;

/// A reference of a privacy officer: a case number, never a name.
pub(crate) fn reference(field: &'static str, value: &str) -> Outcome<String> {
    Ok(crate::pipeline::reference(field, value, 1..=64)?)
}
