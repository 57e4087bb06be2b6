//! What privacy officers do with the broker (never with content): erase a
//! dossier of their organisation's circle, look up a data subject's
//! pseudonymous ids; and the retention job that erases closed dossiers.

pub(crate) mod erase;
pub(crate) mod lookup;
pub(crate) mod retention;

use schakel_kit::validate::Invalid;

use crate::pipeline::Outcome;

/// A reference of a privacy officer: a case number, never a name.
pub(crate) fn reference(field: &'static str, value: &str) -> Outcome<String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+=-".contains(&b));
    if ok {
        Ok(value.to_owned())
    } else {
        let message = "1-64 characters of [A-Za-z0-9._:/@+=-], a case number, never a name";
        Err(Invalid::new(field, message).into())
    }
}
