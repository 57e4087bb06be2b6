//! A field value as its tagged JSON and back (the format is in [`super`]).

use std::collections::{BTreeMap, HashMap};

use schakel_proto::v1::{self as pb, field_value::Kind};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::date::{date_from_str, date_to_string, timestamp_from_str, timestamp_to_string};
use super::{JsonError, bad};

/// The tagged JSON of a field value.
pub fn value_to_json(value: &pb::FieldValue) -> Value {
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
            // Sorted, so that the same record always prints the same.
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
    let object = value
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| bad(at, "a value is an object with one key: text, code, date, integer, number, boolean, timestamp, person_ref, address, list or record"))?;
    let (tag, inner) = object.iter().next().expect("one key");
    let at = format!("{at}.{tag}");
    let kind = match tag.as_str() {
        "list" => Kind::List(list_from_json(inner, &at)?),
        "record" => Kind::Record(record_from_json(inner, &at)?),
        _ => scalar_from_json(tag, inner, &at)?,
    };
    Ok(pb::FieldValue { kind: Some(kind) })
}

/// The kinds that hold no other value; `at` already ends in `tag`, so an
/// error points at the value itself.
fn scalar_from_json(tag: &str, inner: &Value, at: &str) -> Result<Kind, JsonError> {
    let string = || {
        inner
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad(at, "must be a string"))
    };
    Ok(match tag {
        "text" => Kind::Text(string()?),
        "code" => Kind::Code(string()?),
        "person_ref" => Kind::PersonRef(string()?),
        "date" => Kind::Date(date_from_str(&string()?, at)?),
        "timestamp" => Kind::Timestamp(timestamp_from_str(&string()?, at)?),
        "integer" => Kind::Integer(
            inner
                .as_i64()
                .ok_or_else(|| bad(at, "must be an integer"))?,
        ),
        "number" => Kind::Number(inner.as_f64().ok_or_else(|| bad(at, "must be a number"))?),
        "boolean" => Kind::Boolean(
            inner
                .as_bool()
                .ok_or_else(|| bad(at, "must be true or false"))?,
        ),
        "address" => Kind::Address(address_from_json(inner, at)?),
        other => return Err(bad(at, format!("unknown value kind {other:?}"))),
    })
}

/// Each item is a tagged value of its own, so an error names its index.
fn list_from_json(inner: &Value, at: &str) -> Result<pb::FieldValueList, JsonError> {
    let items = inner
        .as_array()
        .ok_or_else(|| bad(at, "must be an array"))?;
    Ok(pb::FieldValueList {
        items: items
            .iter()
            .enumerate()
            .map(|(i, item)| value_from_json(item, &format!("{at}[{i}]")))
            .collect::<Result<_, _>>()?,
    })
}

/// Each field is a tagged value of its own, so an error names its key.
fn record_from_json(inner: &Value, at: &str) -> Result<pb::FieldRecord, JsonError> {
    let fields = inner
        .as_object()
        .ok_or_else(|| bad(at, "must be an object"))?;
    Ok(pb::FieldRecord {
        fields: fields
            .iter()
            .map(|(k, v)| Ok((k.clone(), value_from_json(v, &format!("{at}.{k}"))?)))
            .collect::<Result<HashMap<_, _>, JsonError>>()?,
    })
}

/// Only the parts given: an empty part is unknown, not an empty string.
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

/// Through [`AddressFile`], so that a value and a registration file accept
/// the same addresses and refuse the same typos.
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

#[cfg(test)]
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
        let parsed = value_from_json(&value, "value").expect("every kind parses");
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
            let error = value_from_json(&value, "value").expect_err("refused");
            assert_eq!(error.at, at, "{value}");
        }
    }
}
