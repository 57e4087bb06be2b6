//! A contributed value must have the shape its catalogue field declares
//! (value kind, item kind, allowed codes); and a national register number
//! its check digits.

use schakel_kit::validate::Invalid;
use schakel_proto::v1::{self as pb, field_value::Kind};

/// Longest text value accepted.
const MAX_TEXT: usize = 20_000;
/// Most items in a list value.
const MAX_ITEMS: usize = 200;

/// Whether `value` is of `kind`; lists recurse once with the field's item
/// kind, since the catalogue declares no lists of lists.
fn matches(
    kind: i32,
    value: &pb::FieldValue,
    field: &pb::FieldDefinition,
    depth: usize,
) -> Result<(), String> {
    use pb::FieldValueKind as K;
    let Some(v) = &value.kind else {
        return Err("a value is required".into());
    };
    let want = K::try_from(kind).unwrap_or(K::Unspecified);
    match (want, v) {
        (K::Unspecified, _) => Ok(()),
        (K::Text, Kind::Text(t)) => text_fits(t),
        (K::Integer, Kind::Integer(_))
        | (K::Boolean, Kind::Boolean(_))
        | (K::Timestamp, Kind::Timestamp(_))
        | (K::Address, Kind::Address(_))
        | (K::Record, Kind::Record(_)) => Ok(()),
        (K::Number, Kind::Number(n)) if n.is_finite() => Ok(()),
        (K::Date, Kind::Date(d)) => date_plausible(d),
        (K::Code, Kind::Code(c)) => code_allowed(c, field),
        (K::PersonRef, Kind::PersonRef(p)) if uuid::Uuid::parse_str(p).is_ok() => Ok(()),
        (K::List, Kind::List(list)) if depth == 0 => items_match(list, field, depth),
        _ => Err(format!("expected a value of kind {}", kind_name(want))),
    }
}

/// Bounded, so that one contribution cannot bloat every read of the dossier.
fn text_fits(t: &str) -> Result<(), String> {
    if t.chars().count() <= MAX_TEXT {
        Ok(())
    } else {
        Err(format!("text longer than {MAX_TEXT} characters"))
    }
}

/// A date someone of the client system can have; an unknown month (0) leaves
/// the day unknown too, as a day without its month means nothing.
fn date_plausible(d: &pb::CalendarDate) -> Result<(), String> {
    let ok = (1900..=2200).contains(&d.year)
        && (0..=12).contains(&d.month)
        && (0..=31).contains(&d.day)
        && (d.month != 0 || d.day == 0);
    if ok {
        Ok(())
    } else {
        Err("not a valid date".into())
    }
}

/// A field without allowed codes takes any code; one with a list names it in
/// the error, so the caller can correct the value.
fn code_allowed(c: &String, field: &pb::FieldDefinition) -> Result<(), String> {
    if field.allowed_codes.is_empty() || field.allowed_codes.contains(c) {
        Ok(())
    } else {
        Err(format!(
            "{c:?} is not one of {}",
            field.allowed_codes.join(", ")
        ))
    }
}

/// Bounded like texts, and each item of the field's item kind.
fn items_match(
    list: &pb::FieldValueList,
    field: &pb::FieldDefinition,
    depth: usize,
) -> Result<(), String> {
    if list.items.len() > MAX_ITEMS {
        return Err(format!("at most {MAX_ITEMS} items"));
    }
    list.items
        .iter()
        .try_for_each(|item| matches(field.item_kind, item, field, depth + 1))
}

/// The kind as the catalogue writes it (`person_ref`), not the proto name.
fn kind_name(kind: pb::FieldValueKind) -> String {
    kind.as_str_name()
        .trim_start_matches("FIELD_VALUE_KIND_")
        .to_lowercase()
}

/// Checks `value` for `field`; INVALID_ARGUMENT naming `place`.
pub fn check(
    place: String,
    value: &pb::FieldValue,
    field: &pb::FieldDefinition,
) -> Result<(), Invalid> {
    matches(field.value_kind, value, field, 0).map_err(|m| Invalid::at(place.clone(), m))?;
    if field.path == "persons.national_number" {
        let Some(Kind::Text(text)) = &value.kind else {
            return Err(Invalid::at(place, "a national register number is text"));
        };
        crate::national_number::parse(text).map_err(|_| {
            Invalid::at(
                place,
                "not a valid national register number (11 digits, mod-97 check)",
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(
        kind: pb::FieldValueKind,
        item: pb::FieldValueKind,
        codes: &[&str],
    ) -> pb::FieldDefinition {
        pb::FieldDefinition {
            path: "registration.violence_forms".into(),
            value_kind: kind as i32,
            item_kind: item as i32,
            allowed_codes: codes.iter().map(|c| (*c).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn code(c: &str) -> pb::FieldValue {
        pb::FieldValue {
            kind: Some(Kind::Code(c.into())),
        }
    }

    #[test]
    fn lists_of_codes_take_only_their_codes() {
        use pb::FieldValueKind as K;
        let f = field(K::List, K::Code, &["partnergeweld", "belaging"]);
        let list = |items: Vec<pb::FieldValue>| pb::FieldValue {
            kind: Some(Kind::List(pb::FieldValueList { items })),
        };
        assert!(check("x".into(), &list(vec![code("belaging")]), &f).is_ok());
        assert!(check("x".into(), &list(vec![code("stalking")]), &f).is_err());
        assert!(
            check("x".into(), &code("belaging"), &f).is_err(),
            "not a list"
        );
        let text = pb::FieldValue {
            kind: Some(Kind::Text("x".into())),
        };
        assert!(check("x".into(), &list(vec![text]), &f).is_err());
        assert_eq!(
            check(
                "contributions[0].value".into(),
                &pb::FieldValue::default(),
                &f
            )
            .expect_err("empty")
            .field,
            "contributions[0].value"
        );
    }

    #[test]
    fn national_numbers_are_checked() {
        use pb::FieldValueKind as K;
        let mut f = field(K::Text, K::Unspecified, &[]);
        f.path = "persons.national_number".into();
        let text = |t: &str| pb::FieldValue {
            kind: Some(Kind::Text(t.into())),
        };
        assert!(check("x".into(), &text("85073003328"), &f).is_ok());
        assert!(check("x".into(), &text("85073003329"), &f).is_err());
    }

    #[test]
    fn dates_are_plausible() {
        use pb::FieldValueKind as K;
        let f = field(K::Date, K::Unspecified, &[]);
        let date = |year, month, day| pb::FieldValue {
            kind: Some(Kind::Date(pb::CalendarDate { year, month, day })),
        };
        assert!(check("x".into(), &date(1985, 7, 30), &f).is_ok());
        assert!(
            check("x".into(), &date(1985, 0, 0), &f).is_ok(),
            "year only"
        );
        assert!(check("x".into(), &date(1985, 13, 1), &f).is_err());
        assert!(check("x".into(), &date(1985, 0, 3), &f).is_err());
    }
}
