//! Dossier content as JSON, for people and scripts: the files `schakel dossier
//! register --file` reads, the values `schakel dossier contribute --json`
//! takes, what `schakel dossier show` prints, and the dev seed family.
//!
//! A [`pb::FieldValue`] is a JSON object with exactly one key naming its case:
//! `{"text": "..."}`, `{"code": "partnergeweld"}`, `{"date": "2026-01-31"}`
//! (or `"1992"`, `"1992-05"` when day or month are unknown), `{"integer": 3}`,
//! `{"number": 1.5}`, `{"boolean": true}`, `{"timestamp": "<RFC 3339>"}`,
//! `{"person_ref": "<person id>"}`, `{"address": {"street": ..}}`,
//! `{"list": [<value>, ..]}` and `{"record": {"name": <value>, ..}}`.
//! Unknown keys are refused rather than ignored, so a typo never drops data.

use std::collections::{BTreeMap, HashMap};

use schakel_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

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

/// The tagged JSON of a field value.
pub fn value_to_json(value: &pb::FieldValue) -> Value {
    use pb::field_value::Kind;
    match &value.kind {
        None => Value::Null,
        Some(Kind::Text(t)) => json!({ "text": t }),
        Some(Kind::Integer(i)) => json!({ "integer": i }),
        Some(Kind::Number(n)) => json!({ "number": n }),
        Some(Kind::Boolean(b)) => json!({ "boolean": b }),
        Some(Kind::Date(d)) => json!({ "date": date_to_string(d) }),
        Some(Kind::Timestamp(t)) => json!({ "timestamp": timestamp_to_string(t) }),
        Some(Kind::Code(c)) => json!({ "code": c }),
        Some(Kind::Address(a)) => json!({ "address": address_to_json(a) }),
        Some(Kind::PersonRef(p)) => json!({ "person_ref": p }),
        Some(Kind::List(l)) => {
            json!({ "list": l.items.iter().map(value_to_json).collect::<Vec<_>>() })
        }
        Some(Kind::Record(r)) => {
            let fields: BTreeMap<&String, Value> = r
                .fields
                .iter()
                .map(|(k, v)| (k, value_to_json(v)))
                .collect();
            json!({ "record": fields })
        }
    }
}

/// A field value from its tagged JSON; `at` names its place for errors.
pub fn value_from_json(value: &Value, at: &str) -> Result<pb::FieldValue, JsonError> {
    use pb::field_value::Kind;
    let object = value
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| bad(at, "a value is an object with one key: text, code, date, integer, number, boolean, timestamp, person_ref, address, list or record"))?;
    let (tag, inner) = object.iter().next().expect("one key");
    let at = format!("{at}.{tag}");
    let string = || {
        inner
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad(&at, "must be a string"))
    };
    let kind = match tag.as_str() {
        "text" => Kind::Text(string()?),
        "code" => Kind::Code(string()?),
        "person_ref" => Kind::PersonRef(string()?),
        "date" => Kind::Date(date_from_str(&string()?, &at)?),
        "timestamp" => Kind::Timestamp(timestamp_from_str(&string()?, &at)?),
        "integer" => Kind::Integer(
            inner
                .as_i64()
                .ok_or_else(|| bad(&at, "must be an integer"))?,
        ),
        "number" => Kind::Number(inner.as_f64().ok_or_else(|| bad(&at, "must be a number"))?),
        "boolean" => Kind::Boolean(
            inner
                .as_bool()
                .ok_or_else(|| bad(&at, "must be true or false"))?,
        ),
        "address" => Kind::Address(address_from_json(inner, &at)?),
        "list" => {
            let items = inner
                .as_array()
                .ok_or_else(|| bad(&at, "must be an array"))?;
            Kind::List(pb::FieldValueList {
                items: items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| value_from_json(item, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            })
        }
        "record" => {
            let fields = inner
                .as_object()
                .ok_or_else(|| bad(&at, "must be an object"))?;
            Kind::Record(pb::FieldRecord {
                fields: fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), value_from_json(v, &format!("{at}.{k}"))?)))
                    .collect::<Result<HashMap<_, _>, JsonError>>()?,
            })
        }
        other => return Err(bad(&at, format!("unknown value kind {other:?}"))),
    };
    Ok(pb::FieldValue { kind: Some(kind) })
}

/// `YYYY-MM-DD`, `YYYY-MM` or `YYYY` (unknown parts are 0 in the proto).
pub fn date_to_string(d: &pb::CalendarDate) -> String {
    match (d.month, d.day) {
        (0, _) => format!("{:04}", d.year),
        (m, 0) => format!("{:04}-{m:02}", d.year),
        (m, day) => format!("{:04}-{m:02}-{day:02}", d.year),
    }
}

/// Parses [`date_to_string`]'s forms, checking that the date exists.
pub fn date_from_str(s: &str, at: &str) -> Result<pb::CalendarDate, JsonError> {
    let parts: Vec<&str> = s.split('-').collect();
    let number = |p: &str| p.parse::<i32>().ok();
    let invalid = || {
        bad(
            at,
            format!("{s:?} is not a date (YYYY-MM-DD, YYYY-MM or YYYY)"),
        )
    };
    let (year, month, day) = match parts.as_slice() {
        [y] => (number(y), Some(0), Some(0)),
        [y, m] => (number(y), number(m), Some(0)),
        [y, m, d] => (number(y), number(m), number(d)),
        _ => return Err(invalid()),
    };
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(invalid());
    };
    if !(1..=9999).contains(&year) || !(0..=12).contains(&month) || !(0..=31).contains(&day) {
        return Err(invalid());
    }
    if day > 0 {
        let m = time::Month::try_from(month as u8).map_err(|_| invalid())?;
        time::Date::from_calendar_date(year, m, day as u8).map_err(|_| invalid())?;
    }
    Ok(pb::CalendarDate { year, month, day })
}

fn timestamp_to_string(t: &prost_types::Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(t.seconds)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.seconds.to_string())
}

/// An RFC 3339 time, or a date `YYYY-MM-DD` meaning its midnight UTC.
pub fn timestamp_from_str(s: &str, at: &str) -> Result<prost_types::Timestamp, JsonError> {
    let parsed = OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
        let d = date_from_str(s, at).ok().filter(|d| d.day > 0)?;
        let month = time::Month::try_from(d.month as u8).ok()?;
        let date = time::Date::from_calendar_date(d.year, month, d.day as u8).ok()?;
        Some(date.midnight().assume_utc())
    });
    let parsed =
        parsed.ok_or_else(|| bad(at, format!("{s:?} is not an RFC 3339 time or a date")))?;
    Ok(prost_types::Timestamp {
        seconds: parsed.unix_timestamp(),
        nanos: 0,
    })
}

fn address_to_json(a: &pb::PostalAddress) -> Value {
    let mut map = Map::new();
    for (k, v) in [
        ("street", &a.street),
        ("house_number", &a.house_number),
        ("box", &a.r#box),
        ("postal_code", &a.postal_code),
        ("municipality", &a.municipality),
        ("country_code", &a.country_code),
    ] {
        if !v.is_empty() {
            map.insert(k.into(), Value::String(v.clone()));
        }
    }
    Value::Object(map)
}

fn address_from_json(value: &Value, at: &str) -> Result<pb::PostalAddress, JsonError> {
    let address: AddressFile = serde_json::from_value(value.clone())
        .map_err(|e| bad(at, format!("not an address: {e}")))?;
    Ok(address.into())
}

/// A postal address in a registration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AddressFile {
    street: String,
    house_number: String,
    r#box: String,
    postal_code: String,
    municipality: String,
    country_code: String,
}

impl From<AddressFile> for pb::PostalAddress {
    fn from(a: AddressFile) -> Self {
        pb::PostalAddress {
            street: a.street,
            house_number: a.house_number,
            r#box: a.r#box,
            postal_code: a.postal_code,
            municipality: a.municipality,
            country_code: a.country_code,
        }
    }
}

/// A registration (aanmelding) as a JSON file, in the words of the form. See
/// `deploy/examples/registration.json` and [`crate::seed`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationFile {
    /// Judicial district code, e.g. `leuven`.
    pub district: String,
    /// Spoor asked for: 1, 2 or 3.
    pub track: u8,
    /// Codes, e.g. `fysiek`, `psychisch`.
    #[serde(default)]
    pub violence_types: Vec<String>,
    /// Codes, e.g. `partnergeweld`, `kinderen_getuige`.
    #[serde(default)]
    pub violence_forms: Vec<String>,
    /// The description of the situation.
    #[serde(default)]
    pub situation_description: String,
    /// Red flags: `{"code": "wapens", "note": "..."}`.
    #[serde(default)]
    pub risk_factors: Vec<FactorFile>,
    /// Protective factors, same shape.
    #[serde(default)]
    pub protective_factors: Vec<FactorFile>,
    /// Organisations already involved with the family.
    #[serde(default)]
    pub involved_organisations: Vec<InvolvedFile>,
    /// The registering organisation's own case reference.
    #[serde(default)]
    pub source_reference: String,
    /// The client system.
    pub persons: Vec<PersonFile>,
    /// Relations between persons, by `ref`.
    #[serde(default)]
    pub relations: Vec<RelationFile>,
    /// Other catalogue fields: `{"path": .., "person": <ref>, "value": <value>}`.
    #[serde(default)]
    pub additional_fields: Vec<FieldFile>,
}

/// A risk or protective factor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorFile {
    /// Code, e.g. `doodsbedreiging`.
    pub code: String,
    /// Optional short note.
    #[serde(default)]
    pub note: String,
}

/// An organisation involved with the family.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvolvedFile {
    /// Schakel organisation id, when it is one.
    #[serde(default)]
    pub organisation_id: String,
    /// Name or kind.
    #[serde(default)]
    pub name: String,
    /// Sector code.
    #[serde(default)]
    pub sector: String,
}

/// A person of the client system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonFile {
    /// The file's own reference for the person (relations, fields).
    #[serde(rename = "ref")]
    pub reference: String,
    /// `slachtoffer`, `pleger`, `kind`, `familie`.
    pub roles: Vec<String>,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// `YYYY-MM-DD`, `YYYY-MM` or `YYYY`.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// Rijksregisternummer, with or without separators.
    #[serde(default)]
    pub national_number: String,
    /// Postal address.
    #[serde(default)]
    pub address: Option<AddressFile>,
    /// Whether and how the person was informed.
    #[serde(default)]
    pub informing: Option<InformingFile>,
}

/// Informing of one person: `{"state": "informed", "method": "in_person"}` or
/// `{"state": "deferred", "reason": "safety_of_victim", "review_at": "2027-01-15"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InformingFile {
    /// `informed`, `deferred` or `not_informed`.
    pub state: String,
    /// For informed: when (RFC 3339 or date; default now).
    #[serde(default)]
    pub informed_at: Option<String>,
    /// For informed: `in_person`, `phone`, `video_call`, `letter`, ...
    #[serde(default)]
    pub method: Option<String>,
    /// For deferred: `safety_of_victim`, `safety_of_children`, ...
    #[serde(default)]
    pub reason: Option<String>,
    /// For deferred: a short explanation (kept by the legal-basis service only).
    #[serde(default)]
    pub explanation: String,
    /// For deferred: when the team reviews it (default in 30 days).
    #[serde(default)]
    pub review_at: Option<String>,
}

/// A relation between two persons of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationFile {
    /// `ref` of the first person.
    pub from: String,
    /// `ref` of the second person.
    pub to: String,
    /// Code, e.g. `partner`, `ouder_van`.
    pub kind: String,
}

/// A value for a catalogue field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldFile {
    /// Catalogue path.
    pub path: String,
    /// For per-person fields, the person's `ref` (registration) or id (later).
    #[serde(default)]
    pub person: String,
    /// Tagged value.
    pub value: Value,
}

/// Spoor 1, 2 or 3 as the proto's track.
pub fn track(spoor: u8) -> Option<pb::Track> {
    match spoor {
        1 => Some(pb::Track::Consult),
        2 => Some(pb::Track::CaseSupport),
        3 => Some(pb::Track::ChainApproach),
        _ => None,
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

impl InformingFile {
    /// The proto details; `now` fills the defaults.
    pub fn to_proto(&self, now: i64, at: &str) -> Result<pb::InformingDetails, JsonError> {
        let state = enum_value(
            "INFORMING_STATE",
            &self.state,
            pb::InformingState::from_str_name,
            &format!("{at}.state"),
        )?;
        let time = |value: &Option<String>, default: i64, field: &str| match value {
            Some(s) => timestamp_from_str(s, &format!("{at}.{field}")),
            None => Ok(prost_types::Timestamp {
                seconds: default,
                nanos: 0,
            }),
        };
        let mut details = pb::InformingDetails {
            state: state as i32,
            ..Default::default()
        };
        match state {
            pb::InformingState::Informed => {
                details.informed_at = Some(time(&self.informed_at, now, "informed_at")?);
                details.method = enum_value(
                    "INFORMING_METHOD",
                    self.method.as_deref().unwrap_or("in_person"),
                    pb::InformingMethod::from_str_name,
                    &format!("{at}.method"),
                )? as i32;
            }
            pb::InformingState::Deferred => {
                details.deferral_reason = enum_value(
                    "DEFERRAL_REASON",
                    self.reason.as_deref().unwrap_or_default(),
                    pb::DeferralReason::from_str_name,
                    &format!("{at}.reason"),
                )? as i32;
                details.deferral_explanation = self.explanation.clone();
                details.review_at = Some(time(&self.review_at, now + 30 * 24 * 3600, "review_at")?);
            }
            _ => {}
        }
        Ok(details)
    }
}

impl RegistrationFile {
    /// The RegisterDossier request; `now` (unix seconds) fills default times.
    pub fn to_request(
        &self,
        idempotency_key: &str,
        now: i64,
    ) -> Result<pb::RegisterDossierRequest, JsonError> {
        let track = track(self.track).ok_or_else(|| bad("track", "is 1, 2 or 3"))?;
        let factor = |f: &FactorFile| pb::ObservedFactor {
            code: f.code.clone(),
            note: f.note.clone(),
        };
        let persons = self
            .persons
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let at = format!("persons[{i}]");
                Ok(pb::ClientPersonInput {
                    client_ref: p.reference.clone(),
                    roles: p
                        .roles
                        .iter()
                        .enumerate()
                        .map(|(j, r)| {
                            enum_value(
                                "PERSON_ROLE",
                                r,
                                pb::PersonRole::from_str_name,
                                &format!("{at}.roles[{j}]"),
                            )
                            .map(|r| r as i32)
                        })
                        .collect::<Result<_, _>>()?,
                    given_name: p.given_name.clone(),
                    family_name: p.family_name.clone(),
                    birth_date: p
                        .birth_date
                        .as_deref()
                        .map(|d| date_from_str(d, &format!("{at}.birth_date")))
                        .transpose()?,
                    national_number: p.national_number.clone(),
                    address: p.address.clone().map(Into::into),
                    informing: p
                        .informing
                        .as_ref()
                        .map(|inf| inf.to_proto(now, &format!("{at}.informing")))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, JsonError>>()?;
        let additional_fields = self
            .additional_fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                Ok(pb::FieldInput {
                    path: f.path.clone(),
                    client_ref: f.person.clone(),
                    value: Some(value_from_json(
                        &f.value,
                        &format!("additional_fields[{i}].value"),
                    )?),
                })
            })
            .collect::<Result<Vec<_>, JsonError>>()?;
        Ok(pb::RegisterDossierRequest {
            district: self.district.clone(),
            requested_track: track as i32,
            form: Some(pb::RegistrationForm {
                violence_types: self.violence_types.clone(),
                violence_forms: self.violence_forms.clone(),
                situation_description: self.situation_description.clone(),
                risk_factors: self.risk_factors.iter().map(factor).collect(),
                protective_factors: self.protective_factors.iter().map(factor).collect(),
                involved_organisations: self
                    .involved_organisations
                    .iter()
                    .map(|o| pb::InvolvedOrganisation {
                        organisation_id: o.organisation_id.clone(),
                        name: o.name.clone(),
                        sector: o.sector.clone(),
                    })
                    .collect(),
                source_reference: self.source_reference.clone(),
                persons,
                relations: self
                    .relations
                    .iter()
                    .map(|r| pb::PersonRelation {
                        from_person: r.from.clone(),
                        to_person: r.to.clone(),
                        kind: r.kind.clone(),
                    })
                    .collect(),
                additional_fields,
            }),
            idempotency_key: idempotency_key.to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_value_kind_round_trips() {
        let value = json!({"record": {
            "a": {"text": "x"}, "b": {"code": "stalking"}, "c": {"date": "1992-05"},
            "d": {"integer": -3}, "e": {"number": 1.5}, "f": {"boolean": true},
            "g": {"timestamp": "2026-01-05T00:00:00Z"}, "h": {"person_ref": "p-1"},
            "i": {"address": {"street": "Naamsestraat", "postal_code": "3000"}},
            "j": {"list": [{"code": "fysiek"}, {"code": "psychisch"}]},
        }});
        let parsed = value_from_json(&value, "value").unwrap();
        assert_eq!(value_to_json(&parsed), value);
    }

    #[test]
    fn bad_values_are_refused_with_their_place() {
        let cases = [
            (json!("plain"), "value"),
            (json!({"text": "a", "code": "b"}), "value"),
            (json!({"txt": "a"}), "value.txt"),
            (
                json!({"list": [{"date": "2026-02-30"}]}),
                "value.list[0].date",
            ),
            (
                json!({"record": {"n": {"integer": "3"}}}),
                "value.record.n.integer",
            ),
            (json!({"address": {"streat": "x"}}), "value.address"),
        ];
        for (value, at) in cases {
            let error = value_from_json(&value, "value").unwrap_err();
            assert_eq!(error.at, at, "{value}");
        }
    }

    #[test]
    fn partial_dates_keep_unknown_parts_zero() {
        let d = date_from_str("1992", "d").unwrap();
        assert_eq!((d.year, d.month, d.day), (1992, 0, 0));
        assert_eq!(date_to_string(&d), "1992");
        assert!(date_from_str("1992-13", "d").is_err());
        assert!(date_from_str("92-1-1x", "d").is_err());
    }
}
