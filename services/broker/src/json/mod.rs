//! Dossier content as JSON, for people and scripts: the files `schakel dossier
//! register --file` reads, the values `schakel dossier contribute --json`
//! takes, what `schakel dossier show` prints, and the dev seed family.
//!
//! A [`FieldValue`](schakel_proto::v1::FieldValue) is a JSON object with exactly one key naming its case:
//! `{"text": "..."}`, `{"code": "partnergeweld"}`, `{"date": "2026-01-31"}`
//! (or `"1992"`, `"1992-05"` when day or month are unknown), `{"integer": 3}`,
//! `{"number": 1.5}`, `{"boolean": true}`, `{"timestamp": "<RFC 3339>"}`,
//! `{"person_ref": "<person id>"}`, `{"address": {"street": ..}}`,
//! `{"list": [<value>, ..]}` and `{"record": {"name": <value>, ..}}`.
//! Unknown keys are refused rather than ignored, so a typo never drops data.

mod date;
mod person;
mod registration;
mod value;

pub use date::{date_from_str, date_to_string, timestamp_from_str};
pub use person::{InformingFile, PersonFile};
pub use registration::{
    FactorFile, FieldFile, InvolvedFile, RegistrationFile, RelationFile, track,
};
pub use value::{AddressFile, value_from_json, value_to_json};

/// A value that is not valid JSON for its place, with where it is.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{at}: {message}")]
pub struct JsonError {
    /// The JSON path of the bad value, e.g. `persons[1].roles[0]`.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

fn bad(at: &str, message: impl Into<String>) -> JsonError {
    JsonError {
        at: at.to_owned(),
        message: message.into(),
    }
}

/// A proto enum value from its short lower-case name, e.g. `("PERSON_ROLE",
/// "slachtoffer")`.
pub fn enum_value<E>(
    prefix: &str,
    name: &str,
    from: fn(&str) -> Option<E>,
    at: &str,
) -> Result<E, JsonError> {
    let full = format!("{prefix}_{}", name.to_uppercase());
    if name.is_empty() || name.eq_ignore_ascii_case("unspecified") {
        return Err(bad(at, "is required"));
    }
    from(&full).ok_or_else(|| bad(at, format!("unknown value {name:?}")))
}

/// The short lower-case name of a proto enum value (the inverse of [`enum_value`]).
pub fn enum_name(prefix: &str, full: &str) -> String {
    full.strip_prefix(prefix)
        .and_then(|s| s.strip_prefix('_'))
        .unwrap_or(full)
        .to_lowercase()
}
